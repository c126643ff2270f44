"""Gives each participant's video one forwarder, shared by the Realtime model and the video
processors, and keeps the model watching the newest shared screen, else the newest camera,
still in the call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiortc
import av

from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.processors.base import VideoProcessor
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.core.utils.video_forwarder import VideoForwarder

logger = logging.getLogger(__name__)


FrameHandler = Callable[[av.VideoFrame], Awaitable[None]]
HandlerFactory = Callable[[Participant, str], FrameHandler]
"""Makes the frame handler for one track: (participant, track id) -> async handler."""


@dataclass
class _Source:
    participant: Participant
    track: aiortc.MediaStreamTrack
    forwarder: VideoForwarder
    screen: bool = False
    extra: dict[str, FrameHandler] = field(default_factory=dict)


class VideoInput:
    """Routes video tracks to consumers; removing a track stops every frame from it at once.

    The Realtime model watches one track: the newest shared screen while anyone shares one
    (``prefer_screen``, the default), else the newest track; a track sending frames of an
    unusable size (a 4x4 camera) is passed over while another has usable ones, and looked at
    again every ``recheck_s`` seconds (nobody reads it meanwhile). Processors and consumers
    get every track, screens included.
    """

    recheck_s = 10.0

    def __init__(
        self,
        realtime: Realtime | None,
        processors: list[VideoProcessor],
        *,
        prefer_screen: bool = True,
    ) -> None:
        self._realtime = realtime
        self._processors = processors
        self.prefer_screen = prefer_screen
        self._sources: dict[str, _Source] = {}  # insertion order = arrival order
        self._watched: str | None = None
        self._consumers: dict[str, tuple[HandlerFactory, float | None]] = {}
        self._model_frames: dict[str, int] = {}  # track id -> frames sent while watched before
        self._tasks = TaskOwner("video-input")
        self._watch_lock = asyncio.Lock()
        self._watch_began_at = 0  # the model's frames_sent when the current watch began

    @property
    def processors(self) -> list[VideoProcessor]:
        return list(self._processors)

    @property
    def watched_track_id(self) -> str | None:
        """The track the Realtime model is watching now."""
        return self._watched

    def model_frames(self, track_id: str) -> int | None:
        """Frames of ``track_id`` sent to the Realtime model so far (None: no such track or
        no Realtime model). The model counts what it sent; this attributes each to the track
        it was watching then."""
        if self._realtime is None or track_id not in self._sources:
            return None
        count = self._model_frames.get(track_id, 0)
        if track_id == self._watched:
            count += self._realtime.frames_sent - self._watch_began_at
        return count

    def _settle_watch(self) -> None:
        """Credit the frames sent since the current watch began to its track (if still
        here), and begin counting afresh."""
        if self._realtime is None:
            return
        sent = self._realtime.frames_sent
        if self._watched is not None:
            self._model_frames[self._watched] = (
                self._model_frames.get(self._watched, 0) + sent - self._watch_began_at
            )
        self._watch_began_at = sent

    async def add_track(
        self, participant: Participant, track: aiortc.MediaStreamTrack, *, screen: bool = False
    ) -> None:
        """Route ``track`` (``screen``: a shared screen rather than a camera)."""
        if track.id in self._sources:
            return
        kind = "screen" if screen else "video"
        source = _Source(
            participant,
            track,
            VideoForwarder(track, name=f"{kind}:{participant.user_id}"),
            screen=screen,
        )
        source.forwarder.on_refusing = self._refusal_changed
        self._sources[track.id] = source
        for processor in self._processors:
            source.forwarder.add_frame_handler(
                _bind(processor, participant), fps=processor.fps, name=processor.name
            )
        for name, (factory, fps) in self._consumers.items():
            self._attach(source, name, factory, fps)
        await self._watch_best()

    def add_consumer(self, name: str, factory: HandlerFactory, fps: float | None = None) -> None:
        """Feed every video track, now and later, to a handler made by ``factory`` for it
        (through the track's shared forwarder, so nobody else loses frames)."""
        if name in self._consumers:
            raise ValueError(f"a video consumer named {name!r} is already attached")
        self._consumers[name] = (factory, fps)
        for source in self._sources.values():
            self._attach(source, name, factory, fps)

    async def remove_consumer(self, name: str) -> None:
        """Stop feeding the consumer ``name``; its handlers are waited for."""
        if self._consumers.pop(name, None) is None:
            return
        for source in list(self._sources.values()):
            handler = source.extra.pop(name, None)
            if handler is not None and not source.forwarder.ended:
                await source.forwarder.remove_frame_handler(handler)

    def _attach(
        self, source: _Source, name: str, factory: HandlerFactory, fps: float | None
    ) -> None:
        if source.forwarder.ended:
            return
        handler = factory(source.participant, source.track.id)
        source.forwarder.add_frame_handler(handler, fps=fps, name=name)
        source.extra[name] = handler

    async def remove_track(self, track_id: str) -> None:
        source = self._sources.pop(track_id, None)
        if source is None:
            return
        async with self._watch_lock:
            if self._watched == track_id:
                self._watched = None
                if self._realtime is not None:
                    await self._realtime.stop_watching_video_track()
        self._model_frames.pop(track_id, None)
        await source.forwarder.stop()
        await self._watch_best()

    async def remove_participant(self, participant: Participant) -> None:
        for track_id, source in list(self._sources.items()):
            if source.participant == participant:
                await self.remove_track(track_id)

    async def close(self) -> None:
        await self._tasks.close()
        if self._realtime is not None and self._watched is not None:
            await self._realtime.stop_watching_video_track()
        self._watched = None
        self._model_frames.clear()
        sources, self._sources = list(self._sources.values()), {}
        for source in sources:
            await source.forwarder.stop()

    def _choose(self) -> _Source | None:
        """The track the model should watch: of the tracks still live (one whose participant
        left may end before its removal is handled) and sending usable frames (all live ones
        if none is), the newest screen (when preferred), else the newest track."""
        sources = [s for s in self._sources.values() if not s.forwarder.ended]
        if not sources:
            return None
        usable = [s for s in sources if not s.forwarder.refused_within(self.recheck_s)]
        sources = usable or sources
        screens = [s for s in sources if s.screen] if self.prefer_screen else []
        return (screens or sources)[-1]

    def _refusal_changed(self, refusing: bool) -> None:
        self._tasks.spawn(self._rechoose(self.recheck_s if refusing else 0.0), "rechoose")

    async def _rechoose(self, recheck_after_s: float) -> None:
        """A track started or stopped sending frames of an unusable size: watch the best now,
        and (for one that started) again once it is due for another look."""
        await self._watch_best()
        if recheck_after_s:
            await asyncio.sleep(recheck_after_s + 0.05)
            await self._watch_best()

    async def _watch_best(self) -> None:
        """Watch ``_choose()``'s track (one change at a time: tracks come, go and turn
        unusable concurrently)."""
        async with self._watch_lock:
            source = self._choose()
            if self._realtime is None or source is None or self._watched == source.track.id:
                return
            await self._realtime.watch_video_track(
                source.track, shared_forwarder=source.forwarder, screen=source.screen
            )
            self._settle_watch()  # frames before this belong to the track watched until now
            self._watched = source.track.id


def _bind(
    processor: VideoProcessor, participant: Participant
) -> Callable[[av.VideoFrame], Awaitable[None]]:
    async def handle(frame: av.VideoFrame) -> None:
        await processor.process_video(frame, participant)

    handle.__name__ = f"{processor.name}:{participant.user_id}"
    return handle
