"""Benchmark: detector speed per backend, and what a busy detector costs the rest of the agent.

1. Frames a second per backend on a 640x480 frame (the astronaut photo, letterboxed), one
   thread, on this CPU: OpenCV's detectors, and YOLO11n detect and pose (random weights from
   their yaml: the real compute) through the Ultralytics backend and, exported to ONNX by
   Ultralytics, through the onnxruntime backend (when Ultralytics is installed).
2. A whole agent (in-memory call, 30 fps 640x480 camera of the astronaut drifting sideways,
   so every annotated frame has a box to draw, with 48 kHz audio; FakeRealtime at 5 fps) with
   no detector, and with a ``DetectionProcessor`` whose detector runs flat out (OpenCV face +
   HOG people, ``detect_fps=30``: it saturates a core) in a worker thread (a backend
   instance) and in a child process at the default ``worker_niceness`` (a backend factory). ``--load`` busy processes
   run beside it, standing in for the rest of the machine's work. Reported: the model's video
   fps and frame age (arrival minus the frame's play time, less the best case), how late audio
   chunks reach the model against their own schedule, how late the event loop wakes a 10 ms
   sleeper, the published annotated fps, the detector's own rate and what it sees.

Run from the repository root: ``python -m benchmarks.detection`` (``--part agent`` or
``--part speed`` for one half, ``--repeats N`` agent runs of each kind, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vision_agents.core import Agent, PcmData, User
from vision_agents.core.processors.detection import (
    DetectionProcessor,
    DetectorBackend,
    ProcessBackend,
)
from vision_agents.core.processors.detection.opencv import OpenCVDetector
from vision_agents.core.types import Participant
from vision_agents.testing import FakeRealtime, InMemoryEdge, tone


def test_frame() -> np.ndarray:
    import skimage.data

    photo = skimage.data.astronaut()  # 512 x 512
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 80:560] = photo[16:496, 16:496]
    return frame


def backends(tmp: Path) -> list[tuple[str, Callable[[], DetectorBackend]]]:
    found: list[tuple[str, Callable[[], DetectorBackend]]] = [
        ("opencv face (Haar)", lambda: OpenCVDetector(("face",))),
        ("opencv people (HOG)", lambda: OpenCVDetector(("person",))),
        ("opencv face + people", lambda: OpenCVDetector(("face", "person"))),
    ]
    found += yolo_backends(tmp)
    return found


def yolo_backends(out_dir: Path) -> list[tuple[str, Callable[[], DetectorBackend]]]:
    """YOLO11n detect and pose (random weights from their yaml: the real compute) through the
    Ultralytics backend, and the same networks exported to ONNX through the ONNX backend."""
    import os

    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        print(f"(YOLO backends not measured: {exc})")
        return []
    import torch

    from vision_agents.plugins.onnx import YOLODetector as OnnxYOLO
    from vision_agents.plugins.ultralytics import YOLODetector as UltraYOLO

    def ultra(yaml: str) -> DetectorBackend:
        return UltraYOLO(YOLO(yaml), device="cpu")

    torch.set_num_threads(1)
    found: list[tuple[str, Callable[[], DetectorBackend]]] = []
    for yaml in ("yolo11n.yaml", "yolo11n-pose.yaml"):
        stem = yaml.removesuffix(".yaml")
        found.append((f"ultralytics {stem} (torch, cpu)", partial(ultra, yaml)))
        cwd = os.getcwd()
        os.chdir(out_dir)  # Ultralytics writes a yaml-built model's export to the cwd
        try:
            onnx_path = YOLO(yaml).export(format="onnx", simplify=False)
        finally:
            os.chdir(cwd)
        found.append(
            (f"onnx {stem} (onnxruntime, 1 thread)", partial(OnnxYOLO, out_dir / onnx_path))
        )
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


def make_clip(path: Path, seconds: float) -> Path:
    """A 30 fps 640x480 H.264 camera clip of the astronaut photo drifting sideways (so the
    detector finds a face and every annotated frame has a box to draw), with 48 kHz audio."""
    import av

    base = test_frame()
    audio = tone(440, seconds, sample_rate=48000, channels=2)
    with av.open(str(path), "w", format="matroska") as container:
        vstream = container.add_stream("libx264", rate=30)
        vstream.width, vstream.height, vstream.pix_fmt = 640, 480, "yuv420p"
        vstream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        astream = container.add_stream("pcm_s16le", rate=48000)
        astream.layout = "stereo"
        for i in range(round(seconds * 30)):
            shift = 40 - abs(i % 160 - 80)  # -40..40 px and back, every 5.3 s
            frame = av.VideoFrame.from_ndarray(np.roll(base, shift, axis=1), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 30)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        for aframe in audio.to_int16().to_av_frames(samples_per_frame=1024):
            container.mux(astream.encode(aframe))
        container.mux(astream.encode(None))
    return path


def busy_detector() -> DetectorBackend:
    """The benchmark's detector: OpenCV face + HOG people on one OpenCV thread (a factory, so
    it can be built in the processor's child process too)."""
    import cv2

    cv2.setNumThreads(1)
    return OpenCVDetector(("face", "person"))


