"""Reads each participant's audio track and hands every chunk, in order, to one callback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiortc
import av

from vision_agents.core.audio import PcmData
from vision_agents.core.types import Participant
from vision_agents.core.utils.live_track import audio_frames
from vision_agents.core.utils.tasks import TaskOwner, cancel_and_wait

logger = logging.getLogger(__name__)

AudioCallback = Callable[[PcmData, Participant], Awaitable[None]]
FrameListener = Callable[[av.AudioFrame, Participant, str], None]
"""Sees each frame as read: (frame, participant, track id); runs on the loop, must be quick."""


class AudioInput:
    """One reader task per audio track; a failing callback is logged and reading goes on."""

    def __init__(self, on_audio: AudioCallback) -> None:
        self._on_audio = on_audio
        self._tasks = TaskOwner("audio-input")
        self._readers: dict[str, tuple[Participant, asyncio.Task[None]]] = {}
        self._listeners: list[FrameListener] = []

    def add_listener(self, listener: FrameListener) -> None:
        """Also hand every frame, as it is read, to ``listener`` (a recorder, a meter)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: FrameListener) -> None:
        self._listeners.remove(listener)

    def add_track(self, participant: Participant, track: aiortc.MediaStreamTrack) -> None:
        if track.id in self._readers:
            return
        task = self._tasks.spawn(self._read(participant, track), f"audio:{participant.user_id}")
        self._readers[track.id] = (participant, task)
        task.add_done_callback(lambda _t: self._readers.pop(track.id, None))

    async def remove_track(self, track_id: str) -> None:
        entry = self._readers.pop(track_id, None)
        if entry is not None:
            await cancel_and_wait(entry[1])

    async def remove_participant(self, participant: Participant) -> None:
        for track_id, (owner, _task) in list(self._readers.items()):
            if owner == participant:
                await self.remove_track(track_id)

    async def close(self) -> None:
        await self._tasks.close()
        self._readers.clear()

    async def _read(self, participant: Participant, track: aiortc.MediaStreamTrack) -> None:
        async for frame in audio_frames(track):
            for listener in list(self._listeners):
                try:
                    listener(frame, participant, track.id)
                except Exception:
                    logger.exception("an audio frame listener failed")
            pcm = PcmData.from_av_frame(frame)
            pcm.participant = participant
            pcm.timestamp = time.time()
            try:
                await self._on_audio(pcm, participant)
            except Exception:
                logger.exception("handling audio from %s failed", participant.user_id)
        logger.debug("audio track of %s ended", participant.user_id)
