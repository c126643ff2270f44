"""`DetectionProcessor`: runs a detector beside the call and publishes annotated video.

It takes every source frame (``fps = None``) so the annotated track keeps the source's frame
rate, and hands a frame to the detector at most ``detect_fps`` times a second. The detector
runs in the processor's own worker thread, one frame at a time, always on the newest frame:
a slow model lowers only its own rate and never blocks the audio path or the model's video
feed (on a machine short of cores it still competes for CPU: see docs/processors.md).
Drawing runs in a second thread, so the event loop only moves frames around. Given a backend
factory instead of an instance, the detector runs in a child process at a lower CPU priority
(``isolated.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiortc
import av

from vision_agents.core.processors.base import VideoProcessorPublisher
from vision_agents.core.processors.detection.backend import DetectorBackend
from vision_agents.core.processors.detection.draw import draw_detections
from vision_agents.core.processors.detection.isolated import BackendFactory, ProcessBackend
from vision_agents.core.processors.detection.opencv import OpenCVDetector
from vision_agents.core.processors.detection.rules import SpeakRule
from vision_agents.core.processors.detection.track import AnnotatedVideoTrack
from vision_agents.core.processors.detection.types import (
    DetectionEvent,
    DetectionResult,
    SceneSummaryEvent,
    SpeakRequestEvent,
    describe_counts,
)
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.core.utils.video import frame_to_ndarray

logger = logging.getLogger(__name__)


@dataclass
class _Scene:
    """What the processor knows about one participant's camera."""

    next_due: float = 0.0
    result: DetectionResult | None = None
    candidate: Counter[str] = field(default_factory=Counter)
    candidate_rounds: int = 0
    stable: Counter[str] = field(default_factory=Counter)
    stable_known: bool = False
    last_fired: dict[str, float] = field(default_factory=dict)


