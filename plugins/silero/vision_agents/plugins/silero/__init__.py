"""Silero voice activity detection on onnxruntime (no torch): ``silero.VAD()``."""

from vision_agents.plugins.silero.vad import VAD, default_model_path

__all__ = ["VAD", "default_model_path"]
