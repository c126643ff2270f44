"""The Ultralytics backend on real YOLO networks, and the same networks exported to ONNX.

``YOLO("yolo11n.yaml")`` builds the real network with random weights (no download). Random
weights leave every score at the head's prior, so each network's batch-norm statistics are
first set from one pass over the test photo: scores and boxes then depend on the image, and
three independent paths must agree detection for detection: this project's torch backend,
Ultralytics' own NMS and box scaling on the same network output, and the network exported
by Ultralytics to ONNX and run by the onnxruntime backend. The torch path is also tested
with a small torch module of known output.

``scripts/test.sh`` installs CPU torch, and Ultralytics with torchvision's metadata (see
docs/processors.md for why torchvision is installed without its ops).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

os.environ.setdefault("YOLO_OFFLINE", "1")  # no update checks or analytics from Ultralytics
os.environ.setdefault("YOLO_VERBOSE", "False")

from ultralytics import YOLO
from ultralytics.utils.nms import non_max_suppression
from ultralytics.utils.ops import scale_boxes

from vision_agents.core.processors.detection import Detection
from vision_agents.core.processors.detection.yolo import letterbox
from vision_agents.plugins.onnx import YOLODetector as OnnxYOLODetector
from vision_agents.plugins.ultralytics import YOLODetector

NETWORKS = [("yolo11n.yaml", 0), ("yolo11n-pose.yaml", 17)]


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


# -- real YOLO networks --------------------------------------------------------------------


def random_yolo(yaml: str, photo: np.ndarray) -> Any:
    """The real network from ``yaml`` with seeded random weights and batch-norm statistics
    measured on ``photo``, so its outputs vary with the image."""
    torch.manual_seed(0)
    yolo = YOLO(yaml)
    for module in yolo.model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # one pass sets the statistics of that pass
    tensor, _ = letterbox(photo, (640, 640))
    yolo.model.train()
    with torch.no_grad():
        yolo.model(torch.from_numpy(tensor))
    yolo.model.eval()
    return yolo


def assert_same(ours: list[Detection], theirs: list[Detection]) -> None:
    assert [d.label for d in ours] == [d.label for d in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-3, abs=1e-5)
        assert a.box == pytest.approx(b.box, abs=0.5)
        assert (a.keypoints is None) == (b.keypoints is None)
        if a.keypoints is not None and b.keypoints is not None:
            assert np.allclose(a.keypoints, b.keypoints, atol=0.5)


@pytest.mark.timeout(360)  # CPU-bound: ~25 s on an idle 2-core machine, over 120 s beside burners
@pytest.mark.parametrize(("yaml", "keypoints"), NETWORKS)
def test_real_yolo_matches_ultralytics_own_postprocessing(
    yaml: str, keypoints: int, photo: np.ndarray
) -> None:
    yolo = random_yolo(yaml, photo)
    detector = YOLODetector(yolo, device="cpu", conf_threshold=0.0, max_detections=8)
    assert detector.num_keypoints == keypoints and len(detector.names) == 80
    dets = detector.detect(photo)
    assert len(dets) == 8
    assert len({d.score for d in dets}) > 4, "scores should depend on the image"
    assert all(d.score >= e.score for d, e in itertools.pairwise(dets))
    for det in dets:
        x1, y1, x2, y2 = det.box
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        assert len(det.keypoints or ()) == keypoints

    # Ultralytics' NMS and box scaling on the same network output.
    tensor, _ = letterbox(photo, (640, 640))
    with torch.inference_mode():
        raw = detector.net(torch.from_numpy(tensor))
    while isinstance(raw, list | tuple):
        raw = raw[0]
    (ref,) = non_max_suppression(raw, 0.0, 0.45, max_det=8, nc=80)
    ref[:, :4] = scale_boxes((640, 640), ref[:, :4], (480, 640))
    assert [d.label for d in dets] == [detector.names[int(row[5])] for row in ref]
    for det, row in zip(dets, ref, strict=True):
        assert det.score == pytest.approx(float(row[4]), rel=1e-4)
        assert det.box == pytest.approx(row[:4].tolist(), abs=0.01)

    # Nothing found: an empty list (for pose too, with no keypoint rows to reshape).
    strict = YOLODetector(yolo, device="cpu", conf_threshold=0.99)
    assert strict.detect(photo) == []


@pytest.mark.timeout(360)  # CPU-bound, as above
@pytest.mark.parametrize(("yaml", "keypoints"), NETWORKS)
def test_real_yolo_exported_to_onnx_gives_the_same_detections(
    yaml: str, keypoints: int, photo: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yolo = random_yolo(yaml, photo)
    monkeypatch.chdir(tmp_path)  # Ultralytics writes a yaml-built model's export here
    exported = Path(yolo.export(format="onnx", simplify=False))
    assert exported.is_file() and exported.parent.resolve() == tmp_path.resolve()

    onnx_detector = OnnxYOLODetector(exported, conf_threshold=0.0, max_detections=8)
    # Everything comes from the metadata Ultralytics wrote into the file.
    assert onnx_detector.input_size == (640, 640) and onnx_detector.num_keypoints == keypoints
    assert onnx_detector.names == {i: str(i) for i in range(80)} and not onnx_detector.end2end

    torch_detector = YOLODetector(yolo, device="cpu", conf_threshold=0.0, max_detections=8)
    ours = onnx_detector.detect(photo)
    assert len(ours) == 8
    assert_same(ours, torch_detector.detect(photo))
    assert all(len(d.keypoints or ()) == keypoints for d in ours)
