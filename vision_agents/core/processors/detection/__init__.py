"""Object detection and pose: backends, the processor that runs them, and what the model sees.

``DetectionProcessor(backend)`` watches participants' video, publishes it annotated and emits
typed events; ``DetectionAgentLink`` gives the LLM a "what is in view" tool and makes the
agent speak on ``SpeakRule``s. ``OpenCVDetector`` works with nothing to download; YOLO models
run through ``vision_agents.plugins.onnx`` (no torch) or ``vision_agents.plugins.ultralytics``.
"""

from vision_agents.core.processors.detection.backend import DetectorBackend
from vision_agents.core.processors.detection.draw import draw_detections
from vision_agents.core.processors.detection.isolated import ProcessBackend
from vision_agents.core.processors.detection.link import DetectionAgentLink
from vision_agents.core.processors.detection.opencv import OpenCVDetector
from vision_agents.core.processors.detection.processor import DetectionProcessor
from vision_agents.core.processors.detection.rules import (
    SpeakRule,
    count_reached,
    object_appeared,
    someone_entered,
)
from vision_agents.core.processors.detection.track import AnnotatedVideoTrack
from vision_agents.core.processors.detection.types import (
    Detection,
    DetectionEvent,
    DetectionResult,
    SceneSummaryEvent,
    SpeakRequestEvent,
    describe_counts,
)
from vision_agents.core.processors.detection.yolo import COCO_NAMES

__all__ = [
    "COCO_NAMES",
    "AnnotatedVideoTrack",
    "Detection",
    "DetectionAgentLink",
    "DetectionEvent",
    "DetectionProcessor",
    "DetectionResult",
    "DetectorBackend",
    "OpenCVDetector",
    "ProcessBackend",
    "SceneSummaryEvent",
    "SpeakRequestEvent",
    "SpeakRule",
    "count_reached",
    "describe_counts",
    "draw_detections",
    "object_appeared",
    "someone_entered",
]
