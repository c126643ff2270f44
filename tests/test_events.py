"""Behaviour of EventManager: typed subscription, isolation, ordering, bounds, threads, close."""

# String annotations on purpose: handlers below are resolved through the module globals.
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar, Optional, Union

import pytest

from vision_agents.core.events import (
    BaseEvent,
    EventManager,
    EventsDroppedEvent,
    HandlerErrorEvent,
)


@dataclass(kw_only=True)
class Ping(BaseEvent):
    type: ClassVar[str] = "test.ping"
    n: int = 0


@dataclass(kw_only=True)
class LoudPing(Ping):
    type: ClassVar[str] = "test.ping.loud"


@dataclass(kw_only=True)
class Pong(BaseEvent):
    type: ClassVar[str] = "test.pong"
    n: int = 0


@dataclass(kw_only=True)
class Other(BaseEvent):
    type: ClassVar[str] = "test.other"


@pytest.fixture
async def manager() -> AsyncIterator[EventManager]:
    events = EventManager()
    yield events
    await events.close()


async def test_union_handler_receives_each_member_and_nothing_else(manager: EventManager) -> None:
    seen: list[BaseEvent] = []

    @manager.subscribe
    async def on_pipe(event: Ping | Pong) -> None:
        seen.append(event)

    @manager.subscribe
    def on_typing_union(event: Union[Pong, Other]) -> None:  # noqa: UP007 - the form under test
        seen.append(event)

    ping, pong, other = Ping(), Pong(), Other()
    for event in (ping, pong, other):
        manager.send(event)
    await manager.wait(timeout=5)

    assert sorted(map(id, seen)) == sorted(map(id, [ping, pong, pong, other]))


async def test_base_class_subscription_gets_subclasses(manager: EventManager) -> None:
    pings: list[Ping] = []
    everything: list[BaseEvent] = []

    @manager.subscribe
    async def on_ping(event: Ping) -> None:
        pings.append(event)

    @manager.subscribe
    async def on_any(event: BaseEvent) -> None:
        everything.append(event)

    events = [Ping(n=1), LoudPing(n=2), Pong(n=3)]
    for event in events:
        manager.send(event)
    await manager.wait(timeout=5)

    assert pings == events[:2]
    assert everything == events


async def test_runtime_annotations_and_callable_objects_work(manager: EventManager) -> None:
    seen: list[object] = []

    async def on_ping(event: Ping) -> None:
        seen.append(event)

    # This module uses string annotations; give one handler a real class object instead.
    on_ping.__annotations__ = {"event": Ping}

    class Collector:
        def __call__(self, event: Pong) -> None:
            seen.append(event)

    manager.subscribe(on_ping)
    manager.subscribe(Collector())
    ping, pong = Ping(), Pong()
    manager.send(ping)
    manager.send(pong)
    await manager.wait(timeout=5)
    assert seen == [ping, pong]


def test_missing_annotation_is_a_type_error_naming_the_handler() -> None:
    manager = EventManager()

    with pytest.raises(TypeError, match=r"<lambda>.*'event'"):
        manager.subscribe(lambda event: None)


def test_non_event_annotation_is_a_type_error_naming_it() -> None:
    manager = EventManager()

    async def on_number(event: int) -> None:
        pass

    with pytest.raises(TypeError, match=r"on_number.*int"):
        manager.subscribe(on_number)


def test_optional_is_rejected() -> None:
    manager = EventManager()

    async def on_maybe(event: Optional[Ping]) -> None:  # noqa: UP045 - the form under test
        pass

    async def on_maybe_pipe(event: Ping | None) -> None:
        pass

    for handler in (on_maybe, on_maybe_pipe):
        with pytest.raises(TypeError, match="Optional"):
            manager.subscribe(handler)


def test_unresolvable_string_annotation_says_so() -> None:
    manager = EventManager()

    @dataclass(kw_only=True)
    class LocalEvent(BaseEvent):
        pass

    async def on_local(event: LocalEvent) -> None:
        pass

    with pytest.raises(TypeError, match=r"on_local.*LocalEvent.*module level"):
        manager.subscribe(on_local)


def test_handler_without_parameters_and_double_subscribe_are_errors() -> None:
    manager = EventManager()

    async def no_params() -> None:
        pass

    async def on_ping(event: Ping) -> None:
        pass

    with pytest.raises(TypeError, match="no_params"):
        manager.subscribe(no_params)
    manager.subscribe(on_ping)
    with pytest.raises(ValueError, match="already subscribed"):
        manager.subscribe(on_ping)


