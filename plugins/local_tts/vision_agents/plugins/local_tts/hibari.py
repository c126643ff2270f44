"""hibari-tts as a ``TTS``: a small neural English voice (24 kHz) on onnxruntime."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from vision_agents.core.audio import PcmData
from vision_agents.core.voice.tts import TTS


class HibariTTS(TTS):
    """Synthesises on one worker thread owned by this object (the event loop never waits)."""

    provider_name = "hibari"

    def __init__(self, voice: str | None = None, *, threads: int = 1, speed: float = 1.0) -> None:
        try:
            import hibari
        except ImportError as exc:
            raise RuntimeError(
                "hibari-tts is not installed: pip install 'vision-agents[local-tts]'"
            ) from exc
        self._hibari = hibari
        self.voice = voice
        self.threads = threads
        self.speed = speed
        self.sample_rate: int = int(hibari.SAMPLE_RATE)
        self._engine: Any = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hibari")

    def _load(self) -> Any:
        with self._lock:
            if self._engine is None:
                kwargs: dict[str, Any] = {"threads": self.threads}
                if self.voice is not None:
                    kwargs["voice"] = self.voice
                self._engine = self._hibari.Hibari(**kwargs)
            return self._engine

    def _speak(self, text: str) -> np.ndarray[Any, Any]:
        return np.asarray(self._load()(text, speed=self.speed), dtype=np.float32).reshape(-1)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._speak, "Ready.")

    async def stream(self, text: str) -> AsyncIterator[PcmData]:
        if not text.strip():
            return
        samples = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._speak, text
        )
        if len(samples):
            yield PcmData(np.clip(samples, -1.0, 1.0), self.sample_rate, 1)

    async def close(self) -> None:
        # Waits for a decode in progress (bounded: one turn), so no thread outlives us.
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)


def default_tts() -> TTS:
    """The neural voice when hibari-tts is installed, else espeak-ng."""
    try:
        return HibariTTS()
    except RuntimeError:
        from vision_agents.plugins.local_tts.espeak import EspeakTTS

        return EspeakTTS()
