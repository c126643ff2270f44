"""The Ultralytics backend's torch path; the real YOLO network where Ultralytics installs.

Ultralytics imports need torchvision, which has no CPU wheel on this project's machines, so
the network test runs only where Ultralytics is installed (a GPU box, a user's laptop). The
torch forward, device handling and shared decoding are tested with a torch module here.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch", reason="the Ultralytics backend needs torch")

import torch

from vision_agents.plugins.ultralytics import YOLODetector


class KnownHead(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """Outputs a fixed YOLO-shaped tensor the way an eval-mode head does: (decoded, raw)."""

    def __init__(self, output: np.ndarray) -> None:
        super().__init__()
        self.end2end = False
        self.register_buffer("known", torch.from_numpy(output))

    def forward(self, x):
        assert x.shape == (1, 3, 64, 64) and x.dtype == torch.float32
        return self.known + 0 * x.mean(), [x]


class Net(torch.nn.Module):  # type: ignore[misc,unused-ignore]
    """Shaped like an Ultralytics DetectionModel: layers in ``.model``, config in ``.yaml``."""

    def __init__(self, head: KnownHead, kpt_shape: list[int] | None) -> None:
        super().__init__()
        self.model = torch.nn.Sequential(head)
        self.yaml = {"kpt_shape": kpt_shape} if kpt_shape else {}

    def forward(self, x):
        return self.model(x)


def stand_in_yolo(output: np.ndarray, task: str, names: dict[int, str], kpt_shape=None):
    return SimpleNamespace(task=task, model=Net(KnownHead(output), kpt_shape), names=names)


def test_torch_path_decodes_detections_on_cpu() -> None:
    out = np.array(
        [[[32, 33, 10], [32, 32, 20], [20, 20, 8], [10, 10, 8], [0.9, 0.8, 0.05], [0.1, 0.1, 0.6]]],
        dtype=np.float32,
    )
    detector = YOLODetector(stand_in_yolo(out, "detect", {0: "cat", 1: "dog"}), imgsz=64)
    assert detector.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    dets = detector.detect(np.zeros((64, 128, 3), dtype=np.uint8))
    assert [d.label for d in dets] == ["cat", "dog"]
    assert dets[0].box == pytest.approx((44, 22, 84, 42))
    detector.close()


def test_torch_path_pose_and_task_check() -> None:
    out = np.array([[[32], [32], [16], [32], [0.8], [28], [20], [0.9], [36], [44], [0.7]]])
    yolo = stand_in_yolo(out.astype(np.float32), "pose", {0: "person"}, kpt_shape=[2, 3])
    detector = YOLODetector(yolo, imgsz=64, device="cpu")
    (det,) = detector.detect(np.zeros((128, 128, 3), dtype=np.uint8))
    assert det.keypoints is not None
    assert np.allclose(det.keypoints, [(56, 40, 0.9), (72, 88, 0.7)])
    with pytest.raises(ValueError, match="detect or pose"):
        YOLODetector(stand_in_yolo(out, "segment", {}), device="cpu")


def test_real_yolo_network_with_random_weights() -> None:
    ultralytics = pytest.importorskip(
        "ultralytics", reason="Ultralytics needs torchvision, which has no CPU wheel here"
    )
    for yaml, keypoints in (("yolo11n.yaml", 0), ("yolo11n-pose.yaml", 17)):
        detector = YOLODetector(ultralytics.YOLO(yaml), conf_threshold=0.0, max_detections=5)
        assert detector.num_keypoints == keypoints
        dets = detector.detect(np.zeros((480, 640, 3), dtype=np.uint8))
        assert len(dets) <= 5
        for det in dets:
            x1, y1, x2, y2 = det.box
            assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480
            assert (det.keypoints is None) == (keypoints == 0)
