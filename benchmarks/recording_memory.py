"""Benchmark: memory and CPU of recording a long call.

Feeds ``RecordingWriter`` (what ``CallRecorder`` runs in its writer thread) a synthetic call:
``--participants`` people, each with a 640x480 camera at 30 fps and a microphone in 20 ms
frames, plus the agent's voice, all with media timestamps. It runs FASTER THAN REAL TIME:
media time is simulated, so a 10 minute call takes as long as the encoding does. Every
``--sample-s`` seconds of media it samples the process's RSS; it prints RSS at 1, 2, 5 and 10
minutes (and the growth from the first minute), plus the CPU seconds spent per minute of call.

Run from the repository root: ``python -m benchmarks.recording_memory`` (``--minutes 2`` for a
quick look, ``--format webm`` for VP8 and Opus).
"""

from __future__ import annotations

import argparse
import fractions
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import psutil

from vision_agents.core.recording import RecordingWriter

AUDIO_TB = fractions.Fraction(1, 48000)
VIDEO_TB = fractions.Fraction(1, 90000)
MARKS_MIN = (1, 2, 5, 10)


def _camera_frames(seed: int, count: int = 30) -> list[av.VideoFrame]:
    """A second of moving 640x480 picture (noise over a colour, so the encoder has work)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    frames = []
    for i in range(count):
        image = np.empty((480, 640, 3), dtype=np.uint8)
        image[:] = base
        image[:, (i * 20) % 640 : (i * 20) % 640 + 40] = 255  # a moving bar
        image += rng.integers(0, 12, size=image.shape, dtype=np.uint8)
        frames.append(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    return frames


def _voice(hz: float) -> np.ndarray:
    t = np.arange(960) / 48000
    return (np.sin(2 * np.pi * hz * t) * 3000).astype(np.int16)


def _audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.repeat(samples, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate, frame.pts, frame.time_base = 48000, pts, AUDIO_TB
    return frame


def run(minutes: float, participants: int, suffix: str, sample_s: float, folder: Path) -> None:
    path = folder / f"long{suffix}"
    process = psutil.Process()
    writer = RecordingWriter(path)
    cameras = [_camera_frames(seed) for seed in range(participants)]
    voices = [_voice(200 + 150 * p) for p in range(participants + 1)]  # the last: the agent
    total_ticks = int(minutes * 60 * 50)  # 20 ms steps of media time
    samples: list[tuple[float, float]] = []
    cpu_start, wall_start = time.process_time(), time.monotonic()
    cpu_marks: dict[int, float] = {}
    for tick in range(total_ticks):
        now = tick * 0.02
        for p, voice in enumerate(voices):
            source = "agent" if p == participants else f"mic{p}"
            # Arrival a little after capture, with jitter, as from the network.
            writer.add_audio(
                source,
                _audio_frame(voice, 5000 + tick * 960),
                now + 0.02 + 0.01 * ((tick * 7 + p) % 3),
            )
        for p, frames in enumerate(cameras):
            # 30 fps: frames whose capture time falls in this 20 ms step.
            for index in range(int(now * 30), int((now + 0.02) * 30)):
                frame = frames[index % len(frames)]
                frame.pts, frame.time_base = 1000 + index * 3000, VIDEO_TB
                writer.add_video(f"cam{p}", frame, index / 30 + 0.03)
        writer.advance(now)
        if tick % int(sample_s * 50) == 0:
            samples.append((now, process.memory_info().rss / 2**20))
        if tick % 3000 == 2999:
            cpu_marks[(tick + 1) // 3000] = time.process_time() - cpu_start
    writer.close(total_ticks * 0.02)
    cpu = time.process_time() - cpu_start
    wall = time.monotonic() - wall_start
    samples.append((total_ticks * 0.02, process.memory_info().rss / 2**20))

    print(
        f"\nrecording {minutes:g} min of {participants} participants (640x480 30 fps + audio) "
        f"and the agent's voice to {suffix} ({writer.spec.video_codec} + {writer.spec.audio_codec}, "
        "1280x720 grid at up to 30 fps), faster than real time"
    )
    print(
        f"file: {path.stat().st_size / 2**20:.1f} MB; pictures {writer.stats.pictures}; "
        f"late audio {writer.stats.late_audio_s:.3f} s; frames dropped {writer.stats.video_frames_dropped}"
    )
    print(f"\n{'media time':>12} {'RSS MB':>8}")
    first = next(rss for t, rss in samples if t >= 60) if minutes >= 1 else samples[0][1]
    for mark in MARKS_MIN:
        if mark > minutes:
            break
        rss = next(rss for t, rss in samples if t >= mark * 60 - 1e-6)
        print(f"{mark:>9} min {rss:>8.1f}")
    peak = max(rss for _, rss in samples)
    print(
        f"growth from 1 min to the end: {samples[-1][1] - first:+.1f} MB (peak {peak:.1f} MB, "
        f"{len(samples)} samples every {sample_s:g} s of media)"
    )
    per_min = [cpu_marks[m] - cpu_marks.get(m - 1, 0.0) for m in sorted(cpu_marks)]
    print(
        f"\nCPU: {cpu:.1f} s for {minutes:g} min of call = {cpu / minutes:.1f} s per minute "
        f"({100 * cpu / (minutes * 60):.0f}% of one core in real time); wall {wall:.1f} s"
    )
    if per_min:
        print(
            "CPU s per minute of call, minute by minute: " + " ".join(f"{c:.1f}" for c in per_min)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--format", choices=["mp4", "webm"], default="mp4")
    parser.add_argument("--sample-s", type=float, default=10.0, help="RSS every N s of media")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run(args.minutes, args.participants, f".{args.format}", args.sample_s, Path(folder))


if __name__ == "__main__":
    main()
