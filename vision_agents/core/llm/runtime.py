"""One connection runtime for every realtime provider.

A provider supplies a pure protocol object (``RealtimeProtocol``: decides every message) and a
way to open a ``Link`` (one socket or peer connection through the provider's SDK). The runtime
does the I/O the same way for all of them:

- retries with one ``RetryPolicy`` (same option names for every provider);
- keepalive with a dead-link deadline (a ping unanswered within ``Keepalive.timeout`` means the
  path is dead even if no FIN or RST ever arrives);
- make-before-break reconnection: the new link opens first, the old one is closed in the
  background with a bound, so a peer that never finishes its close handshake cannot delay
  recovery;
- one close order, and every task it starts is owned, cancelled and awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vision_agents.core.errors import (
    ConfigurationError,
    MissingApiKeyError,
    ProtocolViolation,
    RealtimeConnectionError,
)
from vision_agents.core.llm.protocol import (
    ConnectionLost,
    ProtocolEvent,
    RealtimeProtocol,
    Reconnected,
    SwitchRequested,
)
from vision_agents.core.utils.tasks import TaskOwner, cancel_and_wait

logger = logging.getLogger(__name__)

ApiKey = str | Callable[[], str | Awaitable[str]]
"""A key, or a sync/async function returning one, called at every (re)connect (rotating keys)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a lost connection is brought back: exponential backoff between attempts."""

    max_retries: int = 5
    """Attempts after a loss before giving up (the first connect is tried once)."""
    initial_delay: float = 0.25
    max_delay: float = 8.0
    connect_timeout: float = 10.0
    """Bound on opening one connection (TCP, TLS, handshake and session setup)."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries!r}")
        for name in ("initial_delay", "max_delay", "connect_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
        if self.connect_timeout == 0:
            raise ConfigurationError("connect_timeout must be > 0")

    def delays(self) -> Iterator[float]:
        """The pause before each retry: 0 first (a fresh link right away), then backoff."""
        delay = self.initial_delay
        for attempt in range(self.max_retries):
            if attempt == 0:
                yield 0.0
                continue
            yield delay
            delay = min(delay * 2, self.max_delay)


@dataclass(frozen=True)
class Keepalive:
    """Ping the provider every ``interval`` s; no pong within ``timeout`` s means a dead link.

    A pong also proves that everything sent before its ping arrived, so audio older than the
    last answered ping is never sent twice after a reconnect.
    """

    interval: float = 1.0
    timeout: float = 3.0

    def __post_init__(self) -> None:
        for name in ("interval", "timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"keepalive {name} must be a number > 0, got {value!r}")


DEFAULT_KEEPALIVE = Keepalive()
"""Ping every second; a link with no pong for 3 s is dead (a blackhole is noticed in <= 4 s)."""


class ApiKeySource:
    """Resolves a provider key: a string, a (sync or async) function, or environment variables.

    Checked at construction: with nothing given and no variable set it raises
    ``MissingApiKeyError`` naming the variables. Its repr never shows the key.
    """

    def __init__(
        self, provider: str, value: ApiKey | None, env_vars: Sequence[str], *, required: bool
    ) -> None:
        self.provider = provider
        self.env_vars = tuple(env_vars)
        self._value = value
        if value is not None and not (isinstance(value, str) or callable(value)):
            raise ConfigurationError(
                f"{provider}: api_key must be a string or a function returning one, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, str) and not value:
            raise ConfigurationError(f"{provider}: api_key is an empty string")
        if required and value is None and self._from_env() is None:
            raise MissingApiKeyError(provider, self.env_vars)

    @property
    def is_function(self) -> bool:
        return callable(self._value)

    def _from_env(self) -> str | None:
        for name in self.env_vars:
            if os.environ.get(name):
                return os.environ[name]
        return None

    def static(self) -> str | None:
        """The key when it is a string or comes from the environment; None for a function."""
        if isinstance(self._value, str):
            return self._value
        return None if callable(self._value) else self._from_env()

    async def get(self) -> str:
        """The key for a new connection (a function is called each time)."""
        if callable(self._value):
            produced: object = self._value()
            if inspect.isawaitable(produced):
                produced = await produced
            if not isinstance(produced, str) or not produced:
                raise ConfigurationError(
                    f"{self.provider}: the api_key function returned "
                    f"{type(produced).__name__ if produced else repr(produced)}, not a key string"
                )
            return produced
        static = self.static()
        if not static:
            raise MissingApiKeyError(self.provider, self.env_vars)
        return static

    def __repr__(self) -> str:
        kind = "function" if self.is_function else "string" if self._value else "env"
        return f"ApiKeySource({self.provider!r}, {kind}, redacted)"


class LinkClosed(Exception):
    """The provider closed the link (or it broke); ``code`` is the close code when known,
    ``refused`` why our side closed it over what the provider sent (see ``refused_message``)."""

    def __init__(
        self, reason: str, code: int | None = None, refused: ProtocolViolation | None = None
    ) -> None:
        self.reason, self.code, self.refused = reason, code, refused
        super().__init__(f"{reason} (code {code})" if code is not None else reason)


class Link(ABC):
    """One live connection to a provider, made by the provider plugin around its SDK."""

    @abstractmethod
    async def send(self, message: Any) -> None:
        """Send one outgoing protocol message; raises if the link is gone."""

    @abstractmethod
    async def recv(self) -> Any:
        """The next provider message. Raises ``LinkClosed`` (or any error) when the link is
        gone, ``ProtocolViolation`` for one bad message (the link stays usable)."""

    async def ping(self) -> Awaitable[object] | None:
        """Send a ping and return a waiter for its pong; None when the link has no pings."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Close gracefully (may wait for the peer)."""

    def abort(self) -> None:  # noqa: B027 - optional for links without a transport to drop
        """Drop the link at once, without a close handshake."""

    @property
    def backlog_bytes(self) -> int:
        """Bytes sent but still queued on our side (not yet on the wire); 0 when unknown.

        Video frames are skipped while this is above the model's ``max_video_backlog``: a
        frame queued behind others reaches the model stale."""
        return 0


def close_code(exc: BaseException) -> int | None:
    """The WebSocket close code an SDK's exception carries, if any."""
    for candidate in (exc, exc.__cause__, exc.__context__):
        if candidate is None:
            continue
        if hasattr(candidate, "rcvd"):  # websockets' ConnectionClosed (its .code is deprecated)
            code = getattr(candidate.rcvd, "code", None)
        else:  # an SDK error that carries the close code (google-genai's APIError)
            code = getattr(candidate, "code", None)
        if isinstance(code, int) and 1000 <= code < 5000:
            return code
    return None


REFUSAL_CODES = {
    1002: "a frame that breaks the WebSocket protocol",
    1007: "text that is not UTF-8",
    1009: "a message over the size limit",
}
"""Close codes websockets sends when it fails a link over what the peer sent."""


def _refusal(rcvd: object, sent: object) -> ProtocolViolation | None:
    code = getattr(sent, "code", None)
    if rcvd is not None or code not in REFUSAL_CODES:
        return None  # the provider closed it (or we closed it normally)
    return ProtocolViolation(
        f"the provider sent {REFUSAL_CODES[code]}; our side closed the connection with "
        f"{int(code)}: {getattr(sent, 'reason', '')}"
    )


def refused_message(exc: BaseException | None) -> ProtocolViolation | None:
    """Why our side closed the link, when it refused what the provider sent (websockets
    closes with 1009 for a message over ``max_size``). No close frame comes back then, so
    ``close_code`` finds none: this is the error to report. None otherwise."""
    for candidate in (exc, exc.__cause__, exc.__context__) if exc is not None else ():
        if isinstance(candidate, LinkClosed) and candidate.refused is not None:
            return candidate.refused
        # websockets' ConnectionClosed has the close frames received and sent
        refused = _refusal(getattr(candidate, "rcvd", None), getattr(candidate, "sent", None))
        if refused is not None:
            return refused
    return None


async def ping_websocket(ws: Any) -> Awaitable[object] | None:
    """Ping a ``websockets`` connection (None when there is none); raises if it is closing."""
    check_websocket_open(ws)
    return await ws.ping() if ws is not None and hasattr(ws, "ping") else None


def abort_websocket(ws: Any) -> None:
    """Drop a ``websockets`` connection's TCP transport without a close handshake."""
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()


def websocket_backlog(ws: Any) -> int:
    """Bytes a ``websockets`` connection has queued in its transport, not yet written out."""
    transport = getattr(ws, "transport", None)
    size = getattr(transport, "get_write_buffer_size", None)
    return int(size()) if callable(size) else 0


def json_event(raw: bytes | str) -> Any:
    """One provider event as JSON; ``ProtocolViolation`` (the link stays usable) if it is not."""
    try:
        return json.loads(raw)
    except ValueError:
        raise ProtocolViolation(f"a provider event that is not JSON ({len(raw)} bytes)") from None


def check_websocket_open(ws: object) -> None:
    """Raise ``LinkClosed`` when a ``websockets`` connection has left the OPEN state.

    Once the peer's close frame arrived, ``websockets`` makes every send (and ping) wait for the
    closing handshake to finish, which a hung peer never does (up to its close timeout): a link
    is dead as soon as it is closing.
    """
    protocol = getattr(ws, "protocol", None)
    state = getattr(protocol, "state", None)
    if state is not None and getattr(state, "name", "OPEN") != "OPEN":
        close = getattr(protocol, "close_rcvd", None)
        said = getattr(close, "reason", "") or ""  # the provider's reason, as a read reports it
        raise LinkClosed(
            f"the connection is {state.name.lower()}" + (f": {said}" if said else ""),
            getattr(close, "code", None),
            _refusal(close, getattr(protocol, "close_sent", None)),
        )


@dataclass
class _Trigger:
    link: Link
    reason: str
    planned: bool
    done: asyncio.Future[None] | None = None
    within_s: float | None = None
    code: int | None = None
    at: float = field(default_factory=time.monotonic)
    """When it happened: the link found dead, or the switch asked for."""


EventSink = Callable[[list[ProtocolEvent]], Awaitable[None]]


class ConnectionRuntime:
    """Keeps one provider session alive across drops, goAways, recycles and dead links."""

    def __init__(
        self,
        name: str,
        protocol: RealtimeProtocol,
        open_link: Callable[[], Awaitable[Link]],
        on_events: EventSink,
        *,
        retry: RetryPolicy | None = None,
        keepalive: Keepalive | None = None,
        close_timeout: float = 1.0,
        send_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self._open_link = open_link
        self._on_events = on_events
        self.retry = retry or RetryPolicy()
        self.keepalive = keepalive
        self.close_timeout = close_timeout
        self.send_timeout = send_timeout
        self._sending: tuple[Link, asyncio.Timeout] | None = None
        self.reconnects = 0
        """Links replaced after the first one (drops, goAways, recycles, dead links)."""
        self._link: Link | None = None
        self._link_dead = False
        self._send_lock = asyncio.Lock()
        self._triggers: asyncio.Queue[_Trigger] = asyncio.Queue()
        self._tasks = TaskOwner(name)
        self._link_tasks: list[asyncio.Task[None]] = []
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._gave_up: BaseException | None = None
        self._state_changed = asyncio.Event()
        self._flush_task: asyncio.Task[None] | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link_dead

    @property
    def link(self) -> Link | None:
        """The link in use (None between a loss and its replacement)."""
        return None if self._link_dead else self._link

    @property
    def failed(self) -> BaseException | None:
        """Why the runtime gave up reconnecting (None while it still holds or tries)."""
        return self._gave_up

    async def start(self) -> None:
        """Open the first link (one attempt, bounded by ``connect_timeout``); raises on failure."""
        self._closing = False
        link = await self._open()
        await self._install(link, planned_from=None)
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"{self.name}:supervisor"
        )

    async def flush(self) -> None:
        """Send what the protocol wants sent and hand its events on; call after each command."""
        async with self._send_lock:
            await self._flush_locked()

    def flush_soon(self) -> None:
        """Flush from a synchronous callback (media arriving on a track): one pending flush
        at a time picks up everything queued until it runs."""
        if self._closing:
            return
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = self._tasks.spawn(self.flush(), "flush")

    def request_switch(self, reason: str, within_s: float | None = None) -> None:
        """Replace the link make-before-break (planned: goAway, session age). With
        ``within_s`` (the time the old link has left) the switch waits for the protocol's
        next resumption point, but no longer than half that time."""
        if self._link is not None:
            self._triggers.put_nowait(_Trigger(self._link, reason, planned=True, within_s=within_s))

    async def switch(self, reason: str, within_s: float | None = None) -> None:
        """Replace the link make-before-break and return once the new one is in use."""
        if self._link is None or self._supervisor is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._triggers.put_nowait(
            _Trigger(self._link, reason, planned=True, done=done, within_s=within_s)
        )
        await done

    async def close(self) -> None:
        """Stop reconnecting, close the link (bounded), and await every task."""
        self._closing = True
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        await cancel_and_wait(*self._link_tasks)
        self._link_tasks.clear()
        link, self._link = self._link, None
        if link is not None:
            await self._close_link(link)
        await self._tasks.close()

    # -- internals ------------------------------------------------------------------------

    async def _open(self) -> Link:
        try:
            async with asyncio.timeout(self.retry.connect_timeout):
                return await self._open_link()
        except TimeoutError:
            raise RealtimeConnectionError(
                f"{self.name}: no session within connect_timeout={self.retry.connect_timeout:g} s"
            ) from None

    async def _flush_locked(self) -> None:
        self._state_changed.set()
        events = self.protocol.events_received()
        if events:
            await self._handle_events(events)
        link = self._link
        outgoing = self.protocol.data_to_send()
        if link is None or self._link_dead:
            return  # the protocol buffers what it needs across the switch
        mark = self.protocol.audio_mark()
        for message in outgoing:
            try:
                # A send that blocks (a full socket buffer on a dead path, a closing socket)
                # is cut short when the keepalive declares the link dead, or after a bound.
                async with asyncio.timeout(self.send_timeout) as deadline:
                    self._sending = (link, deadline)
                    await link.send(message)
            except Exception as exc:
                self._sending = None
                logger.debug("%s: send failed, link lost: %r", self.name, exc)
                self._mark_dead(link, f"send failed: {exc!r}", cause=exc)
                return
            finally:
                self._sending = None
        if self.keepalive is None:
            # No pings, so nothing ever proves delivery: what a live link took counts as
            # delivered, rather than keeping (and later replaying) up to the whole backlog.
            self.protocol.audio_acknowledged(mark)

    async def _handle_events(self, events: list[ProtocolEvent]) -> None:
        passed: list[ProtocolEvent] = []
        for event in events:
            if isinstance(event, SwitchRequested):
                if event.usable:
                    self.request_switch(event.reason, event.within_s)
                elif self._link is not None:
                    self._mark_dead(self._link, event.reason)
            passed.append(event)
        await self._on_events(passed)

    def _mark_dead(self, link: Link, reason: str, cause: BaseException | None = None) -> None:
        """Declare ``link`` lost (once); ``cause`` is what the read, send or ping raised."""
        sending = self._sending
        if sending is not None and sending[0] is link and not sending[1].expired():
            with contextlib.suppress(RuntimeError):  # it finished in the meantime
                sending[1].reschedule(asyncio.get_running_loop().time())
        self._state_changed.set()
        if link is self._link and not self._link_dead:
            self._link_dead = True
            refused = refused_message(cause)
            if refused is not None:
                # Our side closed it over a provider message, so the provider sent no close
                # code to report: one error, handed on before the reconnect.
                self.protocol.report_violation(refused)
            code = close_code(cause) if cause is not None else None
            self._triggers.put_nowait(_Trigger(link, reason, planned=False, code=code))

    async def _install(self, link: Link, planned_from: Link | None) -> None:
        """Make ``link`` current; the protocol learns of the switch under the send lock."""
        async with self._send_lock:
            old, was_dead = self._link, self._link_dead
            if self.protocol.connected:
                self.protocol.connection_lost(delivered=planned_from is old and not was_dead)
            self._link, self._link_dead = link, False
            self.protocol.connection_made()
            tasks = self._link_tasks
            self._link_tasks = [
                asyncio.get_running_loop().create_task(self._read(link), name=f"{self.name}:reader")
            ]
            if self.keepalive is not None:
                self._link_tasks.append(
                    asyncio.get_running_loop().create_task(
                        self._keep_alive(link, self.keepalive), name=f"{self.name}:keepalive"
                    )
                )
            await self._flush_locked()
        if old is not None:
            self._tasks.spawn(self._retire(old, tasks), "close-old-link")

    async def _retire(self, link: Link, tasks: list[asyncio.Task[None]]) -> None:
        await cancel_and_wait(*tasks)
        await self._close_link(link)

    async def _close_link(self, link: Link) -> None:
        try:
            async with asyncio.timeout(self.close_timeout):
                await link.close()
        except Exception as exc:  # includes the timeout: a peer that never finishes closing
            logger.debug("%s: closing an old link: %r; aborting it", self.name, exc)
            link.abort()

    async def _read(self, link: Link) -> None:
        while True:
            try:
                message = await link.recv()
            except asyncio.CancelledError:
                raise
            except ProtocolViolation as exc:
                self.protocol.report_violation(exc)
                await self.flush()
                continue
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                self._mark_dead(link, reason, cause=exc)
                return
            if link is not self._link:
                return
            try:
                self.protocol.receive(message)
            except ProtocolViolation as exc:
                self.protocol.report_violation(exc)
            except Exception as exc:  # a protocol object's bug must not end the session
                logger.exception("%s: handling a provider message failed", self.name)
                self.protocol.report_violation(ProtocolViolation(f"unhandled: {exc!r}"))
            await self.flush()

    async def _keep_alive(self, link: Link, keepalive: Keepalive) -> None:
        while True:
            await asyncio.sleep(keepalive.interval)
            mark = self.protocol.audio_mark()
            try:
                # Bounded as a whole: on a closing socket even sending the ping can wait for
                # the close handshake that a hung peer never finishes.
                async with asyncio.timeout(keepalive.timeout):
                    waiter = await link.ping()
                    if waiter is None:
                        # This kind of link has no pings (its transport watches itself).
                        self.protocol.audio_acknowledged(mark)
                        continue
                    await waiter
            except TimeoutError:
                self._mark_dead(link, f"no pong within {keepalive.timeout:g} s (dead link)")
                return
            except Exception as exc:
                self._mark_dead(link, f"ping failed: {exc}", cause=exc)
                return
            self.protocol.audio_acknowledged(mark)

    async def _supervise(self) -> None:
        while not self._closing:
            trigger = await self._triggers.get()
            try:
                if not await self._handle_trigger(trigger):
                    return
            finally:
                if trigger.done is not None and not trigger.done.done():
                    if self._gave_up is not None:
                        trigger.done.set_exception(RealtimeConnectionError(str(self._gave_up)))
                    else:
                        trigger.done.set_result(None)

    async def _handle_trigger(self, trigger: _Trigger) -> bool:
        link, reason, planned = trigger.link, trigger.reason, trigger.planned
        if link is not self._link:
            return True  # about a link already replaced
        if not planned:
            async with self._send_lock:
                if self.protocol.connected:
                    self.protocol.connection_lost(delivered=False)
                self._link_dead = True
                await self._flush_locked()
            await self._on_events([ConnectionLost(reason, code=trigger.code)])
        deadline = None
        if planned and trigger.within_s is not None:
            # Half the time left for a resumption point; the rest to open the new link.
            deadline = asyncio.get_running_loop().time() + trigger.within_s * 0.5
            await self._wait_ready_to_switch(link, deadline)
        logger.info("%s: replacing the connection: %s", self.name, reason)
        return await self._replace(link, reason, planned, deadline, trigger.at)

    async def _open_at_resumption_point(self, old: Link, deadline: float | None) -> Link:
        """Open a link. For a planned switch with time left, a link that opened while
        something happened on the old one (a tool call, a reply starting) resumed from too
        early a point: it is dropped and another opened at the next resumption point."""
        loop = asyncio.get_running_loop()
        new = await self._open()
        while (
            deadline is not None
            and not self.protocol.ready_to_switch
            and old is self._link
            and not self._link_dead
            and loop.time() < deadline
        ):
            self._tasks.spawn(self._close_link(new), "close-early-link")
            await self._wait_ready_to_switch(old, deadline)
            new = await self._open()
        return new

    async def _wait_ready_to_switch(self, link: Link, deadline: float) -> None:
        """Wait for a resumption point (re-checked after every flush), the link's end, or
        the deadline (loop time)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while (
                    not self.protocol.ready_to_switch and link is self._link and not self._link_dead
                ):
                    self._state_changed.clear()
                    await self._state_changed.wait()

    async def _replace(
        self,
        old: Link,
        reason: str,
        planned: bool,
        deadline: float | None = None,
        since: float | None = None,
    ) -> bool:
        last: BaseException | None = None
        audio = self.protocol.audio
        replayed, dropped = audio.replayed_bytes, audio.dropped_bytes
        for attempt, delay in enumerate(self.retry.delays(), start=1):
            if delay:
                await asyncio.sleep(delay)
            try:
                new = await self._open_at_resumption_point(old, deadline)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                last = exc
                logger.warning("%s: reconnect attempt %d failed: %s", self.name, attempt, exc)
                continue
            await self._install(new, planned_from=old if planned else None)
            self.reconnects += 1
            # A planned switch keeps the old link until the new one is in: no time without.
            down = 0.0 if planned or since is None else time.monotonic() - since
            bytes_per_s = self.protocol.input_rate * 2
            await self._on_events(
                [
                    Reconnected(
                        reason,
                        planned,
                        attempt,
                        downtime_s=down,
                        audio_replayed_s=(audio.replayed_bytes - replayed) / bytes_per_s,
                        audio_dropped_s=(audio.dropped_bytes - dropped) / bytes_per_s,
                    )
                ]
            )
            return True
        if planned and old is self._link and not self._link_dead:
            # The old link still works: keep it and let its own end trigger a real reconnect.
            logger.warning("%s: could not open a replacement link: %s", self.name, last)
            return True
        cause = last or RealtimeConnectionError(reason)
        self._gave_up = cause
        async with self._send_lock:
            old_link, self._link = self._link, None
        if old_link is not None:
            self._tasks.spawn(self._retire(old_link, list(self._link_tasks)), "close-dead-link")
            self._link_tasks = []
        await self._on_events(
            [ConnectionLost(f"gave up after {self.retry.max_retries} retries: {cause}", final=True)]
        )
        return False