class DetectionProcessor(VideoProcessorPublisher):
    """Detects objects in participants' video, publishes it annotated and reports what it sees.

    - ``events``: a ``DetectionEvent`` per detection round, a ``SceneSummaryEvent`` when the
      stable counts change, a ``SpeakRequestEvent`` when a speak rule fires.
    - ``state()`` / ``scene()``: the latest detections per participant, for the LLM.
    - ``publish_video_track()``: the followed participant's video with boxes, labels and
      skeletons of the latest results drawn on every frame.

    ``backend``: an instance runs in a worker thread of this process (the default:
    ``OpenCVDetector()``). A factory (a backend class, or e.g.
    ``partial(OpenCVDetector, ("face",))``; it must pickle) builds the detector in a child
    process ``worker_niceness`` below this one: its own GIL and a lower CPU priority, and a
    crash there cannot take the agent down, for ~1-2 s of start-up and a frame copy per round.

    Counts are "stable" once the same counts come out of ``stable_rounds`` rounds in a row.
    ``DetectionAgentLink`` connects all this to an agent's LLM.
    """

    name = "detection"

    def __init__(
        self,
        backend: DetectorBackend | BackendFactory | None = None,
        *,
        detect_fps: float = 5.0,
        rules: Sequence[SpeakRule] = (),
        stable_rounds: int = 2,
        annotate: bool = True,
        worker_niceness: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if isinstance(detect_fps, bool) or not isinstance(detect_fps, int | float):
            raise ValueError(f"detect_fps must be a positive number, got {detect_fps!r}")
        if not math.isfinite(detect_fps) or detect_fps <= 0:
            raise ValueError(f"detect_fps must be a positive number, got {detect_fps!r}")
        if (
            isinstance(stable_rounds, bool)
            or not isinstance(stable_rounds, int)
            or stable_rounds < 1
        ):
            raise ValueError(f"stable_rounds must be an int >= 1, got {stable_rounds!r}")
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"speak rules need distinct names, got {names}")
        self.fps: float | None = None  # every frame: the annotated track keeps the source rate
        if backend is None:
            backend = OpenCVDetector()
        if isinstance(backend, DetectorBackend):
            self.backend: DetectorBackend = backend  # runs in a worker thread
        elif callable(backend):
            self.backend = ProcessBackend(backend, niceness=worker_niceness)
        else:
            raise ValueError(
                f"backend must be a DetectorBackend, a factory building one, or None; "
                f"got {backend!r}"
            )
        self.backend_name: str = getattr(self.backend, "backend_name", self.backend.name)
        self.detect_fps = float(detect_fps)
        self.rules = list(rules)
        self.stable_rounds = stable_rounds
        self.annotate = annotate
        self._clock = clock
        self._scenes: dict[str, _Scene] = {}
        self._participants: dict[str, Participant] = {}
        self._followed: str | None = None
        self._busy = False
        self._track = AnnotatedVideoTrack()
        self._tasks = TaskOwner(f"{self.name}-processor")
        self._detect_pool = concurrent.futures.ThreadPoolExecutor(1, f"{self.name}-detect")
        self._draw_pool = concurrent.futures.ThreadPoolExecutor(1, f"{self.name}-draw")
        self._closed = False
        self.rounds = 0
        """Detection rounds finished, over all participants."""

    # -- processor API ---------------------------------------------------------------------

    def publish_video_track(self) -> aiortc.MediaStreamTrack:
        return self._track

    async def process_video(self, frame: av.VideoFrame, participant: Participant) -> None:
        if self._closed:
            return
        key = participant.session_id
        scene = self._scenes.get(key)
        if scene is None:
            scene = self._scenes[key] = _Scene()
            self._participants[key] = participant
        if self._followed is None:
            self._followed = key
        now = self._clock()
        if not self._busy and now >= scene.next_due:
            scene.next_due = max(scene.next_due + 1.0 / self.detect_fps, now)
            self._busy = True
            self._tasks.spawn(self._detect(frame, participant, scene), f"detect:{key}")
        if key == self._followed:
            self._track.push(await self._render(frame, scene.result))

    async def on_participant_left(self, participant: Participant) -> None:
        key = participant.session_id
        self._scenes.pop(key, None)
        self._participants.pop(key, None)
        if self._followed == key:
            self._followed = next(iter(self._scenes), None)

    def state(self) -> dict[str, Any]:
        return {"detections": self.scene()}

    def scene(self) -> dict[str, Any]:
        """What is in view per participant (user id): counts, summary and objects."""
        now = time.monotonic()
        out: dict[str, Any] = {}
        for key, scene in self._scenes.items():
            result = scene.result
            if result is None:
                continue
            out[self._participants[key].user_id] = {
                "summary": describe_counts(result.counts()),
                "counts": dict(result.counts()),
                "seconds_ago": round(now - result.detected_at, 2),
                "objects": [
                    {
                        "label": d.label,
                        "score": round(d.score, 2),
                        # Normalised to 0..1 so the model need not know the resolution.
                        "box": [
                            round(d.box[0] / result.width, 3),
                            round(d.box[1] / result.height, 3),
                            round(d.box[2] / result.width, 3),
                            round(d.box[3] / result.height, 3),
                        ],
                    }
                    for d in result.detections
                ],
            }
        return out

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._track.stop()
        await self._tasks.close()
        loop = asyncio.get_running_loop()
        # The backend is released in its own thread, after any detection still running.
        try:
            await loop.run_in_executor(self._detect_pool, self.backend.close)
        except Exception:
            logger.exception("closing detector %s failed", self.backend_name)
        self._detect_pool.shutdown(wait=False)
        self._draw_pool.shutdown(wait=False)
        await super().close()

    # -- internals -------------------------------------------------------------------------

    async def _detect(self, frame: av.VideoFrame, participant: Participant, scene: _Scene) -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._detect_pool, self._run_backend, frame)
        except Exception:
            logger.exception("detector %s failed on a frame", self.backend_name)
            return
        finally:
            self._busy = False
        if self._scenes.get(participant.session_id) is not scene:
            return  # they left while the detector ran
        scene.result = result
        self.rounds += 1
        self.events.send(DetectionEvent.from_result(result, participant, self.backend_name))
        self._update_scene(participant, scene, result.counts())

    def _run_backend(self, frame: av.VideoFrame) -> DetectionResult:
        start = time.perf_counter()
        rgb = frame_to_ndarray(frame, "rgb24")
        detections = self.backend.detect(rgb)
        frame_time = (
            float(frame.pts * frame.time_base)
            if frame.pts is not None and frame.time_base is not None
            else None
        )
        return DetectionResult(
            detections=tuple(detections),
            width=rgb.shape[1],
            height=rgb.shape[0],
            frame_time=frame_time,
            detected_at=time.monotonic(),
            inference_s=time.perf_counter() - start,
        )

    def _update_scene(self, participant: Participant, scene: _Scene, counts: Counter[str]) -> None:
        if counts == scene.candidate:
            scene.candidate_rounds += 1
        else:
            scene.candidate, scene.candidate_rounds = counts, 1
        if scene.candidate_rounds < self.stable_rounds:
            return
        if scene.stable_known and counts == scene.stable:
            return
        before, scene.stable, scene.stable_known = scene.stable, counts, True
        self.events.send(
            SceneSummaryEvent(
                participant=participant, summary=describe_counts(counts), counts=dict(counts)
            )
        )
        now = self._clock()
        for rule in self.rules:
            last = scene.last_fired.get(rule.name)
            if (last is not None and now - last < rule.cooldown_s) or not rule.when(before, counts):
                continue
            scene.last_fired[rule.name] = now
            self.events.send(
                SpeakRequestEvent(
                    participant=participant,
                    rule=rule.name,
                    text=rule.render(before, counts),
                    counts=dict(counts),
                )
            )

    async def _render(self, frame: av.VideoFrame, result: DetectionResult | None) -> av.VideoFrame:
        if not self.annotate or result is None or not result.detections:
            return frame  # shared and unmodified: consumers never write into frames
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._draw_pool, _annotated, frame, result)


def _annotated(frame: av.VideoFrame, result: DetectionResult) -> av.VideoFrame:
    rgb = frame_to_ndarray(frame, "rgb24")  # a new array: the source frame stays untouched
    draw_detections(
        rgb,
        result.detections,
        scale_x=rgb.shape[1] / result.width,
        scale_y=rgb.shape[0] / result.height,
    )
    out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out
