"""Speech-to-text with faster-whisper (CTranslate2 Whisper on CPU or GPU): ``faster_whisper.STT()``.

``STT()`` loads Whisper tiny.en from the ``models`` extra (no download);
``$VISION_AGENTS_WHISPER_MODEL`` or ``STT(model=...)`` picks another model or a local copy.
"""

from vision_agents.plugins.faster_whisper.stt import (
    DEFAULT_MODEL,
    MODEL_ENV,
    STT,
    resolve_model,
    shipped_model_path,
)

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "STT", "resolve_model", "shipped_model_path"]
