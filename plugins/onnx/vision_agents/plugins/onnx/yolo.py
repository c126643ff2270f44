"""`YOLODetector`: a YOLO detect or pose model in ONNX format, run with onnxruntime."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from vision_agents.core.processors.detection.backend import DetectorBackend, check_rgb
from vision_agents.core.processors.detection.types import Detection
from vision_agents.core.processors.detection.yolo import COCO_NAMES, decode, letterbox


class YOLODetector(DetectorBackend):
    """Runs a YOLO model exported to ONNX (e.g. ``yolo export model=yolo11n.pt format=onnx``).

    Class names, keypoint shape and input size are read from the metadata Ultralytics writes
    into the file (``names``, ``kpt_shape``, ``imgsz``, ``end2end``); arguments override them.
    Inputs with dynamic height/width use ``imgsz`` (default 640).
    """

    name: ClassVar[str] = "onnx-yolo"

    def __init__(
        self,
        model: str | Path | bytes,
        *,
        names: dict[int, str] | None = None,
        num_keypoints: int | None = None,
        end2end: bool | None = None,
        imgsz: int | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        max_detections: int = 100,
        threads: int = 1,
        providers: list[str] | None = None,
    ) -> None:
        if not 0 <= conf_threshold <= 1 or not 0 <= iou_threshold <= 1:
            raise ValueError(
                f"conf_threshold and iou_threshold must be in 0..1, got "
                f"{conf_threshold!r} and {iou_threshold!r}"
            )
        if isinstance(model, str | Path) and not os.path.exists(model):
            raise FileNotFoundError(f"no ONNX model at {str(model)!r}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            model if isinstance(model, bytes) else str(model),
            sess_options=options,
            providers=providers or ["CPUExecutionProvider"],
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.names = names if names is not None else _meta_names(meta)
        kpt_shape = _literal(meta.get("kpt_shape"))
        self.num_keypoints = (
            num_keypoints
            if num_keypoints is not None
            else (int(kpt_shape[0]) if isinstance(kpt_shape, list | tuple) else 0)
        )
        self.end2end = (
            end2end if end2end is not None else str(meta.get("end2end", "")).lower() == "true"
        )
        self.input_size = _input_size(inp.shape, imgsz, _literal(meta.get("imgsz")))
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections

    def detect(self, rgb: npt.NDArray[Any]) -> list[Detection]:
        check_rgb(rgb)
        tensor, box = letterbox(rgb, self.input_size)
        output = self.session.run(None, {self.input_name: tensor})[0]
        return decode(
            np.asarray(output),
            box,
            self.names,
            num_keypoints=self.num_keypoints,
            end2end=self.end2end,
            conf_threshold=self.conf_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
        )


def _literal(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return None


def _meta_names(meta: dict[str, str]) -> dict[int, str]:
    names = _literal(meta.get("names"))
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    return dict(COCO_NAMES)


def _input_size(shape: list[Any], imgsz: int | None, meta_imgsz: Any) -> tuple[int, int]:
    if len(shape) != 4:
        raise ValueError(f"expected a model input of shape [1, 3, H, W], got {shape}")
    h, w = shape[2], shape[3]
    if isinstance(h, int) and isinstance(w, int):
        return h, w
    if imgsz is not None:
        return imgsz, imgsz
    if isinstance(meta_imgsz, list | tuple) and len(meta_imgsz) == 2:
        return int(meta_imgsz[0]), int(meta_imgsz[1])
    return 640, 640
