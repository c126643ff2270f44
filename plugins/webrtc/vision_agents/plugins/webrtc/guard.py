"""Connection admission for the call server: caps, a header deadline and load shedding.

``ConnectionGuard`` sits between the listening socket and aiohttp. It counts open
connections, in all and per client address, and gives each one ``header_timeout_s`` to send
its first request's headers. At a cap it makes room by closing the oldest connection that is
still sending headers (slow clients are what fills a server up); only when every connection
has sent its headers is the newcomer refused. A newcomer cannot be told from an attacker by
its address (on loopback or behind a NAT they share one), but a legitimate client sends its
headers in its first packet, so it leaves the pending set within one event-loop turn, before
``max_per_address`` newer connections can push it out (accepts are taken at most
``ACCEPT_BATCH`` per turn). The exception is a browser's spare connection, opened ahead of
need and silent until a request uses it: connections that have sent part of a request
(trickling, as slowloris does) are closed before silent ones, so a page's spare sockets
outlive a trickle attack and its next request does not land on a closed one (silent ones
still meet the header deadline). Failures are counted and logged as one summary line per
``summary_every_s`` (a WARNING from ``ATTACK_LEVEL`` failures on), never one record each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp.web_protocol import RequestHandler

logger = logging.getLogger(__name__)

_END_OF_HEADERS = b"\r\n\r\n"
ATTACK_LEVEL = 50  # failures in one summary period that make the summary a WARNING
ACCEPT_BATCH = 64  # the listen backlog; asyncio accepts at most this many per loop turn


@dataclass(frozen=True)
class GuardLimits:
    """The numbers ``ConnectionGuard`` enforces (defaults suit one small server)."""

    max_connections: int = 512
    max_per_address: int = 128
    header_timeout_s: float = 5.0
    max_header_bytes: int = 16 * 1024
    summary_every_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_per_address < 1:
            raise ValueError(
                f"connection caps must be at least 1, got max_connections={self.max_connections}"
                f" and max_per_address={self.max_per_address}"
            )
        if self.header_timeout_s <= 0:
            raise ValueError(f"header_timeout_s must be positive, got {self.header_timeout_s}")


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler, admitted by the guard and watched for its first headers.

    A subclass rather than a wrapper: aiohttp and asyncio then see the handler they expect
    as the transport's protocol.
    """

    __slots__ = (
        "_admitted",
        "_deadline",
        "_guard",
        "_seen",
        "_tail",
        "address",
        "headers_done",
        "opened",
    )

    def __init__(self, guard: ConnectionGuard, manager: Any, **options: Any) -> None:
        super().__init__(manager, **options)
        self._guard = guard
        self._admitted = False
        self._deadline: asyncio.TimerHandle | None = None
        self._seen = 0
        self._tail = b""
        self.address = ""
        self.opened = 0.0
        self.headers_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        self.opened = self._guard.now()
        if not self._guard.admit(self):
            assert isinstance(transport, asyncio.Transport)
            transport.abort()  # aiohttp never starts on it
            return
        self._admitted = True
        self._deadline = asyncio.get_running_loop().call_later(
            self._guard.limits.header_timeout_s, self._headers_late
        )
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if not self.headers_done and data:
            window = self._tail + data
            if _END_OF_HEADERS in window:
                self._headers_arrived()
            else:
                self._seen += len(data)
                self._tail = window[-3:]
                if self._seen > self._guard.limits.max_header_bytes:
                    self._guard.count("headers too large")
                    self.evict()
                    return
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not self._admitted:
            return
        self._admitted = False
        self._guard.release(self)
        super().connection_lost(exc)

    def _headers_arrived(self) -> None:
        self.headers_done = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._guard.headers_arrived(self)

    def _headers_late(self) -> None:
        self._deadline = None
        if self._admitted and not self.headers_done:
            self._guard.count("header timeout")
            self.evict()

    @property
    def bytes_seen(self) -> int:
        """Bytes of the first request's headers received so far."""
        return self._seen

    def evict(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class ConnectionGuard:
    """Admits connections to an aiohttp server under ``limits``; see the module docstring."""

    def __init__(
        self, limits: GuardLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or GuardLimits()
        self._clock = clock
        self._open: dict[GuardedRequestHandler, None] = {}  # insertion-ordered: oldest first
        self._pending: dict[GuardedRequestHandler, None] = {}  # still sending their headers
        self._per_address: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()
        self._last_summary = clock()

    def now(self) -> float:
        return self._clock()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def connections_from(self, address: str) -> int:
        return self._per_address[address]

    def protocol_factory(self, manager: Any, **options: Any) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server``: aiohttp handlers for ``manager``
        (``runner.server``) with ``options`` (the handler's keyword arguments), guarded."""
        loop = asyncio.get_running_loop()
        return lambda: GuardedRequestHandler(self, manager, loop=loop, **options)

    def admit(self, conn: GuardedRequestHandler) -> bool:
        limits = self.limits
        if self._per_address[conn.address] >= limits.max_per_address:
            if not self._evict_oldest_pending(conn.address):
                self.count("refused: too many from one address")
                return False
        if len(self._open) >= limits.max_connections and not self._evict_oldest_pending(None):
            self.count("refused: server full")
            return False
        self._open[conn] = None
        self._pending[conn] = None
        self._per_address[conn.address] += 1
        return True

    def headers_arrived(self, conn: GuardedRequestHandler) -> None:
        self._pending.pop(conn, None)

    def release(self, conn: GuardedRequestHandler) -> None:
        if conn in self._open:
            del self._open[conn]
            self._pending.pop(conn, None)
            self._per_address[conn.address] -= 1
            if self._per_address[conn.address] <= 0:
                del self._per_address[conn.address]
        self._maybe_summarise()

    def count(self, what: str) -> None:
        """Note one shed or refused connection; logged later as part of a summary."""
        self._counts[what] += 1
        self.totals[what] += 1
        self._maybe_summarise()

    def summarise(self) -> None:
        """Log what was shed since the last summary (one line), if anything."""
        self._last_summary = self._clock()
        if not self._counts:
            return
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self._counts.items()))
        # A few are normal (browsers open spare connections they never use); many are not.
        level = logging.WARNING if sum(self._counts.values()) >= ATTACK_LEVEL else logging.INFO
        logger.log(level, "call server shed connections: %s (open now: %d)", parts, len(self._open))
        self._counts.clear()

    def _maybe_summarise(self) -> None:
        if self._clock() - self._last_summary >= self.limits.summary_every_s:
            self.summarise()

    def _evict_oldest_pending(self, address: str | None) -> bool:
        """Close the oldest connection still sending headers (from ``address`` if given),
        preferring one that has sent part of a request to one that has sent nothing."""
        silent: GuardedRequestHandler | None = None
        victim: GuardedRequestHandler | None = None
        for conn in self._pending:
            if address is None or conn.address == address:
                if conn.bytes_seen > 0:
                    victim = conn
                    break
                if silent is None:
                    silent = conn
        victim = victim or silent
        if victim is None:
            return False
        self._pending.pop(victim)
        self._open.pop(victim, None)
        self._per_address[victim.address] -= 1
        victim.evict()
        self.count("closed slow to send headers")
        return True


class RateLimiter:
    """A token bucket per key (a client address): ``burst`` at once, ``per_s`` refilled a second.

    At most ``max_keys`` buckets are kept, least recently used dropped first, so a flood of
    addresses cannot grow it without bound.
    """

    def __init__(
        self,
        burst: int,
        per_s: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_s <= 0:
            raise ValueError(f"burst must be >= 1 and per_s > 0, got {burst} and {per_s}")
        self.burst = burst
        self.per_s = per_s
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_s)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        return allowed


class RequestErrorLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's request logger, except that a client's malformed request (a bad request line,
    headers too long, ...) is counted in the guard's summary, not logged as an ERROR with a
    traceback each time: a client can send those as fast as it likes."""

    def __init__(self, logger: logging.Logger, guard: ConnectionGuard) -> None:
        super().__init__(logger, {})
        self.guard = guard

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            self.guard.count("malformed requests")
            self.logger.debug("malformed request: %s", exc)
            return
        super().exception(msg, *args, **kwargs)
