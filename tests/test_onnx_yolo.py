"""The ONNX YOLO backend: a small ONNX graph with known outputs, run by onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import wait_until
from vision_agents.core.processors.detection import DetectionProcessor
from vision_agents.plugins.onnx import YOLODetector

# [1, 4 + 2 classes, 3 anchors]: two overlapping "cat" boxes (NMS keeps one), one "dog".
KNOWN_OUTPUT = np.array(
    [
        [
            [32, 33, 10],
            [32, 32, 20],
            [20, 20, 8],
            [10, 10, 8],
            [0.9, 0.8, 0.05],
            [0.1, 0.1, 0.6],
        ]
    ],
    dtype=np.float32,
)


def yolo_like_graph(output: np.ndarray, size: int = 64, metadata: dict[str, str] | None = None):
    """A model taking [1, 3, size, size] images that outputs ``output`` (plus 0 x the input's
    mean, so the input really flows through the graph)."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["known", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "yolo_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        initializer=[
            numpy_helper.from_array(output, "known"),
            numpy_helper.from_array(np.array(0, dtype=np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_onnx_backend_decodes_nms_and_scales_to_the_frame() -> None:
    model = yolo_like_graph(KNOWN_OUTPUT, metadata={"names": "{0: 'cat', 1: 'dog'}"})
    detector = YOLODetector(model)
    assert detector.input_size == (64, 64) and detector.names == {0: "cat", 1: "dog"}
    frame = np.zeros((64, 128, 3), dtype=np.uint8)  # letterboxed: scale 0.5, 16 px bars
    dets = detector.detect(frame)
    assert [d.label for d in dets] == ["cat", "dog"]
    assert dets[0].box == pytest.approx((44, 22, 84, 42))
    assert dets[0].score == pytest.approx(0.9)
    assert dets[1].box == pytest.approx((12, 0, 28, 16))


def test_onnx_pose_model_reads_keypoint_shape_from_metadata() -> None:
    pose = np.array([[[32], [32], [16], [32], [0.8], [28], [20], [0.9], [36], [44], [0.7]]])
    model = yolo_like_graph(
        pose.astype(np.float32), metadata={"names": "{0: 'person'}", "kpt_shape": "[2, 3]"}
    )
    detector = YOLODetector(model)
    assert detector.num_keypoints == 2
    (det,) = detector.detect(np.zeros((128, 128, 3), dtype=np.uint8))  # scale 0.5
    assert det.box == pytest.approx((48, 32, 80, 96))
    assert det.keypoints is not None
    assert np.allclose(det.keypoints, [(56, 40, 0.9), (72, 88, 0.7)])


def test_onnx_thresholds_and_errors(tmp_path) -> None:
    model = yolo_like_graph(KNOWN_OUTPUT)
    strict = YOLODetector(model, conf_threshold=0.85)
    assert [d.label for d in strict.detect(np.zeros((64, 64, 3), np.uint8))] == ["person"]
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        YOLODetector(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="conf_threshold"):
        YOLODetector(model, conf_threshold=2)


async def test_onnx_backend_in_the_processor() -> None:

    import av

    from vision_agents.core.types import Participant

    proc = DetectionProcessor(YOLODetector(yolo_like_graph(KNOWN_OUTPUT)), detect_fps=100)
    frame = av.VideoFrame.from_ndarray(np.zeros((64, 128, 3), np.uint8), format="rgb24")
    await proc.process_video(frame, Participant(user_id="bob"))
    await wait_until(lambda: proc.rounds > 0, 10, "a detection round")
    assert proc.scene()["bob"]["counts"] == {"person": 1, "bicycle": 1}  # COCO names
    await proc.close()
