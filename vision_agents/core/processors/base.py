"""Processor bases: code that watches or listens to the call and may publish media back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import aiortc
import av

from vision_agents.core.audio import PcmData
from vision_agents.core.events.manager import EventManager
from vision_agents.core.types import Participant


class Processor:
    """Anything the agent runs beside the LLM.

    ``events`` carries the processor's own typed events; ``state()`` is what the processor
    knows that the LLM may use as context (e.g. the latest detections).
    """

    name: ClassVar[str] = "processor"

    def __init__(self) -> None:
        self.events = EventManager(name=f"{self.name}.events")

    def state(self) -> dict[str, Any]:
        """What this processor knows right now, for the LLM's context; empty by default."""
        return {}

    async def close(self) -> None:
        """Release resources; called once when the agent leaves."""
        await self.events.close()


class VideoProcessor(Processor, ABC):
    """Consumes video frames of each participant at its own ``fps`` (None: every frame).

    Frames come from the shared forwarder, so a slow processor delays only itself. Frames are
    shared with other consumers: read them, never modify them in place.
    """

    fps: float | None = 5.0
    max_side: int | None = None
    """The longest side in pixels this processor needs of a frame (e.g. a detector's input
    size); None (the default): full size. Edges may ask senders for smaller frames down to it."""

    @abstractmethod
    async def process_video(self, frame: av.VideoFrame, participant: Participant) -> None:
        """Handle one frame from ``participant``."""

    async def on_participant_left(self, participant: Participant) -> None:
        """Forget anything kept for ``participant``; no frame of theirs arrives after this."""


class VideoPublisher(Processor, ABC):
    """Publishes a video track into the call."""

    @abstractmethod
    def publish_video_track(self) -> aiortc.MediaStreamTrack:
        """The track to publish; called once when the agent joins."""


class VideoProcessorPublisher(VideoProcessor, VideoPublisher):
    """Both: consumes frames and publishes a derived track (e.g. annotated detections)."""


class AudioProcessor(Processor, ABC):
    """Consumes each participant's audio as ``PcmData``."""

    @abstractmethod
    async def process_audio(self, pcm: PcmData, participant: Participant) -> None:
        """Handle one chunk of audio from ``participant``."""


class AudioPublisher(Processor, ABC):
    """Publishes an audio track into the call (instead of the agent's own voice track)."""

    @abstractmethod
    def publish_audio_track(self) -> aiortc.MediaStreamTrack:
        """The track to publish; called once when the agent joins."""
