"""YOLO models exported to ONNX, run by onnxruntime on the CPU: no torch needed.

``pip install "vision-agents[onnx]"``, then
``DetectionProcessor(onnx.YOLODetector("yolo11n.onnx"))``.
"""

from vision_agents.plugins.onnx.yolo import YOLODetector

__all__ = ["YOLODetector"]