async def test_failing_handler_is_isolated_and_reported(
    manager: EventManager, caplog: pytest.LogCaptureFixture
) -> None:
    good: list[int] = []
    errors: list[HandlerErrorEvent] = []

    @manager.subscribe
    async def on_ping_fails(event: Ping) -> None:
        raise RuntimeError(f"boom {event.n}")

    @manager.subscribe
    def on_ping_works(event: Ping) -> None:
        good.append(event.n)

    @manager.subscribe
    async def on_error(event: HandlerErrorEvent) -> None:
        errors.append(event)

    with caplog.at_level(logging.ERROR, logger="vision_agents.events"):
        for n in range(3):
            manager.send(Ping(n=n, session_id="s1"))  # must not raise
        await manager.wait(timeout=5)

    assert good == [0, 1, 2]
    # The failing worker kept going: one report per event, in order.
    assert [str(e.error) for e in errors] == ["boom 0", "boom 1", "boom 2"]
    assert all(e.handler_name.endswith("on_ping_fails") for e in errors)
    assert all(e.event_type == "test.ping" and e.session_id == "s1" for e in errors)
    failures = [r for r in caplog.records if r.name == "vision_agents.events"]
    assert len(failures) == 3
    assert "on_ping_fails" in failures[0].getMessage()
    assert "test.ping" in failures[0].getMessage()


async def test_handler_failing_on_its_own_error_event_does_not_loop(
    manager: EventManager,
) -> None:
    calls: list[type[BaseEvent]] = []

    @manager.subscribe
    async def always_fails(event: BaseEvent) -> None:
        calls.append(type(event))
        raise ValueError("nope")

    manager.send(Ping())
    await manager.wait(timeout=5)
    assert calls == [Ping, HandlerErrorEvent]


async def test_slow_handler_does_not_delay_others(manager: EventManager) -> None:
    n = 5
    fast_seen: list[int] = []
    slow_done: list[int] = []
    fast_finished = asyncio.Event()

    @manager.subscribe
    async def slow(event: Ping) -> None:
        await asyncio.sleep(1.0)
        slow_done.append(event.n)

    @manager.subscribe
    async def fast(event: Ping) -> None:
        fast_seen.append(event.n)
        if len(fast_seen) == n:
            fast_finished.set()

    started = time.monotonic()
    for i in range(n):
        manager.send(Ping(n=i))
    publish_s = time.monotonic() - started
    await asyncio.wait_for(fast_finished.wait(), timeout=30)

    # The slow handler needs >= 1 s for its first event; the fast one already saw all of them.
    assert fast_seen == list(range(n))
    assert slow_done == []
    assert publish_s < 1.0
    # close() (fixture) cancels the slow worker instead of waiting 5 s.


async def test_each_handler_sees_events_in_send_order_under_load() -> None:
    manager = EventManager(max_queue=10_000)
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}

    @manager.subscribe
    async def a(event: Ping) -> None:
        if event.n % 7 == 0:
            await asyncio.sleep(0)
        seen["a"].append(event.n)

    @manager.subscribe
    async def b(event: Ping) -> None:
        await asyncio.sleep(0)
        seen["b"].append(event.n)

    @manager.subscribe
    def c(event: Ping) -> None:
        seen["c"].append(event.n)

    for i in range(2000):
        manager.send(Ping(n=i))
        if i % 50 == 0:
            await asyncio.sleep(0)  # interleave publishing with the workers
    await manager.wait(timeout=30)
    await manager.close()

    for name, got in seen.items():
        assert got == list(range(2000)), name


async def test_full_queue_drops_oldest_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    manager = EventManager(max_queue=10)
    delivered: list[int] = []
    reports: list[EventsDroppedEvent] = []
    entered, release = asyncio.Event(), asyncio.Event()

    @manager.subscribe
    async def blocked(event: Ping) -> None:
        delivered.append(event.n)
        entered.set()
        await release.wait()

    @manager.subscribe
    async def on_dropped(event: EventsDroppedEvent) -> None:
        reports.append(event)

    manager.send(Ping(n=-1))
    await entered.wait()  # the handler is now stuck on event -1
    with caplog.at_level(logging.WARNING, logger="vision_agents.events"):
        for i in range(100):
            manager.send(Ping(n=i))
            if i % 10 == 9:
                await asyncio.sleep(0)  # spread the drops over several loop iterations
        release.set()
        await manager.wait(timeout=5)
    await manager.close()

    assert delivered == [-1, *range(90, 100)]
    name = next(key for key in manager.dropped if key.endswith("blocked"))
    assert manager.dropped[name] == 90
    assert sum(r.dropped for r in reports if r.handler_name == name) == 90
    assert reports
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2  # rate-limited, not one line per drop
    assert "blocked" in warnings[0].getMessage()


