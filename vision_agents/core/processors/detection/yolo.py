"""YOLO pre- and post-processing in NumPy, shared by the ONNX and Ultralytics backends.

YOLO detection heads (v8, 11 and friends, as Ultralytics exports them) output one tensor of
shape ``[1, 4 + classes, anchors]``: box centre, width and height in input pixels, then one
sigmoid score per class. Pose heads append ``keypoints x 3`` rows (x, y, visibility) after a
single person score. End-to-end heads (NMS-free, e.g. YOLO26) output ``[1, max_det, 6 + k]``
rows of x1, y1, x2, y2, score, class id (then keypoints) instead. Inputs are letterboxed:
scaled to fit a square, padded with grey; boxes are mapped back to the original frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision_agents.core.processors.detection.types import Detection

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the model's input, to map coordinates back."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int

    def to_frame(self, xy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Map ``[..., 2k]`` arrays of x, y pairs from input pixels to frame pixels, clipped."""
        out = xy.astype(np.float32, copy=True)
        out[..., 0::2] = np.clip((out[..., 0::2] - self.pad_x) / self.scale, 0, self.width)
        out[..., 1::2] = np.clip((out[..., 1::2] - self.pad_y) / self.scale, 0, self.height)
        return out


def letterbox(
    rgb: npt.NDArray[Any], size: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """``rgb`` fitted into ``size`` (height, width) as a float ``[1, 3, H, W]`` tensor in 0..1."""
    in_h, in_w = size
    h, w = rgb.shape[:2]
    scale = min(in_h / h, in_w / w)
    new_w, new_h = round(w * scale), round(h * scale)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    resized = (
        rgb
        if (new_w, new_h) == (w, h)
        else cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    )
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas[top : top + new_h, left : left + new_w] = resized
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return tensor, Letterbox(scale, float(left), float(top), w, h)


def nms(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    iou_threshold: float,
    classes: npt.NDArray[np.int64] | None = None,
    max_keep: int | None = None,
) -> npt.NDArray[np.int64]:
    """Indices of the boxes (x1, y1, x2, y2) kept by greedy non-maximum suppression.

    Highest score first; a box is dropped when it overlaps a kept box of the same class
    (any class when ``classes`` is None) by more than ``iou_threshold``. Stops once
    ``max_keep`` boxes are kept (a low threshold leaves thousands of candidates).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    if classes is not None:
        # Shift each class far apart so boxes of different classes never overlap.
        offset = classes.astype(np.float32)[:, None] * (float(boxes.max()) + 1.0)
        boxes = boxes + offset
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    output: npt.NDArray[Any],
    box: Letterbox,
    names: dict[int, str],
    *,
    num_keypoints: int = 0,
    end2end: bool = False,
    conf_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
) -> list[Detection]:
    """Detections from one YOLO output tensor (batch of one), boxes in frame pixels."""
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got output shape {out.shape}")
        out = out[0]
    if out.ndim != 2:
        raise ValueError(f"expected a YOLO output of shape [1, C, N] or [C, N], got {output.shape}")
    kpt_cols = num_keypoints * 3
    if end2end:
        return _decode_end2end(out, box, names, kpt_cols, conf_threshold, max_detections)
    nc = out.shape[0] - 4 - kpt_cols
    if nc < 1:
        raise ValueError(
            f"output has {out.shape[0]} rows, too few for 4 box rows, classes and "
            f"{num_keypoints} keypoints x 3"
        )
    rows = out.T  # [N, C]
    class_scores = rows[:, 4 : 4 + nc]
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    mask = scores >= conf_threshold
    rows, class_ids, scores = rows[mask], class_ids[mask], scores[mask]
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep = nms(boxes, scores, iou_threshold, class_ids.astype(np.int64), max_detections)
    kpts = rows[keep, 4 + nc :] if kpt_cols else None
    return _build(boxes[keep], scores[keep], class_ids[keep], kpts, box, names)


def _decode_end2end(
    out: npt.NDArray[np.float32],
    box: Letterbox,
    names: dict[int, str],
    kpt_cols: int,
    conf_threshold: float,
    max_detections: int,
) -> list[Detection]:
    if out.shape[1] != 6 + kpt_cols:
        raise ValueError(
            f"end-to-end output rows must have 6 + {kpt_cols} values, got shape {out.shape}"
        )
    out = out[out[:, 4] >= conf_threshold]
    out = out[np.argsort(-out[:, 4], kind="stable")][:max_detections]
    kpts = out[:, 6:] if kpt_cols else None
    return _build(out[:, :4], out[:, 4], out[:, 5].astype(np.int64), kpts, box, names)


def _build(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[Any],
    kpts: npt.NDArray[np.float32] | None,
    box: Letterbox,
    names: dict[int, str],
) -> list[Detection]:
    frame_boxes = box.to_frame(boxes)
    frame_kpts = None
    if kpts is not None:
        # Explicit sizes: with no detections, a -1 axis cannot be inferred.
        n, count = len(kpts), kpts.shape[1] // 3
        k = kpts.reshape(n, count, 3)
        xy = box.to_frame(k[:, :, :2].reshape(n, count * 2))
        frame_kpts = np.concatenate([xy.reshape(n, count, 2), k[:, :, 2:]], axis=2)
    found = []
    for i in range(len(frame_boxes)):
        x1, y1, x2, y2 = (float(v) for v in frame_boxes[i])
        keypoints = (
            tuple((float(x), float(y), float(c)) for x, y, c in frame_kpts[i])
            if frame_kpts is not None
            else None
        )
        cid = int(class_ids[i])
        found.append(
            Detection(
                label=names.get(cid, str(cid)),
                score=float(scores[i]),
                box=(x1, y1, x2, y2),
                keypoints=keypoints,
            )
        )
    return found


COCO_NAMES: dict[int, str] = dict(
    enumerate(
        "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant "
        "stop_sign parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe "
        "backpack umbrella handbag tie suitcase frisbee skis snowboard sports_ball kite "
        "baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass cup "
        "fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut "
        "cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
        "cell_phone microwave oven toaster sink refrigerator book clock vase scissors "
        "teddy_bear hair_drier toothbrush".replace("_", "~").split()
    )
)
COCO_NAMES = {k: v.replace("~", " ") for k, v in COCO_NAMES.items()}
"""The 80 COCO class names YOLO models are usually trained on, by class id."""
