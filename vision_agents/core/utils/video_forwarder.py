"""Fan-out of one video track to many consumers, each at its own pace.

One reader task pulls the source track and keeps only the newest frame. Every consumer
has its own task and its own frame rate: when it is due it takes the newest frame it has
not seen yet, so a slow consumer only ever delays itself and nobody is fed a backlog.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamError, MediaStreamTrack

from vision_agents.core.utils.clock import MONOTONIC, Clock

logger = logging.getLogger(__name__)

FrameCallback = Callable[[av.VideoFrame], Awaitable[None] | None]

# How long stop() waits for a sync callback that is still running in its thread.
_SYNC_STOP_TIMEOUT_S = 2.0

MIN_FRAME_SIDE = 16
"""Frames narrower or shorter than this show nothing a model or detector can use: dropped."""
MAX_FRAME_SIDE = 8192
"""Frames wider or taller than this are dropped (an 8K camera, 7680x4320, and a 5K screen,
5120x2880, pass: consumers scale them to the size they need)."""


@dataclass(frozen=True)
class FrameHandlerStats:
    """A snapshot of one consumer's counters."""

    name: str
    fps: float | None
    """Effective rate cap (the lower of the handler's and the forwarder's); None: every frame."""
    frames_delivered: int
    frames_skipped: int
    """Source frames this consumer never got: it was busy or not yet due when they came."""
    errors: int
    last_frame_age: float | None
    """Seconds between the reader receiving the last delivered frame and its delivery."""


@dataclass(eq=False)
class _Consumer:
    callback: FrameCallback
    name: str
    fps: float | None
    is_async: bool
    last_seq: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    leaving: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    executor: concurrent.futures.ThreadPoolExecutor | None = None
    in_flight: concurrent.futures.Future[object] | None = None
    delivered: int = 0
    skipped: int = 0
    errors: int = 0
    last_age: float | None = None

    def leave(self) -> None:
        """Ask the consumer's task to finish after its current delivery."""
        self.leaving.set()
        self.wake.set()


