"""What a detector finds: typed results and the events a detection processor publishes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant

Box = tuple[float, float, float, float]
"""(x1, y1, x2, y2) in pixels of the analysed frame, top-left origin."""

Keypoint = tuple[float, float, float]
"""(x, y, confidence) in pixels of the analysed frame."""


@dataclass(frozen=True)
class Detection:
    """One object found in a frame."""

    label: str
    score: float
    box: Box
    keypoints: tuple[Keypoint, ...] | None = None
    """Pose keypoints (COCO order for person pose models), or None for plain detectors."""

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass(frozen=True)
class DetectionResult:
    """Everything one backend call found in one frame."""

    detections: tuple[Detection, ...]
    width: int
    height: int
    frame_time: float | None
    """The frame's presentation time in seconds (pts x time_base), None if it had none."""
    detected_at: float
    """``time.monotonic()`` when the backend finished."""
    inference_s: float
    """Seconds the backend took, colour conversion included."""

    def counts(self) -> Counter[str]:
        """How many of each label."""
        return Counter(d.label for d in self.detections)


@dataclass(kw_only=True)
class DetectionEvent(BaseEvent):
    """A detection round finished for one participant's frame."""

    type: ClassVar[str] = "processor.detection"

    participant: Participant
    backend: str
    labels: list[str]
    boxes: list[Box]
    scores: list[float]
    keypoints: list[tuple[Keypoint, ...] | None]
    frame_time: float | None
    width: int
    height: int
    inference_s: float

    @classmethod
    def from_result(
        cls, result: DetectionResult, participant: Participant, backend: str
    ) -> DetectionEvent:
        dets = result.detections
        return cls(
            participant=participant,
            backend=backend,
            labels=[d.label for d in dets],
            boxes=[d.box for d in dets],
            scores=[d.score for d in dets],
            keypoints=[d.keypoints for d in dets],
            frame_time=result.frame_time,
            width=result.width,
            height=result.height,
            inference_s=result.inference_s,
        )


@dataclass(kw_only=True)
class SpeakRequestEvent(BaseEvent):
    """A speak rule fired: the agent should say something about what is in view.

    ``text`` is an instruction for the model (e.g. "Someone entered; greet them briefly").
    ``DetectionAgentLink`` turns it into ``llm.simple_response(text)``.
    """

    type: ClassVar[str] = "processor.detection.speak"

    participant: Participant
    rule: str
    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True)
class SceneSummaryEvent(BaseEvent):
    """The stable summary of what is in view changed (counts per label)."""

    type: ClassVar[str] = "processor.detection.summary"

    participant: Participant
    summary: str
    counts: dict[str, int] = field(default_factory=dict)


def describe_counts(counts: dict[str, int] | Counter[str]) -> str:
    """'2 persons, 1 face' style text; 'nothing detected' when empty."""
    parts = [
        f"{n} {label if n == 1 else _plural(label)}"
        for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n > 0
    ]
    return ", ".join(parts) if parts else "nothing detected"


def _plural(label: str) -> str:
    if label == "person":
        return "people"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"
