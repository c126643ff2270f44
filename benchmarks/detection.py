"""Benchmark: detector speed per backend, and what a busy detector costs the rest of the agent.

1. Frames a second per backend on a 640x480 frame (the astronaut photo, letterboxed), one
   thread, on this CPU (and GPU backends when one is present).
2. A whole agent (in-memory call, 30 fps 640x480 camera with 48 kHz audio, FakeRealtime at
   5 fps) with and without a ``DetectionProcessor`` whose detector runs flat out (OpenCV face
   + HOG people, ``detect_fps=30``: it saturates one core). Reported: the model's video fps
   and frame age (arrival minus the frame's play time, less the best case), the audio path's
   jitter (spread of the gaps between audio chunks reaching the model), the published
   annotated fps and the detector's own rate.

Run from the repository root: ``python -m benchmarks.detection``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vision_agents.core import Agent, PcmData, User
from vision_agents.core.processors.detection import DetectionProcessor, DetectorBackend
from vision_agents.core.processors.detection.opencv import OpenCVDetector
from vision_agents.core.types import Participant
from vision_agents.testing import FakeRealtime, InMemoryEdge, make_test_video, tone


def test_frame() -> np.ndarray:
    import skimage.data

    photo = skimage.data.astronaut()  # 512 x 512
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 80:560] = photo[16:496, 16:496]
    return frame


def backends() -> list[tuple[str, Callable[[], DetectorBackend]]]:
    found: list[tuple[str, Callable[[], DetectorBackend]]] = [
        ("opencv face (Haar)", lambda: OpenCVDetector(("face",))),
        ("opencv people (HOG)", lambda: OpenCVDetector(("person",))),
        ("opencv face + people", lambda: OpenCVDetector(("face", "person"))),
    ]
    try:
        from ultralytics import YOLO

        from vision_agents.plugins.ultralytics import YOLODetector as UltraYOLO

        found.append(("ultralytics yolo11n", lambda: UltraYOLO(YOLO("yolo11n.yaml"))))
        found.append(("ultralytics yolo11n-pose", lambda: UltraYOLO(YOLO("yolo11n-pose.yaml"))))
    except ImportError as exc:
        print(f"(ultralytics backend not measured: {exc})")
    return found


def measure_backend(
    make: Callable[[], DetectorBackend], frame: np.ndarray, seconds: float
) -> float:
    backend = make()
    backend.detect(frame)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        backend.detect(frame)
        n += 1
    return n / (time.perf_counter() - start)


async def run_agent(clip: Path, seconds: float, detector: bool) -> dict[str, Any]:
    edge = InMemoryEdge()
    model = FakeRealtime(fps=5, keep_frames=100_000)
    audio_times: list[float] = []
    original = model.simple_audio_response

    async def timed(pcm: PcmData, participant: Participant | None = None) -> None:
        audio_times.append(time.monotonic())
        await original(pcm, participant)

    model.simple_audio_response = timed  # type: ignore[method-assign]
    proc = (
        DetectionProcessor(OpenCVDetector(("face", "person")), detect_fps=30) if detector else None
    )
    agent = Agent(
        edge=edge, agent_user=User(name="bench"), llm=model, processors=[proc] if proc else []
    )
    async with agent.join(await agent.create_call("default", "bench")):
        await edge.add_participant("cam", clip)
        await asyncio.sleep(seconds)
        rounds = proc.rounds if proc else 0
        published = edge.published.video_frames
    frames = list(zip(model.frames, model.latest_frames, strict=True))
    span = frames[-1][0].received_at - frames[0][0].received_at if len(frames) > 1 else 1.0
    lag = [got.received_at - float((f.pts or 0) * (f.time_base or 0)) for got, f in frames]
    ages = sorted(x - min(lag) for x in lag)
    gaps = np.diff(audio_times[len(audio_times) // 10 :]) * 1000
    return {
        "model fps": (len(frames) - 1) / span,
        "age p50 ms": 1000 * ages[len(ages) // 2],
        "age p95 ms": 1000 * ages[int(len(ages) * 0.95)],
        "audio gap sd ms": float(np.std(gaps)),
        "audio gap max ms": float(np.max(gaps)),
        "published fps": published / seconds,
        "detections/s": rounds / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each agent run")
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(1)
    frame = test_frame()
    print("## Detector speed, 640x480, one thread\n")
    print("| backend | frames/s |\n|---|---|")
    for name, make in backends():
        print(f"| {name} | {measure_backend(make, frame, 3.0):.1f} |")

    with tempfile.TemporaryDirectory() as tmp:
        audio = tone(440, args.seconds + 2, sample_rate=48000, channels=2)
        clip = make_test_video(
            Path(tmp) / "cam.mkv", seconds=args.seconds + 2, fps=30, size=(640, 480), audio=audio
        )
        rows = [
            ("no detector", asyncio.run(run_agent(clip, args.seconds, detector=False))),
            (
                "detector saturating a core",
                asyncio.run(run_agent(clip, args.seconds, detector=True)),
            ),
        ]
    keys = list(rows[0][1])
    print("\n## Agent with and without a busy detector (camera 30 fps, model 5 fps)\n")
    print("| run | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