class VideoForwarder:
    """Reads one video track once and hands its newest frames to many consumers.

    Each consumer gets frames at its own ``fps`` (fractions allowed, ``None`` for every new
    frame) on a fixed cadence. Frames are passed as they came from the track (original
    ``pts`` and ``time_base``) and the same ``av.VideoFrame`` may go to several consumers:
    consumers must not mutate it. Async callbacks are awaited in the consumer's task; sync
    callbacks run in one worker thread per consumer (calls never overlap) so they cannot
    stall the event loop. A callback that raises is logged and keeps receiving frames.

    The reader starts with the first handler and stops when the last one is removed (a new
    handler restarts it). Everything stops when the track ends or on :meth:`stop`.

    Frames below ``MIN_FRAME_SIDE`` or above ``MAX_FRAME_SIDE`` pixels on a side are dropped
    before any consumer sees them, with one warning when a track starts sending such sizes
    (and one line when its frames are usable again); ``frames_refused`` counts them.

    ``clock`` paces the consumers and times frame ages (real time by default; tests pass
    ``vision_agents.testing.ManualClock`` to drive the cadence step by step).
    """

    def __init__(
        self,
        input_track: MediaStreamTrack,
        fps: float | None = None,
        *,
        name: str = "video",
        clock: Clock = MONOTONIC,
    ) -> None:
        if input_track.kind != "video":
            raise ValueError(f"input_track must be a video track, got kind={input_track.kind!r}")
        self._track = input_track
        self._clock = clock
        self._fps = _check_fps(fps)
        self.name = name
        self._consumers: list[_Consumer] = []
        self._reader: asyncio.Task[None] | None = None
        self._latest: av.VideoFrame | None = None
        self._latest_seq = 0
        self._latest_at = 0.0
        self._ended = False
        self._ended_event = asyncio.Event()
        self._refused = 0
        self._refusing = False
        self._refused_at = 0.0
        self.on_refusing: Callable[[bool], None] | None = None
        """Called when the source starts (True) or stops (False) sending frames of an unusable
        size; the owner of the forwarder can look elsewhere meanwhile."""
        input_track.on("ended", self._mark_ended)

    @property
    def fps(self) -> float | None:
        """The rate cap applied to every consumer (None: source rate)."""
        return self._fps

    @property
    def ended(self) -> bool:
        """True once the source track ended or :meth:`stop` was called."""
        return self._ended or self._track.readyState != "live"

    @property
    def handler_count(self) -> int:
        """How many frame handlers are registered."""
        return len(self._consumers)

    @property
    def frames_received(self) -> int:
        """How many frames the reader has pulled from the source track."""
        return self._latest_seq

    def refused_within(self, seconds: float) -> bool:
        """The source sent a frame of an unusable size, and nothing usable since, in the
        last ``seconds`` (a forwarder nobody reads from learns nothing new)."""
        return self._refusing and self._clock.now() - self._refused_at < seconds

    @property
    def frames_refused(self) -> int:
        """How many frames were dropped for their size (see ``MIN_FRAME_SIDE``)."""
        return self._refused

    def handler_stats(self) -> list[FrameHandlerStats]:
        """Counters of every registered handler, in the order they were added."""
        return [
            FrameHandlerStats(c.name, c.fps, c.delivered, c.skipped, c.errors, c.last_age)
            for c in self._consumers
        ]

    def add_frame_handler(
        self, callback: FrameCallback, fps: float | None = None, name: str | None = None
    ) -> None:
        """Start delivering frames to ``callback`` at up to ``fps``; needs a running loop."""
        loop = asyncio.get_running_loop()
        fps = _check_fps(fps)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        if self._find(callback) is not None:
            raise ValueError(f"callback {callback!r} is already a frame handler of {self.name!r}")
        if self.ended:
            raise RuntimeError(f"video forwarder {self.name!r} has ended; create a new one")
        caps = [f for f in (fps, self._fps) if f is not None]
        consumer = _Consumer(
            callback=callback,
            name=name or str(getattr(callback, "__qualname__", None) or callback),
            fps=min(caps) if caps else None,
            is_async=_is_async_callable(callback),
            # The frame already held counts as new for a consumer that just joined.
            last_seq=self._latest_seq - 1 if self._latest is not None else self._latest_seq,
        )
        self._consumers.append(consumer)
        consumer.task = loop.create_task(
            self._run_consumer(consumer), name=f"{self.name}:{consumer.name}"
        )
        if self._reader is None:
            self._reader = loop.create_task(self._read(), name=f"{self.name}:reader")

    async def remove_frame_handler(self, callback: FrameCallback) -> None:
        """Stop delivering to ``callback`` and wait for its task; the last one stops the reader."""
        consumer = self._find(callback)
        if consumer is None:
            raise ValueError(f"callback {callback!r} is not a frame handler of {self.name!r}")
        self._consumers.remove(consumer)
        consumer.leave()
        await _cancel_and_wait([consumer.task])
        if not self._consumers and self._reader is not None:
            reader, self._reader = self._reader, None
            self._latest = None  # a later consumer must not get a stale frame
            await _cancel_and_wait([reader])

    async def stop(self) -> None:
        """Stop every consumer and the reader, and wait for them; safe to call twice."""
        self._mark_ended()
        consumers = list(self._consumers)
        self._consumers.clear()
        await _cancel_and_wait([c.task for c in consumers] + [self._reader])
        self._reader = None
        self._latest = None

    async def wait_ended(self) -> None:
        """Wait until the track ends (or stop() is called) and every task has finished."""
        await self._ended_event.wait()
        tasks = [c.task for c in self._consumers] + [self._reader]
        await _wait_tasks(tasks)

    def _find(self, callback: FrameCallback) -> _Consumer | None:
        # Identity, not ==: callbacks may be unhashable or compare equal to other handlers.
        return next((c for c in self._consumers if _same_callable(c.callback, callback)), None)

    def _mark_ended(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._ended_event.set()
        with contextlib.suppress(KeyError):  # aiortc drops all listeners when a track stops
            self._track.remove_listener("ended", self._mark_ended)
        for consumer in self._consumers:
            consumer.leave()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            while True:
                frame = await self._track.recv()
                if not isinstance(frame, av.VideoFrame):
                    raise TypeError(f"expected av.VideoFrame from the track, got {type(frame)}")
                if not self._usable(frame):
                    continue
                self._latest = frame
                self._latest_seq += 1
                self._latest_at = self._clock.now()
                for consumer in self._consumers:
                    consumer.wake.set()
        except MediaStreamError:
            logger.debug("video forwarder %r: source track ended", self.name)
        except Exception:
            logger.exception("video forwarder %r: reading the source track failed", self.name)
        self._mark_ended()

    def _usable(self, frame: av.VideoFrame) -> bool:
        """False for a frame of a size no consumer should get; logs once per run of them."""
        width, height = frame.width, frame.height
        if MIN_FRAME_SIDE <= min(width, height) and max(width, height) <= MAX_FRAME_SIDE:
            if self._refusing:
                self._refusing = False
                self._tell_refusing(False)
                logger.info(
                    "video %r: frames of a usable size again (%dx%d); %d dropped in all",
                    self.name,
                    width,
                    height,
                    self._refused,
                )
            return True
        self._refused += 1
        self._refused_at = self._clock.now()
        if not self._refusing:
            self._refusing = True
            self._tell_refusing(True)
            logger.warning(
                "video %r sends %dx%d frames: dropped until they are %d to %d pixels a side",
                self.name,
                width,
                height,
                MIN_FRAME_SIDE,
                MAX_FRAME_SIDE,
            )
        return False

    def _tell_refusing(self, refusing: bool) -> None:
        if self.on_refusing is not None:
            try:
                self.on_refusing(refusing)
            except Exception:
                logger.exception("video %r: the on_refusing callback failed", self.name)

    async def _run_consumer(self, consumer: _Consumer) -> None:
        clock = self._clock
        interval = 1.0 / consumer.fps if consumer.fps is not None else None
        next_due = clock.now()
        try:
            while True:
                if interval is not None and (delay := next_due - clock.now()) > 0:
                    await clock.wait(consumer.leaving, delay)
                frame = await self._next_frame(consumer)
                if frame is None:
                    return
                await self._deliver(consumer, frame)
                if interval is not None:
                    next_due += interval
                    now = clock.now()
                    if now - next_due > interval:  # fell behind: re-anchor, don't burst
                        next_due = now
        finally:
            await _release_thread(consumer)

    async def _next_frame(self, consumer: _Consumer) -> av.VideoFrame | None:
        """The newest frame this consumer has not had yet, waiting for one; None at the end."""
        while True:
            consumer.wake.clear()
            if consumer.leaving.is_set():
                return None
            if self._latest is not None and self._latest_seq > consumer.last_seq:
                consumer.skipped += self._latest_seq - consumer.last_seq - 1
                consumer.last_seq = self._latest_seq
                consumer.last_age = self._clock.now() - self._latest_at
                return self._latest
            await consumer.wake.wait()

    async def _deliver(self, consumer: _Consumer, frame: av.VideoFrame) -> None:
        consumer.delivered += 1
        try:
            if consumer.is_async:
                result: object = consumer.callback(frame)
            else:
                if consumer.executor is None:
                    consumer.executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix=f"{self.name}:{consumer.name}"
                    )
                consumer.in_flight = consumer.executor.submit(consumer.callback, frame)
                result = await asyncio.wrap_future(consumer.in_flight)
            if inspect.isawaitable(result):
                await result
        except Exception:
            consumer.errors += 1
            logger.exception(
                "video forwarder %r: frame handler %r raised; it keeps receiving frames",
                self.name,
                consumer.name,
            )


