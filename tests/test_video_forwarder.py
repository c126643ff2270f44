"""Behaviour of VideoForwarder: per-consumer rates, freshness, isolation, errors and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import threading
import time
from dataclasses import dataclass, field

import av
import pytest
from aiortc import MediaStreamError, MediaStreamTrack

from tests.conftest import no_leaks, wait_until
from tests.media_tracks import VIDEO_TIME_BASE, SyntheticVideoTrack
from vision_agents.core.utils.video_forwarder import FrameHandlerStats, VideoForwarder
from vision_agents.testing import ManualClock


@dataclass
class Recorder:
    """An async frame handler that records when each frame came, how old and how fresh it was."""

    track: SyntheticVideoTrack
    work_s: float = 0.0
    times: list[float] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)
    stale: int = 0  # deliveries of a frame that was not the newest one made
    frames: list[av.VideoFrame] = field(default_factory=list)
    got_frame: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, frame: av.VideoFrame) -> None:
        self.note(frame)
        if self.work_s:
            await asyncio.sleep(self.work_s)

    def note(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        self.times.append(now)
        self.ages.append(self.track.age(frame, now))
        if frame.pts != self.track.latest_pts:
            self.stale += 1
        self.frames.append(frame)
        self.got_frame.set()

    def rate(self) -> float:
        """Mean delivery rate over the recorded deliveries (fixed cadence: spacing matters)."""
        assert len(self.times) >= 3, self.times
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    async def wait_frames(self, n: int, limit_s: float = 5.0) -> None:
        async with asyncio.timeout(limit_s):
            while len(self.times) < n:
                self.got_frame.clear()
                await self.got_frame.wait()


def stats_by_name(fwd: VideoForwarder) -> dict[str, FrameHandlerStats]:
    return {s.name: s for s in fwd.handler_stats()}


async def test_each_consumer_gets_its_own_rate_of_fresh_frames() -> None:
    """0.5/1/5 fps consumers hit their rates next to a 300 ms consumer, with the newest frames."""
    track = SyntheticVideoTrack(fps=30)
    slow_sync_calls: list[float] = []

    def slow_sync(frame: av.VideoFrame) -> None:
        slow_sync_calls.append(track.age(frame))
        time.sleep(0.3)

    consumers = {
        0.5: Recorder(track),
        1.0: Recorder(track),
        5.0: Recorder(track),
    }
    slow = Recorder(track, work_s=0.3)
    # Fixed cadence: 50 ms of work per frame must not stretch the period to 250 ms.
    working = Recorder(track, work_s=0.05)
    async with no_leaks():
        fwd = VideoForwarder(track)
        for fps, rec in consumers.items():
            fwd.add_frame_handler(rec, fps=fps, name=f"at-{fps}")
        fwd.add_frame_handler(slow, name="slow-async")
        fwd.add_frame_handler(working, fps=5, name="working")
        fwd.add_frame_handler(slow_sync, name="slow-sync")
        # 0.5 fps delivers at about 0, 2 and 4 s: three deliveries give two intervals.
        await consumers[0.5].wait_frames(3, limit_s=6.0)
        await fwd.stop()

    for fps, rec in consumers.items():
        assert rec.rate() == pytest.approx(fps, rel=0.10), (fps, rec.times)
        assert rec.stale == 0
    assert working.rate() == pytest.approx(5.0, rel=0.10)
    fast = consumers[5.0]
    assert statistics.median(fast.ages) < 0.05, fast.ages
    # The 300 ms consumers get fewer frames, but the newest ones, not a backlog.
    assert 2.5 < slow.rate() < 3.5
    assert slow.stale == 0 and statistics.median(slow.ages) < 0.05, slow.ages
    assert len(slow_sync_calls) >= 8 and statistics.median(slow_sync_calls) < 0.1
    # Frames arrive untouched and in order.
    pts = [f.pts or 0 for f in fast.frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts)
    assert all(f.time_base == VIDEO_TIME_BASE for f in fast.frames)
    # The source was read once per frame, whatever the number of consumers.
    assert fwd.frames_received == track.frames_sent
    assert track.recv_calls - track.frames_sent <= 1
    assert fwd.ended and not track.readyState == "ended"


async def test_stats_count_delivered_and_skipped_frames() -> None:
    track = SyntheticVideoTrack(fps=30)
    fast, every = Recorder(track), Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track, name="cam")
        fwd.add_frame_handler(fast, fps=10, name="ten")
        fwd.add_frame_handler(every, name="all")
        assert fwd.handler_count == 2
        await fast.wait_frames(5)
        stats = stats_by_name(fwd)
        await fwd.stop()
    ten, all_ = stats["ten"], stats["all"]
    assert ten.fps == 10.0 and all_.fps is None
    assert ten.frames_delivered == len(fast.times)
    assert ten.frames_skipped >= ten.frames_delivered
    assert ten.last_frame_age is not None and ten.last_frame_age < 0.1
    assert all_.frames_skipped <= 2
    assert fwd.handler_count == 0


async def test_forwarder_fps_caps_every_consumer() -> None:
    track = SyntheticVideoTrack(fps=30)
    async with no_leaks():
        fwd = VideoForwarder(track, fps=2)
        fwd.add_frame_handler(Recorder(track), name="uncapped")
        fwd.add_frame_handler(Recorder(track), fps=10, name="faster")
        fwd.add_frame_handler(Recorder(track), fps=0.25, name="slower")
        caps = {s.name: s.fps for s in fwd.handler_stats()}
        await fwd.stop()
    assert caps == {"uncapped": 2.0, "faster": 2.0, "slower": 0.25}


async def test_same_frame_object_goes_to_every_consumer() -> None:
    track = SyntheticVideoTrack(fps=30)
    a, b = Recorder(track), Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(a)
        fwd.add_frame_handler(b)
        await a.wait_frames(3)
        await b.wait_frames(3)
        await fwd.stop()
    assert a.frames[0] is b.frames[0]


async def test_slow_sync_callback_runs_in_one_thread_and_never_blocks_the_loop() -> None:
    track = SyntheticVideoTrack(fps=30)
    threads: set[str] = set()
    running = 0
    overlaps = 0
    lock = threading.Lock()

    def blocking(frame: av.VideoFrame) -> None:
        nonlocal running, overlaps
        with lock:
            running += 1
            overlaps += running > 1
        threads.add(threading.current_thread().name)
        time.sleep(0.3)
        with lock:
            running -= 1

    lateness: list[float] = []

    async def ticker() -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lateness.append(time.monotonic() - start - 0.01)

    realtime = Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(blocking, name="blocking")
        fwd.add_frame_handler(realtime, fps=5, name="realtime")
        tick = asyncio.create_task(ticker())
        await realtime.wait_frames(8)
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
        await fwd.stop()
    # Run on the loop, the 0.3 s callback would make a tick at least 0.3 s late; scheduling
    # on a loaded machine alone makes them up to ~0.15 s late.
    assert max(lateness) < 0.25, max(lateness)
    assert threads and threading.main_thread().name not in threads and len(threads) == 1
    assert overlaps == 0
    assert realtime.stale == 0


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_failing_callback_is_logged_and_keeps_receiving(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    track = SyntheticVideoTrack(fps=30)
    calls = 0
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def fail(frame: av.VideoFrame) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            loop.call_soon_threadsafe(done.set)
        raise RuntimeError(f"broken processor on frame {frame.pts}")

    async def fail_async(frame: av.VideoFrame) -> None:
        fail(frame)

    async with no_leaks():
        fwd = VideoForwarder(track, name="cam")
        fwd.add_frame_handler(fail_async if kind == "async" else fail, name="detector")
        async with asyncio.timeout(5):
            await done.wait()
        errors = fwd.handler_stats()[0].errors
        await fwd.stop()
    assert errors >= 2
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) >= 2
    assert "detector" in failures[0].getMessage() and "cam" in failures[0].getMessage()
    assert failures[0].exc_info is not None


async def test_track_end_stops_everything() -> None:
    track = SyntheticVideoTrack(fps=30, max_frames=10)
    rec = Recorder(track)
    sync_calls: list[int | None] = []
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(rec, fps=5)
        fwd.add_frame_handler(lambda f: sync_calls.append(f.pts), name="sync")
        await asyncio.wait_for(fwd.wait_ended(), 5)
        assert fwd.ended
        with pytest.raises(RuntimeError, match="ended"):
            fwd.add_frame_handler(Recorder(track))
        await fwd.stop()
    assert track.frames_sent == 10 and sync_calls and rec.times


async def test_stopping_the_track_ends_a_low_rate_consumer_promptly() -> None:
    track = SyntheticVideoTrack(fps=30)
    rec = Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(rec, fps=0.2)  # next delivery would be 5 s away
        await rec.wait_frames(1)
        track.stop()
        start = time.monotonic()
        await asyncio.wait_for(fwd.wait_ended(), 2)
        assert time.monotonic() - start < 0.5
        assert fwd.ended
        await fwd.stop()


async def test_removing_the_last_handler_stops_reading_and_adding_restarts() -> None:
    track = SyntheticVideoTrack(fps=30)
    first, second = Recorder(track), Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(first)
        await first.wait_frames(3)
        await fwd.remove_frame_handler(first)
        assert fwd.handler_count == 0 and not fwd.ended
        calls_at_removal = track.recv_calls
        removed_pts = first.frames[-1].pts or 0
        await asyncio.sleep(0.2)  # a window in which a running reader would pull ~6 frames
        assert track.recv_calls == calls_at_removal
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("video:")]

        fwd.add_frame_handler(second)
        await second.wait_frames(2)
        # The first frame after the restart is new, not the one held before the pause.
        assert (second.frames[0].pts or 0) > removed_pts
        assert second.stale == 0
        await fwd.remove_frame_handler(second)


async def test_removing_one_handler_leaves_the_others_running() -> None:
    track = SyntheticVideoTrack(fps=30)
    stays, goes = Recorder(track), Recorder(track)
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(stays)
        fwd.add_frame_handler(goes)
        await goes.wait_frames(2)
        await fwd.remove_frame_handler(goes)
        count = len(goes.times)
        seen = len(stays.times)
        await stays.wait_frames(seen + 3)
        assert len(goes.times) == count
        await fwd.stop()


async def test_handler_can_remove_itself() -> None:
    track = SyntheticVideoTrack(fps=30)
    fwd = VideoForwarder(track)
    removed = asyncio.Event()

    async def once(frame: av.VideoFrame) -> None:
        await fwd.remove_frame_handler(once)
        removed.set()

    async with no_leaks():
        fwd.add_frame_handler(once)
        await asyncio.wait_for(removed.wait(), 5)
        await fwd.stop()
    assert fwd.handler_count == 0


async def test_stop_cancels_busy_handlers_and_is_idempotent() -> None:
    track = SyntheticVideoTrack(fps=30)
    started = asyncio.Event()
    sync_started = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def stuck(frame: av.VideoFrame) -> None:
        started.set()
        await asyncio.sleep(60)

    def busy(frame: av.VideoFrame) -> None:
        loop.call_soon_threadsafe(sync_started.set)
        time.sleep(0.2)

    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(stuck)
        fwd.add_frame_handler(busy)
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.wait_for(sync_started.wait(), 5)
        begin = time.monotonic()
        await fwd.stop()
        await fwd.stop()
        assert time.monotonic() - begin < 1.0
        await asyncio.wait_for(fwd.wait_ended(), 1)
    assert fwd.ended and fwd.handler_count == 0


async def test_argument_errors() -> None:
    track = SyntheticVideoTrack(fps=30)
    fwd = VideoForwarder(track)
    rec = Recorder(track)
    for bad in (0, -1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="fps"):
            fwd.add_frame_handler(rec, fps=bad)
        with pytest.raises(ValueError, match="fps"):
            VideoForwarder(track, fps=bad)
    with pytest.raises(TypeError, match="callable"):
        fwd.add_frame_handler("not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a frame handler"):
        await fwd.remove_frame_handler(rec)
    fwd.add_frame_handler(rec)
    with pytest.raises(ValueError, match="already"):
        fwd.add_frame_handler(rec)
    await fwd.stop()


def test_audio_track_is_rejected() -> None:
    from aiortc.mediastreams import AudioStreamTrack

    with pytest.raises(ValueError, match="kind='audio'"):
        VideoForwarder(AudioStreamTrack())


def test_adding_a_handler_needs_a_running_loop() -> None:
    track = SyntheticVideoTrack(fps=30)
    fwd = VideoForwarder(track)
    with pytest.raises(RuntimeError, match="running event loop"):
        fwd.add_frame_handler(lambda f: None)


async def test_bound_methods_are_matched_by_owner_and_function() -> None:
    class Processor:
        def __init__(self) -> None:
            self.frames = 0

        async def on_frame(self, frame: av.VideoFrame) -> None:
            self.frames += 1

    track = SyntheticVideoTrack(fps=30)
    one, two = Processor(), Processor()
    async with no_leaks():
        fwd = VideoForwarder(track)
        fwd.add_frame_handler(one.on_frame)
        fwd.add_frame_handler(two.on_frame)  # another object's method is another handler
        with pytest.raises(ValueError, match="already"):
            fwd.add_frame_handler(one.on_frame)
        await fwd.remove_frame_handler(one.on_frame)
        assert fwd.handler_count == 1
        await fwd.stop()


class _PushedTrack(MediaStreamTrack):
    """A video track whose frames the test hands over one by one."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._frames: asyncio.Queue[av.VideoFrame] = asyncio.Queue()
        self.count = 0

    def push(self) -> None:
        frame = av.VideoFrame(16, 16, "yuv420p")
        frame.pts = self.count
        self.count += 1
        self._frames.put_nowait(frame)

    async def recv(self) -> av.VideoFrame:
        return await self._frames.get()


