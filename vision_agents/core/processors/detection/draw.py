"""Drawing detections on frames: boxes, labels with scores and pose skeletons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision_agents.core.processors.detection.types import Detection

# Limb pairs of the 17 COCO keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles), 0-based.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

_PALETTE = (
    (255, 56, 56), (72, 249, 10), (0, 194, 255), (255, 157, 151), (255, 178, 29),
    (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187), (132, 56, 255),
)  # fmt: skip


def label_color(label: str) -> tuple[int, int, int]:
    """A stable RGB colour for a label."""
    return _PALETTE[sum(label.encode()) % len(_PALETTE)]


def draw_detections(
    rgb: npt.NDArray[Any],
    detections: Sequence[Detection],
    *,
    scale_x: float = 1.0,
    scale_y: float = 1.0,
    keypoint_threshold: float = 0.5,
) -> npt.NDArray[Any]:
    """Draw ``detections`` onto ``rgb`` in place (and return it).

    ``scale_x``/``scale_y`` map detection coordinates to this image, for results computed on
    a frame of another size.
    """
    h, w = rgb.shape[:2]
    thickness = max(1, round(min(h, w) / 240))
    for det in detections:
        color = label_color(det.label)
        x1, y1, x2, y2 = det.box
        p1 = (round(x1 * scale_x), round(y1 * scale_y))
        p2 = (round(x2 * scale_x), round(y2 * scale_y))
        cv2.rectangle(rgb, p1, p2, color, thickness)
        text = f"{det.label} {det.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(rgb, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(
            rgb, text, (p1[0] + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
            cv2.LINE_AA,
        )  # fmt: skip
        if det.keypoints:
            _draw_pose(rgb, det.keypoints, color, scale_x, scale_y, keypoint_threshold, thickness)
    return rgb


def _draw_pose(
    rgb: npt.NDArray[Any],
    keypoints: Sequence[tuple[float, float, float]],
    color: tuple[int, int, int],
    sx: float,
    sy: float,
    threshold: float,
    thickness: int,
) -> None:
    pts = np.array([(x * sx, y * sy) for x, y, _ in keypoints]).round().astype(int)
    visible = [c >= threshold for _, _, c in keypoints]
    if len(keypoints) == 17:
        for a, b in COCO_SKELETON:
            if visible[a] and visible[b]:
                cv2.line(rgb, tuple(pts[a]), tuple(pts[b]), color, thickness, cv2.LINE_AA)
    for (x, y), seen in zip(pts, visible, strict=True):
        if seen:
            cv2.circle(rgb, (int(x), int(y)), thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
