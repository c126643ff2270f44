"""Let aioice offer 127.0.0.1 as a host candidate, for calls on one machine with no network.

aioice leaves loopback out of its host candidates, so a browser on the same machine with no
other interface (or in a loopback-only network namespace) can never connect. This wraps
``aioice.ice.get_host_addresses`` once, process-wide, to add 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable

import aioice.ice

_original: Callable[[bool, bool], list[str]] | None = None


def allow_loopback_candidates() -> None:
    """Make every later ICE gathering in this process include 127.0.0.1 (idempotent)."""
    global _original
    if _original is not None:
        return
    original = aioice.ice.get_host_addresses
    _original = original

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    aioice.ice.get_host_addresses = with_loopback
