"""Text-to-speech: text in, audio out in chunks, so playback starts before synthesis ends."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from vision_agents.core.audio import PcmData


class TTS(ABC):
    """Speaks text. The pipeline calls ``stream`` once per sentence as the LLM writes them;
    engines yield audio as soon as they have some (local engines: a sentence at a time,
    cloud engines: their own chunks). Any rate and channel count; the player resamples."""

    provider_name: str = "tts"

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Warm the engine up ahead of the first reply (optional)."""

    @abstractmethod
    def stream(self, text: str) -> AsyncIterator[PcmData]:
        """Yield the audio of ``text``."""

    async def synthesize(self, text: str) -> PcmData:
        """The whole audio of ``text`` in one block."""
        out: PcmData | None = None
        async for chunk in self.stream(text):
            out = chunk if out is None else out.append(chunk)
        if out is None:
            raise RuntimeError(f"{self.provider_name} produced no audio for {text!r}")
        return out

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the engine."""