async def test_the_cadence_follows_the_injected_clock_exactly() -> None:
    """10 s of a 30 fps source on a manual clock: a 5 fps consumer gets exactly one frame per
    0.2 s step, always the newest, with no real time passing; between steps, none."""
    clock = ManualClock()
    track = _PushedTrack()
    got: list[int] = []

    async def consumer(frame: av.VideoFrame) -> None:
        got.append(int(frame.pts or 0))

    fwd = VideoForwarder(track, name="manual", clock=clock)
    fwd.add_frame_handler(consumer, fps=5)
    try:
        for step in range(51):
            if step:
                clock.advance(0.1)  # half an interval: not due yet
                for _ in range(20):
                    await asyncio.sleep(0)
                assert len(got) == step, f"a frame came before it was due at step {step}"
                clock.advance(0.1)
            for _ in range(6):  # 0.2 s of a 30 fps source
                track.push()
            await wait_until(lambda s=step: len(got) == s + 1, 5, f"frame {step + 1}")
            assert got[-1] == track.count - 1, "the consumer did not get the newest frame"
        stats = fwd.handler_stats()[0]
        assert stats.frames_delivered == 51 and stats.frames_skipped == 51 * 6 - 51
        assert stats.last_frame_age == 0.0  # taken at the clock time it arrived: no time passed
    finally:
        await fwd.stop()


