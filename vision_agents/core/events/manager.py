"""A typed event bus: handlers subscribe by annotated event type; each runs isolated from the rest."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import types
import typing
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vision_agents.core.events.base import BaseEvent, EventsDroppedEvent, HandlerErrorEvent

logger = logging.getLogger("vision_agents.events")

H = TypeVar("H", bound=Callable[..., Any])

# At most one "dropped events" warning per handler per this many seconds.
_DROP_LOG_INTERVAL_S = 5.0


@dataclass(eq=False)
class _Subscription:
    handler: Callable[..., Any]
    name: str
    event_types: tuple[type[BaseEvent], ...]
    queue: deque[BaseEvent] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    active: bool = True
    unreported: int = 0  # drops not yet announced with an EventsDroppedEvent
    unlogged: int = 0  # drops not yet written to the log
    last_log: float = float("-inf")


class EventManager:
    """Delivers events to handlers subscribed by the event type their first parameter names.

    Delivery matches with ``isinstance``: a handler for ``BaseEvent`` gets everything and a
    handler for a base class gets its subclasses. Each handler has its own FIFO queue and its own
    worker task, so a slow or failing handler delays only itself and sees events in send order.
    Workers start when an event is queued and exit when their queue drains: an idle manager owns
    no tasks. Async handlers are awaited; plain functions are called on the event loop and must
    therefore be quick.

    A handler that raises is logged and reported with a ``HandlerErrorEvent`` on this manager
    (a handler failing on a ``HandlerErrorEvent`` is only logged, so errors never loop).

    Overflow policy: each handler queues at most ``max_queue`` events. When its queue is full the
    OLDEST queued event is dropped, since for realtime media the newest data matters most. Drops
    are counted in ``dropped`` (keyed by the handler's ``__qualname__``, ``#2`` appended on a
    clash), logged at most once per handler every few seconds, and announced with an
    ``EventsDroppedEvent`` whose ``dropped`` counts the drops since the previous one. Drops caused by delivering an ``EventsDroppedEvent`` are
    counted but announce nothing by themselves, so a full queue cannot make reports forever.

    Threads and loops: the manager belongs to the first running event loop it sees (at
    ``subscribe``, ``send`` or ``wait``) until that loop is closed. ``send`` from any other thread
    hands the event to that loop safely. Events sent before any loop was seen wait (bounded by
    ``max_queue``) and are delivered once the manager is used from a running loop.
    """

    def __init__(self, *, max_queue: int = 1024, name: str = "events") -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self._max_queue = max_queue
        self._name = name
        self._subs: tuple[_Subscription, ...] = ()
        self._routes: dict[type[BaseEvent], tuple[_Subscription, ...]] = {}
        self._dropped: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # Guards what other threads touch: the inbox, the drop counters and the flags below.
        self._lock = threading.Lock()
        self._inbox: deque[BaseEvent] = deque()
        self._drain_scheduled = False
        self._report_scheduled = False

    @property
    def dropped(self) -> dict[str, int]:
        """How many events each handler (by name) lost to a full queue, since subscribing."""
        with self._lock:
            return dict(self._dropped)

    def subscribe(self, handler: H) -> H:
        """Subscribe ``handler`` to the event type(s) its first parameter is annotated with.

        Usable as a decorator. ``A | B`` (or ``Union[A, B]``) subscribes to each member.
        Raises TypeError when the annotation is missing, unresolvable or not a BaseEvent type,
        and ValueError when the handler is already subscribed.
        """
        event_types = _event_types_of(handler)
        with self._lock:
            if any(sub.handler == handler for sub in self._subs):
                raise ValueError(f"handler {_handler_name(handler)} is already subscribed")
            name = _unique_name(_handler_name(handler), {sub.name for sub in self._subs})
            self._subs = (*self._subs, _Subscription(handler, name, event_types))
            self._routes = {}
            self._dropped.setdefault(name, 0)
        self._bind_running_loop()
        return handler

    def unsubscribe(self, handler: Callable[..., Any]) -> None:
        """Stop delivering to ``handler``; its queued events are discarded and a call in
        progress finishes. Unsubscribing a handler that is not subscribed does nothing."""
        with self._lock:
            gone = [sub for sub in self._subs if sub.handler == handler]
            self._subs = tuple(sub for sub in self._subs if sub.handler != handler)
            self._routes = {}
        for sub in gone:
            sub.active = False
            sub.queue.clear()

    def send(self, event: BaseEvent) -> None:
        """Queue ``event`` for every matching handler. Never blocks; handlers cannot make it raise."""
        if not isinstance(event, BaseEvent):
            raise TypeError(f"send() takes a BaseEvent instance, got {type(event).__name__}")
        if self._closed:
            logger.debug("%s: closed, ignoring %s", self._name, type(event).__name__)
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is self._loop:
            self._dispatch(event)
        elif running is not None and self._bind_running_loop():
            self._dispatch(event)
        else:
            self._hand_off(event)

    # The timeout parameter is part of the agreed API (tests call wait(timeout=...)).
    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Return once every event sent so far (and every event those caused) was handled.

        Raises TimeoutError after ``timeout`` seconds. Await it on the manager's loop.
        """
        if not self._bind_running_loop():
            raise RuntimeError(f"{self._name}: wait() must run on the loop the manager uses")
        async with asyncio.timeout(timeout):
            while True:
                self._drain_inbox()
                self._report_drops()
                current = asyncio.current_task()
                busy = [t for t in self._tasks if not t.done() and t is not current]
                if not busy:
                    return
                await asyncio.wait(busy)

    async def close(self) -> None:
        """Cancel and await every worker; later sends are ignored. Idempotent."""
        self._closed = True
        with self._lock:
            self._inbox.clear()
        for sub in self._subs:
            sub.queue.clear()
        # A handler may close the manager; its own worker then ends when the handler returns.
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- on the manager's loop -------------------------------------------------------------

    def _dispatch(self, event: BaseEvent) -> None:
        cls = type(event)
        subs = self._routes.get(cls)
        if subs is None:
            subs = tuple(sub for sub in self._subs if issubclass(cls, sub.event_types))
            self._routes[cls] = subs
        for sub in subs:
            queue = sub.queue
            if len(queue) >= self._max_queue:
                queue.popleft()
                self._count_drop(sub, announce=not isinstance(event, EventsDroppedEvent))
            queue.append(event)
            if sub.task is None:
                self._start_worker(sub)

    def _start_worker(self, sub: _Subscription) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._work(sub), name=f"{self._name}:{sub.name}")
        sub.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, sub: _Subscription) -> None:
        try:
            while sub.queue and sub.active and not self._closed:
                await self._call(sub, sub.queue.popleft())
        finally:
            # No await since the loop test above: an event queued from now on starts a new worker.
            if sub.task is asyncio.current_task():
                sub.task = None

    async def _call(self, sub: _Subscription, event: BaseEvent) -> None:
        try:
            result = sub.handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            logger.exception(
                "%s: handler %s raised on %s (%s)",
                self._name,
                sub.name,
                event.type,
                type(event).__name__,
            )
            if not isinstance(event, HandlerErrorEvent) and not self._closed:
                self._dispatch(
                    HandlerErrorEvent(
                        handler_name=sub.name,
                        event_type=event.type,
                        error=exc,
                        session_id=event.session_id,
                        plugin_name=event.plugin_name,
                    )
                )

    def _drain_inbox(self) -> None:
        with self._lock:
            events = list(self._inbox)
            self._inbox.clear()
            self._drain_scheduled = False
        if not self._closed:
            for event in events:
                self._dispatch(event)

    def _report_drops(self) -> None:
        with self._lock:
            self._report_scheduled = False
            reports: list[tuple[_Subscription, int]] = []
            for sub in self._subs:
                if sub.unreported:
                    reports.append((sub, sub.unreported))
                    sub.unreported = 0
        now = time.monotonic()
        for sub, count in reports:
            if now - sub.last_log >= _DROP_LOG_INTERVAL_S:
                logger.warning(
                    "%s: handler %s is too slow; dropped its %d oldest queued events "
                    "(%d in total, max_queue=%d)",
                    self._name,
                    sub.name,
                    sub.unlogged,
                    self._dropped.get(sub.name, 0),
                    self._max_queue,
                )
                sub.last_log = now
                sub.unlogged = 0
            if not self._closed:
                self._dispatch(EventsDroppedEvent(handler_name=sub.name, dropped=count))

    # -- on any thread ---------------------------------------------------------------------

    def _count_drop(self, sub: _Subscription, *, announce: bool) -> None:
        with self._lock:
            self._dropped[sub.name] = self._dropped.get(sub.name, 0) + 1
            sub.unreported += 1
            sub.unlogged += 1
            if not announce or self._report_scheduled or self._loop is None:
                return
            self._report_scheduled = True
            loop = self._loop
        self._call_soon(loop, self._report_drops)

    def _hand_off(self, event: BaseEvent) -> None:
        """Queue an event sent off the manager's loop and wake the loop to deliver it."""
        with self._lock:
            if len(self._inbox) >= self._max_queue:
                lost = self._inbox.popleft()
                lost_for = [sub for sub in self._subs if isinstance(lost, sub.event_types)]
            else:
                lost_for = []
            self._inbox.append(event)
            loop = self._loop
            wake = loop is not None and not self._drain_scheduled
            if wake:
                self._drain_scheduled = True
        for sub in lost_for:
            self._count_drop(sub, announce=True)
        if wake and loop is not None and not self._call_soon(loop, self._drain_inbox):
            with self._lock:
                self._drain_scheduled = False

    def _call_soon(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop closed meanwhile; the next loop to use us picks it up
            return False
        return True

    def _bind_running_loop(self) -> bool:
        """Adopt the running loop if we have none (or ours closed); True if we run on ours."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        if running is self._loop:
            return True
        if self._loop is not None and not self._loop.is_closed():
            return False
        with self._lock:
            self._loop = running
            self._drain_scheduled = False
            self._report_scheduled = False
        # Workers of a closed loop are gone: restart them here for whatever they left queued.
        self._tasks = set()
        for sub in self._subs:
            sub.task = None
        self._drain_inbox()
        for sub in self._subs:
            if sub.queue and sub.task is None:
                self._start_worker(sub)
        self._report_drops()
        return True


def _handler_name(handler: Callable[..., Any]) -> str:
    name = getattr(handler, "__qualname__", None)
    return name if isinstance(name, str) else type(handler).__qualname__


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    return candidate


def _event_types_of(handler: Callable[..., Any]) -> tuple[type[BaseEvent], ...]:
    """The BaseEvent subclasses named by the annotation of the handler's first parameter."""
    name = _handler_name(handler)
    if not callable(handler):
        raise TypeError(f"handler must be callable, got {handler!r}")
    target = handler
    if not (inspect.isfunction(handler) or inspect.ismethod(handler)):
        target = type(handler).__call__  # a callable object: read its __call__
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of handler {name}: {exc}") from exc
    if not params:
        raise TypeError(f"handler {name} takes no parameters; it must take the event first")
    param = params[0].name
    try:
        hints = typing.get_type_hints(target)
    except NameError as exc:
        raise TypeError(
            f"cannot resolve the annotation of handler {name}: {exc}. String annotations "
            "(from __future__ import annotations) are resolved in the handler's module "
            "globals: define or import the event class at module level."
        ) from exc
    except Exception as exc:
        raise TypeError(f"cannot resolve the annotations of handler {name}: {exc}") from exc
    if param not in hints:
        raise TypeError(
            f"handler {name} has no annotation on its first parameter {param!r}; annotate it "
            "with a BaseEvent subclass (or a union of them), e.g. (event: MyEvent)"
        )
    annotation = hints[param]
    members: tuple[Any, ...] = (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        if type(None) in members:
            raise TypeError(
                f"handler {name} is annotated with {annotation!r}: Optional is not accepted, "
                "events are never None; drop the None"
            )
    for member in members:
        if not (isinstance(member, type) and issubclass(member, BaseEvent)):
            raise TypeError(
                f"handler {name} is annotated with {annotation!r}: expected a BaseEvent "
                "subclass or a union of them"
            )
    return tuple(members)
