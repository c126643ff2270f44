"""Ultralytics YOLO (detect and pose) with your own weights, on a GPU when there is one.

``pip install "vision-agents[ultralytics]"`` (Ultralytics needs torch and torchvision), then
``DetectionProcessor(ultralytics.YOLODetector("yolo11n-pose.pt"))``.
"""

from vision_agents.plugins.ultralytics.yolo import YOLODetector

__all__ = ["YOLODetector"]
