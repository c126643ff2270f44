"""`LocalEdge`: the machine the agent runs on as the call: your camera, microphone and speakers."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiortc

from vision_agents.core.edge.events import ParticipantJoinedEvent, TrackAddedEvent
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.types import Participant, User
from vision_agents.core.utils.live_track import audio_frames
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.local.audio import MicrophoneTrack, Speaker
from vision_agents.plugins.local.audio_devices import DEFAULT, find_audio_device
from vision_agents.plugins.local.camera import CameraTrack, resolve_camera
from vision_agents.plugins.local.file_audio import AudioFileTrack
from vision_agents.plugins.local.preview import PreviewMode, VideoPreview

logger = logging.getLogger(__name__)


class LocalEdge(EdgeTransport):
    """A call between the agent and whoever sits at this machine.

    - ``camera``: an index or name of a camera, a video file, a stream URL or
      ``"lavfi:<graph>"`` (see ``resolve_camera``); ``None`` for no video.
    - ``microphone``: ``"default"``, an index or (part of) a PortAudio device name, or a path
      to an audio file played as if spoken into the microphone; ``None`` for no audio in.
    - ``speaker``: ``"default"``, an index or a name; ``None`` to discard the agent's voice.
    - ``preview``: where the agent's published video shows (``"auto"``, ``"window"``,
      ``"page"``, ``"none"``; see ``VideoPreview``).

    Devices open at ``join`` (errors name the devices that exist) and close at ``leave``.
    """

    def __init__(
        self,
        *,
        camera: int | str | Path | None = 0,
        microphone: int | str | Path | None = DEFAULT,
        speaker: int | str | None = DEFAULT,
        preview: PreviewMode = "auto",
        user: User | None = None,
        camera_size: tuple[int, int] | None = (640, 480),
        camera_fps: float | None = 30,
        loop_files: bool = False,
        sample_rate: int = 48000,
    ) -> None:
        super().__init__()
        self.camera = camera
        self.microphone = microphone
        self.speaker_choice = speaker
        self.user = user or User(id="local-user", name="you")
        self.preview = VideoPreview(preview)
        self.camera_track: CameraTrack | None = None
        self.microphone_track: MicrophoneTrack | AudioFileTrack | None = None
        self.speaker: Speaker | None = None
        self.discarded_audio_frames = 0
        self._camera_size, self._camera_fps = camera_size, camera_fps
        self._loop_files = loop_files
        self._sample_rate = sample_rate
        self._participant = Participant.for_user(self.user)
        self._joined = False
        self._tasks = TaskOwner("local-edge")

    @property
    def participants(self) -> list[Participant]:
        return [self._participant] if self._joined else []

    async def create_call(self, call_type: str, call_id: str) -> Call:
        return Call(call_type=call_type, call_id=call_id)

    async def join(self, call: Call, user: User) -> Participant:
        try:
            await self._open_devices()
        except BaseException:
            await self._close_devices()
            raise
        self._joined = True
        self.events.send(ParticipantJoinedEvent(participant=self._participant))
        tracks: list[tuple[aiortc.MediaStreamTrack, str]] = []
        if self.microphone_track is not None:
            tracks.append((self.microphone_track, "audio"))
        if self.camera_track is not None:
            tracks.append((self.camera_track, "video"))
        for track, kind in tracks:
            self.events.send(
                TrackAddedEvent(
                    participant=self._participant,
                    track=track,
                    kind="audio" if kind == "audio" else "video",
                )
            )
        return Participant.for_user(user)

    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        if self.speaker is not None:
            self.speaker.play(track)
        else:
            self._tasks.spawn(self._discard(track), "discard-audio")

    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        await self.preview.show(track)

    async def leave(self) -> None:
        self._joined = False
        await self._tasks.close()
        await self._close_devices()

    async def _open_devices(self) -> None:
        if self.camera is not None:
            source = resolve_camera(self.camera, size=self._camera_size, fps=self._camera_fps)
            self.camera_track = CameraTrack(source, loop=self._loop_files)
            await self.camera_track.start()
        mic_choice = self.microphone
        if mic_choice is not None:
            if not isinstance(mic_choice, int) and _is_file(mic_choice):
                self.microphone_track = AudioFileTrack(
                    mic_choice, sample_rate=self._sample_rate, loop=self._loop_files
                )
            else:
                assert not isinstance(mic_choice, Path)
                device = await asyncio.to_thread(find_audio_device, mic_choice, "input")
                mic = MicrophoneTrack(device, sample_rate=self._sample_rate)
                self.microphone_track = mic
                mic.start()
        if self.speaker_choice is not None:
            device = await asyncio.to_thread(find_audio_device, self.speaker_choice, "output")
            self.speaker = Speaker(device, sample_rate=self._sample_rate)
            self.speaker.start()

    async def _close_devices(self) -> None:
        for track in (self.camera_track, self.microphone_track):
            if track is not None:
                track.stop()
        if self.speaker is not None:
            await self.speaker.close()
        await self.preview.close()

    async def _discard(self, track: aiortc.MediaStreamTrack) -> None:
        # Pulling keeps the agent's audio paced in real time, as a speaker would.
        async for _frame in audio_frames(track):
            self.discarded_audio_frames += 1


def _is_file(choice: str | Path) -> bool:
    return isinstance(choice, Path) or (isinstance(choice, str) and os.path.isfile(choice))


__all__ = ["LocalEdge"]
