"""Benchmark: one 30 fps source, a 300 ms-per-frame processor and a Realtime model at 5 fps.

For each forwarder design it reports, per consumer, the achieved frame rate and the age of
the frames it was handed (now minus capture time, taken when the callback starts):

- ``ours``: ``vision_agents.core.utils.video_forwarder.VideoForwarder`` (this repository);
- ``sequential``: ``benchmarks/_legacy_forwarder.py``, our re-implementation of the design
  where one loop awaits each handler in turn behind a FIFO of recent frames;
- ``vision-agents 0.6.9``: the published package's own forwarder, run in its own virtualenv
  (``--legacy-python``) through this same file in ``--worker`` mode.

The slow consumer either awaits ``asyncio.sleep`` or blocks in ``time.sleep`` (a sync
callback). Run from the repository root: ``python -m benchmarks.video_fanout``.

This file must stay importable with only the standard library, PyAV and aiortc at module
level: the worker runs it under another virtualenv where ``vision_agents`` is the published
package, so our own code is imported lazily, in the designs that need it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamError, MediaStreamTrack

DEFAULT_LEGACY_PYTHON = Path("/tmp/va-legacy/bin/python")
SLOW_KINDS = ("async", "sync")


class StampingTrack(MediaStreamTrack):
    """A camera-like 30 fps video track that records each frame's capture time by pts."""

    kind = "video"

    def __init__(self, fps: float, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.fps = fps
        self.size = (width, height)
        self.capture_times: dict[int, float] = {}
        self.recv_calls = 0
        self._index = 0
        self._next_due: float | None = None

    async def recv(self) -> av.VideoFrame:
        self.recv_calls += 1
        if self.readyState != "live":
            raise MediaStreamError
        interval = 1.0 / self.fps
        now = time.monotonic()
        if self._next_due is None:
            self._next_due = now
        elif now - self._next_due > interval:  # read late: drop missed frames like a camera
            missed = int((now - self._next_due) / interval)
            self._next_due += missed * interval
            self._index += missed
        await asyncio.sleep(max(0.0, self._next_due - time.monotonic()))
        self._next_due += interval
        frame = av.VideoFrame(*self.size, "yuv420p")
        frame.pts = self._index * round(90000 / self.fps)
        frame.time_base = Fraction(1, 90000)
        self._index += 1
        self.capture_times[frame.pts] = time.monotonic()
        return frame


@dataclass
class Probe:
    """A consumer that records when it got each frame and how old the frame was."""

    track: StampingTrack
    work_s: float = 0.0
    times: list[float] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)

    def _note(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        self.times.append(now)
        self.ages.append(now - self.track.capture_times[frame.pts or 0])

    async def on_frame_async(self, frame: av.VideoFrame) -> None:
        self._note(frame)
        if self.work_s:
            await asyncio.sleep(self.work_s)

    def on_frame_sync(self, frame: av.VideoFrame) -> None:
        self._note(frame)
        time.sleep(self.work_s)


@dataclass
class Row:
    design: str
    slow: str
    consumer: str
    frames: int
    fps: float
    age_p50_ms: float
    age_p95_ms: float
    age_max_ms: float
    loop_lag_max_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summarise(
    design: str, slow: str, name: str, probe: Probe, start: float, end: float, lag: float
) -> Row:
    kept = [age for t, age in zip(probe.times, probe.ages, strict=True) if start <= t <= end]
    nan = float("nan")
    return Row(
        design,
        slow,
        name,
        len(kept),
        len(kept) / (end - start),
        _percentile(kept, 0.50) * 1000 if kept else nan,
        _percentile(kept, 0.95) * 1000 if kept else nan,
        max(kept) * 1000 if kept else nan,
        lag * 1000,
    )


async def _measure_loop_lag(lags: list[float], period: float = 0.01) -> None:
    """Record how late each short sleep wakes up: the event loop's stalls."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(period)
        lags.append(time.monotonic() - before - period)


async def run_workload(
    design: str, make_forwarder: Callable[[StampingTrack], Any], slow: str, args: argparse.Namespace
) -> list[Row]:
    """Run one design against a fresh source for ``args.seconds``; the warm-up is not counted."""
    track = StampingTrack(args.source_fps)
    forwarder = make_forwarder(track)
    processor = Probe(track, work_s=args.slow_ms / 1000)
    realtime = Probe(track)
    slow_callback = processor.on_frame_async if slow == "async" else processor.on_frame_sync
    forwarder.add_frame_handler(slow_callback, fps=None, name="processor")
    forwarder.add_frame_handler(realtime.on_frame_async, fps=args.realtime_fps, name="realtime")
    lags: list[float] = []
    ticker = asyncio.create_task(_measure_loop_lag(lags))
    began = time.monotonic()
    await asyncio.sleep(args.seconds)
    ended = time.monotonic()
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    await forwarder.stop()
    track.stop()
    start = began + args.warmup
    lag = max(lags, default=float("nan"))
    return [
        _summarise(design, slow, "realtime", realtime, start, ended, lag),
        _summarise(design, slow, "processor", processor, start, ended, lag),
    ]


def _ours(track: StampingTrack) -> Any:
    from vision_agents.core.utils.video_forwarder import VideoForwarder

    return VideoForwarder(track, name="bench")


def _sequential(track: StampingTrack) -> Any:
    from benchmarks._legacy_forwarder import SequentialForwarder

    return SequentialForwarder(track, max_buffer=30, fps=30)


def _published(track: StampingTrack) -> Any:
    # Runs only in --worker mode, where `vision_agents` is the published package.
    from vision_agents.core.utils.video_forwarder import VideoForwarder

    # The configuration its Agent uses for every incoming track.
    return VideoForwarder(track, max_buffer=30, fps=30, name="bench")  # type: ignore[call-arg]


def _run_legacy(python: Path, slow: str, args: argparse.Namespace) -> list[Row] | str:
    """Run the published package's forwarder in its own interpreter; an error text on failure."""
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", "--slow", slow]
    for flag in ("seconds", "warmup", "source_fps", "slow_ms", "realtime_fps"):
        cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        with tempfile.TemporaryDirectory() as cwd:  # keep this checkout off the worker's sys.path
            done = subprocess.run(
                cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=args.seconds + 60
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not run {python}: {exc}"
    if done.returncode != 0:
        return f"worker failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    return [Row(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def _worker(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    design = f"vision-agents {version('vision-agents')}"
    rows = asyncio.run(run_workload(design, _published, args.slow, args))
    print(json.dumps([asdict(r) for r in rows]))


def _print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\n{args.source_fps:g} fps source (640x480), processor {args.slow_ms:g} ms a frame, "
        f"realtime consumer at {args.realtime_fps:g} fps; {args.seconds:g} s per run, "
        f"first {args.warmup:g} s not counted. Frame age = callback start - capture; "
        "loop stall = the longest the event loop was blocked during the run.\n"
    )
    header = f"{'design':<22} {'processor':<11} {'consumer':<10} {'frames':>6} {'fps':>6}"
    header += f" {'age p50':>8} {'p95':>8} {'max':>8} {'loop stall':>10}  (ms)"
    print(header)
    print("-" * len(header))
    for r in rows:
        slow = "await sleep" if r.slow == "async" else "time.sleep"
        print(
            f"{r.design:<22} {slow:<11} {r.consumer:<10} {r.frames:>6} {r.fps:>6.2f}"
            f" {r.age_p50_ms:>8.1f} {r.age_p95_ms:>8.1f} {r.age_max_ms:>8.1f}"
            f" {r.loop_lag_max_ms:>10.1f}"
        )
    target = [r for r in rows if r.design == "ours" and r.consumer == "realtime"]
    ok = all(abs(r.fps - args.realtime_fps) <= 0.25 and r.age_p95_ms < 50 for r in target)
    print(
        f"\ntarget for ours, realtime consumer: {args.realtime_fps:g} +/- 0.25 fps and p95 age "
        f"< 50 ms: {'met' if ok else 'NOT met'}"
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted")
    parser.add_argument("--source-fps", type=float, default=30.0)
    parser.add_argument("--slow-ms", type=float, default=300.0, help="processor time a frame")
    parser.add_argument("--realtime-fps", type=float, default=5.0)
    parser.add_argument(
        "--slow",
        choices=[*SLOW_KINDS, "both"],
        default="both",
        help="processor waits with await asyncio.sleep (async), time.sleep (sync) or both",
    )
    parser.add_argument(
        "--legacy-python",
        type=Path,
        default=DEFAULT_LEGACY_PYTHON if DEFAULT_LEGACY_PYTHON.exists() else None,
        help="interpreter of a virtualenv with the published vision-agents installed "
        f"(default: {DEFAULT_LEGACY_PYTHON} if present)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.worker:
        _worker(args)
        return
    if not __package__:  # run as a script: make this checkout importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    slows = SLOW_KINDS if args.slow == "both" else (args.slow,)
    rows: list[Row] = []
    notes: list[str] = []
    for slow in slows:
        for design, factory in (("ours", _ours), ("sequential (re-impl)", _sequential)):
            print(f"running {design}, {slow} processor ...", file=sys.stderr)
            rows += asyncio.run(run_workload(design, factory, slow, args))
        if args.legacy_python is None:
            notes.append(
                f"published vision-agents skipped: no --legacy-python and no {DEFAULT_LEGACY_PYTHON}"
            )
            continue
        print(f"running published vision-agents, {slow} processor ...", file=sys.stderr)
        result = _run_legacy(args.legacy_python, slow, args)
        if isinstance(result, str):
            notes.append(f"published vision-agents ({slow}): {result}")
        else:
            rows += result
    _print_table(rows, args)
    for note in dict.fromkeys(notes):
        print(note)


if __name__ == "__main__":
    main()
