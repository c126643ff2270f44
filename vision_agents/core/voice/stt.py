"""Speech-to-text: a finished turn of speech in, its text out, segment by segment."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator

from vision_agents.core.audio import PcmData


class STT(ABC):
    """Transcribes one turn of speech. ``stream`` yields text pieces as they are decoded
    (the pipeline publishes them as partial transcripts); ``transcribe`` joins them."""

    provider_name: str = "stt"

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Load the model ahead of the first turn (optional; the first turn loads it too)."""

    @abstractmethod
    def stream(self, pcm: PcmData) -> AsyncIterator[str]:
        """Yield the text of ``pcm`` (any rate, any channels) piece by piece."""

    async def transcribe(self, pcm: PcmData) -> str:
        parts = [part async for part in self.stream(pcm)]
        return " ".join(p.strip() for p in parts if p.strip())

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release the model and its threads."""
