"""Speech-to-text with faster-whisper (CTranslate2 Whisper on CPU or GPU): ``faster_whisper.STT()``."""

from vision_agents.plugins.faster_whisper.stt import STT

__all__ = ["STT"]