async def run_agent(clip: Path, seconds: float, mode: str | None) -> dict[str, Any]:
    """One agent run; ``mode``: None (no detector), "thread" or "process" (where it runs)."""
    edge = InMemoryEdge()
    model = FakeRealtime(fps=5, keep_frames=100_000)
    audio: list[tuple[float, float]] = []  # (arrival, chunk seconds)
    original = model.simple_audio_response

    async def timed(pcm: PcmData, participant: Participant | None = None) -> None:
        audio.append((time.monotonic(), pcm.duration))
        await original(pcm, participant)

    model.simple_audio_response = timed  # type: ignore[method-assign]
    proc = None
    if mode is not None:
        backend = busy_detector() if mode == "thread" else busy_detector
        proc = DetectionProcessor(backend, detect_fps=30)
        if isinstance(proc.backend, ProcessBackend):  # start the child before measuring
            await asyncio.to_thread(proc.backend.detect, test_frame())
    agent = Agent(
        edge=edge, agent_user=User(name="bench"), llm=model, processors=[proc] if proc else []
    )
    loop_lag: list[float] = []

    async def probe() -> None:  # how late the event loop wakes a 10 ms sleeper
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            loop_lag.append(time.monotonic() - start - 0.01)

    async with agent.join(await agent.create_call("default", "bench")):
        await edge.add_participant("cam", clip)
        prober = asyncio.create_task(probe())
        await asyncio.sleep(seconds)
        prober.cancel()
        rounds = proc.rounds if proc else 0
        seen = sum(len(v["objects"]) for v in proc.scene().values()) if proc else 0
        published = edge.published.video_frames
    frames = list(zip(model.frames, model.latest_frames, strict=True))
    span = frames[-1][0].received_at - frames[0][0].received_at if len(frames) > 1 else 1.0
    lag = [got.received_at - float((f.pts or 0) * (f.time_base or 0)) for got, f in frames]
    ages = sorted(x - min(lag) for x in lag)
    # Audio lateness: each chunk's arrival against the schedule its durations set, less the
    # best case (the first second is left out: start-up).
    arrivals = np.array([t for t, _ in audio])
    due = arrivals[0] + np.concatenate([[0.0], np.cumsum([d for _, d in audio])[:-1]])
    late = (arrivals - due)[arrivals >= arrivals[0] + 1.0]
    late = np.sort(late - late.min()) * 1000
    return {
        "model fps": (len(frames) - 1) / span,
        "frame age p50 ms": 1000 * ages[len(ages) // 2],
        "frame age p95 ms": 1000 * ages[int(len(ages) * 0.95)],
        "audio late p95 ms": float(late[int(len(late) * 0.95)]),
        "audio late max ms": float(late[-1]),
        "loop lag p99 ms": 1000 * float(np.percentile(loop_lag, 99)),
        "loop lag max ms": 1000 * max(loop_lag),
        "published fps": published / seconds,
        "detections/s": rounds / seconds,
        "objects in view": seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each agent run")
    parser.add_argument("--repeats", type=int, default=2, help="agent runs of each kind")
    parser.add_argument(
        "--load", type=int, default=1, help="busy processes running beside the agent runs"
    )
    parser.add_argument(
        "--part", choices=("all", "speed", "agent"), default="all", help="what to measure"
    )
    args = parser.parse_args()
    import os

    import cv2

    cv2.setNumThreads(1)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)\n")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "speed"):
            frame = test_frame()
            print("## Detector speed, 640x480, one thread\n")
            print("| backend | frames/s |\n|---|---|")
            for name, make in backends(Path(tmp)):
                print(f"| {name} | {measure_backend(make, frame, 3.0):.1f} |", flush=True)
        if args.part in ("all", "agent"):
            agent_table(Path(tmp), args.seconds, args.repeats, args.load)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def agent_table(tmp: Path, seconds: float, repeats: int, load: int) -> None:
    clip = make_clip(tmp / "cam.mkv", seconds + 2)
    # Busy processes standing in for the rest of the machine's work (other agents, builds).
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(load)]
    try:
        rows = agent_rows(clip, seconds, repeats)
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()
    keys = list(rows[0][1])
    print(
        f"\n## Agent with and without a busy detector (camera 30 fps, model 5 fps, "
        f"{load} busy process(es) beside it)\n"
    )
    print("| run | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, row in rows:
        print(f"| {name} | " + " | ".join(f"{row[k]:.1f}" for k in keys) + " |", flush=True)


def agent_rows(clip: Path, seconds: float, repeats: int) -> list[tuple[str, dict[str, Any]]]:
    runs: list[tuple[str, str | None]] = [
        ("no detector", None),
        ("detector in a thread (backend instance)", "thread"),
        ("detector in a child process, nice +10 (backend factory)", "process"),
    ]
    rows = []
    for _ in range(repeats):  # interleaved, so a change in the machine's load hits all kinds
        for name, mode in runs:
            rows.append((name, asyncio.run(run_agent(clip, seconds, mode))))
    return rows


if __name__ == "__main__":
    main()