async def _release_thread(consumer: _Consumer) -> None:
    """Shut down a consumer's worker thread, letting a running sync callback finish first."""
    executor, consumer.executor = consumer.executor, None
    if executor is None:
        return
    finished = True
    try:
        if consumer.in_flight is not None and not consumer.in_flight.done():
            done, _ = await asyncio.wait(
                [asyncio.wrap_future(consumer.in_flight)], timeout=_SYNC_STOP_TIMEOUT_S
            )
            finished = bool(done)
            if not finished:
                logger.warning(
                    "frame handler %r still running %.1fs after stop; its thread exits when it returns",
                    consumer.name,
                    _SYNC_STOP_TIMEOUT_S,
                )
    finally:
        executor.shutdown(wait=finished)


async def _cancel_and_wait(tasks: list[asyncio.Task[None] | None]) -> None:
    """Cancel and await tasks; a task calling this for itself just finishes on its own."""
    current = asyncio.current_task()
    for task in tasks:
        if task is not None and task is not current:
            task.cancel()
    await _wait_tasks(tasks)


async def _wait_tasks(tasks: list[asyncio.Task[None] | None]) -> None:
    current = asyncio.current_task()
    pending = [t for t in tasks if t is not None and t is not current]
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("video forwarder task %s failed", task.get_name(), exc_info=error)


def _check_fps(fps: float | None) -> float | None:
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")
    if fps <= 0:
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")
    return float(fps)


def _is_async_callable(callback: Callable[..., object]) -> bool:
    # Also catches objects whose class defines ``async def __call__``.
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        type(callback).__call__
    )


def _same_callable(a: object, b: object) -> bool:
    """``a is b``, except that two bound methods of one object's one function also match."""
    if a is b:
        return True
    func = getattr(a, "__func__", None)
    return (
        func is not None
        and func is getattr(b, "__func__", None)
        and getattr(a, "__self__", None) is getattr(b, "__self__", None)
    )