async def test_drop_reports_into_a_full_queue_terminate() -> None:
    # The stuck handler takes everything, so drop reports land in its own full queue.
    manager = EventManager(max_queue=5)
    release = asyncio.Event()
    seen: list[BaseEvent] = []

    @manager.subscribe
    async def stuck(event: BaseEvent) -> None:
        seen.append(event)
        await release.wait()

    manager.send(Ping(n=-1))
    await asyncio.sleep(0)  # the worker takes event -1 and blocks; its queue is now empty
    assert seen
    for i in range(50):
        manager.send(Ping(n=i))
    for _ in range(10):
        await asyncio.sleep(0)  # give a report loop, if there were one, turns to run
    settled = sum(manager.dropped.values())
    for _ in range(10):
        await asyncio.sleep(0)
    assert sum(manager.dropped.values()) == settled
    assert settled >= 45

    release.set()
    await manager.wait(timeout=5)
    await manager.close()
    assert len(seen) <= 1 + 5 + 2  # the stuck event, a full queue, and a final report or two


async def test_close_cancels_workers_and_ignores_later_sends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = EventManager()
    seen: list[int] = []

    @manager.subscribe
    async def stuck(event: Ping) -> None:
        seen.append(event.n)
        await asyncio.Event().wait()

    @manager.subscribe
    async def other(event: Pong) -> None:
        await asyncio.Event().wait()

    manager.send(Ping(n=1))
    manager.send(Pong())
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == 3  # this test + one worker per handler

    await manager.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}

    with caplog.at_level(logging.DEBUG, logger="vision_agents.events"):
        manager.send(Ping(n=2))
    assert "closed" in caplog.text
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert seen == [1]


async def test_idle_manager_owns_no_tasks(manager: EventManager) -> None:
    @manager.subscribe
    async def on_ping(event: Ping) -> None:
        pass

    manager.send(Ping())
    await manager.wait(timeout=5)
    await asyncio.sleep(0)  # let the finished worker's task be collected
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_send_from_other_threads(manager: EventManager) -> None:
    threads, per_thread = 4, 200
    seen: list[tuple[str, int]] = []
    loop_thread = threading.get_ident()
    handler_threads: set[int] = set()

    @manager.subscribe
    async def on_ping(event: Ping) -> None:
        handler_threads.add(threading.get_ident())
        assert event.plugin_name is not None
        seen.append((event.plugin_name, event.n))

    def publish(name: str) -> None:
        for i in range(per_thread):
            manager.send(Ping(n=i, plugin_name=name))

    # Debug mode makes asyncio raise on loop calls from a foreign thread that are not threadsafe.
    asyncio.get_running_loop().set_debug(True)
    await asyncio.gather(*(asyncio.to_thread(publish, f"t{k}") for k in range(threads)))
    await manager.wait(timeout=10)

    assert handler_threads == {loop_thread}
    assert len(seen) == threads * per_thread
    for k in range(threads):
        assert [n for name, n in seen if name == f"t{k}"] == list(range(per_thread))


def test_events_sent_before_any_loop_are_delivered_once_one_runs() -> None:
    manager = EventManager()
    seen: list[int] = []

    @manager.subscribe
    async def on_ping(event: Ping) -> None:
        seen.append(event.n)

    for i in range(3):
        manager.send(Ping(n=i))

    async def main() -> None:
        await manager.wait(timeout=5)
        await manager.close()

    assert seen == []
    asyncio.run(main())
    assert seen == [0, 1, 2]


def test_manager_moves_to_a_new_loop_when_its_loop_closed() -> None:
    manager = EventManager()
    seen: list[int] = []

    @manager.subscribe
    async def on_ping(event: Ping) -> None:
        seen.append(event.n)

    async def round_trip(n: int) -> None:
        manager.send(Ping(n=n))
        await manager.wait(timeout=5)

    asyncio.run(round_trip(1))
    asyncio.run(round_trip(2))
    assert seen == [1, 2]


async def test_unsubscribe_stops_delivery_and_discards_queue(manager: EventManager) -> None:
    seen: list[int] = []

    async def on_ping(event: Ping) -> None:
        seen.append(event.n)

    manager.subscribe(on_ping)
    manager.send(Ping(n=1))
    await manager.wait(timeout=5)
    manager.send(Ping(n=2))  # queued, not yet handled
    manager.unsubscribe(on_ping)
    manager.send(Ping(n=3))
    await manager.wait(timeout=5)
    manager.unsubscribe(on_ping)  # a second time does nothing

    assert seen == [1]


async def test_bound_methods_subscribe_and_unsubscribe(manager: EventManager) -> None:
    class Listener:
        def __init__(self) -> None:
            self.seen: list[int] = []

        async def on_ping(self, event: Ping) -> None:
            self.seen.append(event.n)

    listener = Listener()
    manager.subscribe(listener.on_ping)
    manager.send(Ping(n=1))
    await manager.wait(timeout=5)
    manager.unsubscribe(listener.on_ping)  # a fresh, equal bound method
    manager.send(Ping(n=2))
    await manager.wait(timeout=5)
    assert listener.seen == [1]
    assert "test_bound_methods_subscribe_and_unsubscribe.<locals>.Listener.on_ping" in (
        manager.dropped
    )


def test_max_queue_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        EventManager(max_queue=0)
