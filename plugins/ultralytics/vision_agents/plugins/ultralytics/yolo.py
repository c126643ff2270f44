"""`YOLODetector`: an Ultralytics YOLO model run with torch, decoded by the shared YOLO code.

Only the network comes from Ultralytics (``YOLO(weights).model``); letterboxing, decoding
and non-maximum suppression are the same NumPy code the ONNX backend uses, so both backends
give the same boxes for the same weights, and the torch path needs no torchvision ops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from vision_agents.core.processors.detection.backend import DetectorBackend, check_rgb
from vision_agents.core.processors.detection.types import Detection
from vision_agents.core.processors.detection.yolo import decode, letterbox


class YOLODetector(DetectorBackend):
    """A YOLO detect or pose model: weights file (``.pt``), model yaml or a loaded ``YOLO``.

    ``device``: "cuda", "cuda:1", "mps", "cpu", or None for the first GPU if any, else CPU.
    Half precision is used on CUDA unless ``half=False``.
    """

    name: ClassVar[str] = "ultralytics-yolo"

    def __init__(
        self,
        model: str | Path | Any,
        *,
        device: str | None = None,
        imgsz: int = 640,
        half: bool | None = None,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        max_detections: int = 100,
    ) -> None:
        if isinstance(model, str | Path):
            from ultralytics import YOLO  # imported here: slow, and only needed to load weights

            yolo = YOLO(str(model))
        else:
            yolo = model
        if yolo.task not in ("detect", "pose"):
            raise ValueError(f"expected a detect or pose model, got a {yolo.task!r} model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.half = self.device.type == "cuda" if half is None else half
        net = yolo.model.to(self.device).eval()
        self.net = net.half() if self.half else net.float()
        self.names = {int(k): str(v) for k, v in yolo.names.items()}
        kpt_shape = getattr(net, "kpt_shape", None) or net.yaml.get("kpt_shape")
        self.num_keypoints = int(kpt_shape[0]) if yolo.task == "pose" and kpt_shape else 0
        self.end2end = bool(getattr(net.model[-1], "end2end", False))
        self.imgsz = imgsz
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections

    def detect(self, rgb: npt.NDArray[Any]) -> list[Detection]:
        check_rgb(rgb)
        tensor, box = letterbox(rgb, (self.imgsz, self.imgsz))
        x = torch.from_numpy(tensor).to(self.device)
        x = x.half() if self.half else x
        with torch.inference_mode():
            out = self.net(x)
        while isinstance(out, list | tuple):  # eval heads return (decoded, raw features)
            out = out[0]
        if isinstance(out, dict):  # end-to-end heads keep both branches by name
            out = out.get("one2one", next(iter(out.values())))
        return decode(
            out.float().cpu().numpy().astype(np.float32),
            box,
            self.names,
            num_keypoints=self.num_keypoints,
            end2end=self.end2end,
            conf_threshold=self.conf_threshold,
            iou_threshold=self.iou_threshold,
            max_detections=self.max_detections,
        )

    def close(self) -> None:
        self.net = self.net.cpu()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
