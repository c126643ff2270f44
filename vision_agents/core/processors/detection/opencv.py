"""Zero-download detectors from OpenCV: Haar cascade faces and the HOG people detector.

Both models ship inside the ``opencv-python-headless`` 4.x wheel (a core dependency pinned
below 5, whose wheels ship no cascades), so they work offline with nothing to fetch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt

from vision_agents.core.processors.detection.backend import DetectorBackend, check_rgb
from vision_agents.core.processors.detection.types import Detection
from vision_agents.core.processors.detection.yolo import nms

_KINDS = ("face", "person")


class OpenCVDetector(DetectorBackend):
    """Frontal faces (label "face") and/or upright people (label "person") on the CPU.

    Faces use the frontal-face Haar cascade; people use OpenCV's built-in HOG + linear SVM
    detector, which finds standing people at least ~64x128 pixels large. Frames are scaled
    down to ``max_side`` first: both detectors cost roughly the pixel count.
    """

    name: ClassVar[str] = "opencv"

    def __init__(
        self,
        detect: tuple[str, ...] = ("face",),
        *,
        max_side: int = 640,
        min_face_size: int = 30,
        face_neighbors: int = 5,
        people_threshold: float = 0.5,
    ) -> None:
        unknown = [k for k in detect if k not in _KINDS]
        if unknown or not detect:
            raise ValueError(f"detect must name some of {_KINDS}, got {detect!r}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 64:
            raise ValueError(f"max_side must be an int >= 64, got {max_side!r}")
        self.kinds = tuple(dict.fromkeys(detect))
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.face_neighbors = face_neighbors
        self.people_threshold = people_threshold
        self._face: Any = None
        self._hog: Any = None
        # Cascade objects are not safe to share between threads; one detect() at a time.
        self._lock = threading.Lock()
        if "face" in self.kinds:
            cascades = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
            path = cascades / "haarcascade_frontalface_default.xml"
            self._face = cv2.CascadeClassifier(str(path))
            if self._face.empty():
                raise RuntimeError(
                    f"OpenCV could not load its face cascade from {path}; "
                    "install opencv-python-headless 4.x (5.x wheels ship no cascades)"
                )
        if "person" in self.kinds:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor.getDefaultPeopleDetector())

    def detect(self, rgb: npt.NDArray[Any]) -> list[Detection]:
        check_rgb(rgb)
        h, w = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = (
            rgb
            if scale == 1.0
            else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        found: list[Detection] = []
        with self._lock:
            if self._face is not None:
                found += self._faces(small, scale)
            if self._hog is not None:
                found += self._people(small, scale)
        return found

    def _faces(self, rgb: npt.NDArray[Any], scale: float) -> list[Detection]:
        grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        size = max(8, round(self.min_face_size * scale))
        rects, _, weights = self._face.detectMultiScale3(
            grey,
            scaleFactor=1.1,
            minNeighbors=self.face_neighbors,
            minSize=(size, size),
            outputRejectLevels=True,
        )
        return [
            # Cascade weights are unbounded stage sums; squash them into 0..1 for a score.
            Detection("face", float(1 / (1 + np.exp(-float(wt) / 2))), _scaled(r, scale))
            for r, wt in zip(rects, np.ravel(weights), strict=False)
        ]

    def _people(self, rgb: npt.NDArray[Any], scale: float) -> list[Detection]:
        rects, weights = self._hog.detectMultiScale(
            rgb, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if len(rects) == 0:
            return []
        boxes = np.array([_scaled(r, scale) for r in rects], dtype=np.float32)
        scores = np.ravel(weights).astype(np.float32)
        keep = [i for i in nms(boxes, scores, 0.45) if scores[i] >= self.people_threshold]
        return [
            Detection("person", float(min(1.0, scores[i])), tuple(map(float, boxes[i])))  # type: ignore[arg-type]
            for i in keep
        ]


def _scaled(rect: Any, scale: float) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) / scale for v in rect)
    return x, y, x + w, y + h
