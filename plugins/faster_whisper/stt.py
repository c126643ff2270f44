"""faster-whisper as an ``STT``: a model by name (downloaded by faster-whisper once) or a path."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from faster_whisper import WhisperModel
from vision_agents.core.audio import PcmData
from vision_agents.core.voice.stt import STT as BaseSTT

_RATE = 16000


class STT(BaseSTT):
    """Transcribes each turn with Whisper; segments stream out as they are decoded.

    ``model``: a name faster-whisper knows ("tiny.en", "base", "small", ...; fetched from its
    model hub on first use) or the path of a CTranslate2 model directory (offline use).
    ``compute_type`` "int8" is the fast choice on CPU. Decoding runs on one worker thread
    owned by this object, so the event loop never waits on it.
    """

    provider_name = "faster_whisper"

    def __init__(
        self,
        model: str | Path = "tiny.en",
        *,
        language: str | None = "en",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        **transcribe_options: Any,
    ) -> None:
        if isinstance(model, Path) and not model.is_dir():
            raise FileNotFoundError(f"no CTranslate2 Whisper model directory at {model}")
        self.model_name = str(model)
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
                self._model = WhisperModel(
                    self.model_name,
                    device=self.device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                )
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