class SizedTrack(MediaStreamTrack):
    """Sends one frame of each given size, 10 ms apart, then ends."""

    kind = "video"

    def __init__(self, sizes: list[tuple[int, int]]) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.pts = 0

    async def recv(self) -> av.VideoFrame:
        if not self.sizes:
            self.stop()
            raise MediaStreamError
        await asyncio.sleep(0.01)
        width, height = self.sizes.pop(0)
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.pts, frame.time_base = self.pts, VIDEO_TIME_BASE
        self.pts += 3000
        return frame


async def test_frames_of_an_unusable_size_are_dropped_with_one_warning_a_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 4 px and a too-wide strip are refused; 8K and sizes that change every frame go on.
    sizes = [(4, 4), (4, 4), (640, 480), (9000, 16), (8, 1000), (7680, 4320), (1280, 720),
             (720, 1280), (16, 16)]  # fmt: skip
    track = SizedTrack(sizes)
    got: list[tuple[int, int]] = []

    async def handler(frame: av.VideoFrame) -> None:
        got.append((frame.width, frame.height))

    forwarder = VideoForwarder(track, name="video:odd")
    caplog.set_level(logging.INFO, logger="vision_agents.core.utils.video_forwarder")
    forwarder.add_frame_handler(handler)
    async with asyncio.timeout(10):
        await forwarder.wait_ended()
    await forwarder.stop()
    usable = [(640, 480), (7680, 4320), (1280, 720), (720, 1280), (16, 16)]
    # The handler takes the newest frame when it is due: none it got may be refused ones.
    assert got and set(got) <= set(usable), got
    assert forwarder.frames_refused == 4
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("video_forwarder")]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.getMessage() for w in warnings] == [
        "video 'video:odd' sends 4x4 frames: dropped until they are 16 to 8192 pixels a side",
        "video 'video:odd' sends 9000x16 frames: dropped until they are 16 to 8192 pixels a side",
    ], lines
    assert "video 'video:odd': frames of a usable size again (640x480); 2 dropped in all" in lines
