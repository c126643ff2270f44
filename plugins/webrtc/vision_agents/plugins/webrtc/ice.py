"""Which local addresses ICE gathers (and binds its media sockets on) for the call server.

aioice gathers a host candidate on every interface and leaves loopback out. The call server
wants its media where its HTTP is: bound to loopback, it must offer (and bind) 127.0.0.1 only;
bound to one address, that address only; bound to every interface, every interface.

``install()`` wraps ``aioice.ice.get_host_addresses`` once, process-wide; the wrapper changes
nothing unless the running context asked for it with ``gather_on(host, loopback=...)``, so
other peer connections in the process (a provider's WebRTC transport, say) are untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aioice.ice

_original: Callable[[bool, bool], list[str]] | None = None


@dataclass(frozen=True)
class _Scope:
    host: str | None  # one address to gather on; None: every interface
    loopback: bool  # add loopback to what aioice finds


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("ice_scope", default=None)


def _only_address(host: str) -> str | None:
    """The single IP a server bound to ``host`` should gather on; None for every interface."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a host name: leave gathering as it is
    return None if address.is_unspecified else str(address)


def install() -> None:
    """Wrap aioice's host address lookup (idempotent); see ``gather_on``."""
    global _original
    if _original is not None:
        return
    original = aioice.ice.get_host_addresses
    _original = original

    def scoped(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        scope = _scope.get()
        if scope is None:
            return addresses
        if scope.host is not None:
            version = ipaddress.ip_address(scope.host).version
            wanted = (version == 4 and use_ipv4) or (version == 6 and use_ipv6)
            return [scope.host] if wanted else []
        if scope.loopback and use_ipv4 and "127.0.0.1" not in addresses:
            addresses = [*addresses, "127.0.0.1"]
        return addresses

    aioice.ice.get_host_addresses = scoped


@contextlib.contextmanager
def gather_on(host: str, *, loopback: bool = False) -> Iterator[None]:
    """ICE gathering started in this context (and tasks it spawns) uses only ``host``'s
    address when it names one, else every interface plus loopback when ``loopback``."""
    install()
    token = _scope.set(_Scope(_only_address(host), loopback))
    try:
        yield
    finally:
        _scope.reset(token)


def allow_loopback_candidates() -> None:
    """Kept for callers of the old API: installs the wrapper (scopes come from ``gather_on``)."""
    install()
