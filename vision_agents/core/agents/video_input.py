"""Gives each participant's video one forwarder, shared by the Realtime model and the video
processors, and keeps the model watching the newest camera still in the call."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiortc
import av

from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.processors.base import VideoProcessor
from vision_agents.core.types import Participant
from vision_agents.core.utils.video_forwarder import VideoForwarder

logger = logging.getLogger(__name__)


@dataclass
class _Source:
    participant: Participant
    track: aiortc.MediaStreamTrack
    forwarder: VideoForwarder


class VideoInput:
    """Routes video tracks to consumers; removing a track stops every frame from it at once."""

    def __init__(self, realtime: Realtime | None, processors: list[VideoProcessor]) -> None:
        self._realtime = realtime
        self._processors = processors
        self._sources: dict[str, _Source] = {}  # insertion order = arrival order
        self._watched: str | None = None

    @property
    def processors(self) -> list[VideoProcessor]:
        return list(self._processors)

    @property
    def watched_track_id(self) -> str | None:
        """The track the Realtime model is watching now."""
        return self._watched

    async def add_track(self, participant: Participant, track: aiortc.MediaStreamTrack) -> None:
        if track.id in self._sources:
            return
        source = _Source(
            participant, track, VideoForwarder(track, name=f"video:{participant.user_id}")
        )
        self._sources[track.id] = source
        for processor in self._processors:
            source.forwarder.add_frame_handler(
                _bind(processor, participant), fps=processor.fps, name=processor.name
            )
        await self._watch(source)

    async def remove_track(self, track_id: str) -> None:
        source = self._sources.pop(track_id, None)
        if source is None:
            return
        if self._watched == track_id:
            self._watched = None
            if self._realtime is not None:
                await self._realtime.stop_watching_video_track()
        await source.forwarder.stop()
        if self._watched is None and self._sources:
            await self._watch(list(self._sources.values())[-1])

    async def remove_participant(self, participant: Participant) -> None:
        for track_id, source in list(self._sources.items()):
            if source.participant == participant:
                await self.remove_track(track_id)

    async def close(self) -> None:
        if self._realtime is not None and self._watched is not None:
            await self._realtime.stop_watching_video_track()
        self._watched = None
        sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            await source.forwarder.stop()

    async def _watch(self, source: _Source) -> None:
        if self._realtime is None:
            return
        await self._realtime.watch_video_track(source.track, shared_forwarder=source.forwarder)
        self._watched = source.track.id


def _bind(
    processor: VideoProcessor, participant: Participant
) -> Callable[[av.VideoFrame], Awaitable[None]]:
    async def handle(frame: av.VideoFrame) -> None:
        await processor.process_video(frame, participant)

    handle.__name__ = f"{processor.name}:{participant.user_id}"
    return handle
