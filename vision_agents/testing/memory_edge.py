"""An in-memory `EdgeTransport`: participants play media files, what the agent publishes is recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiortc
import av
import numpy as np

from vision_agents.core.audio import PcmData
from vision_agents.core.edge.events import (
    CallEndedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackKind,
    TrackRemovedEvent,
    TrackSource,
)
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.types import Participant, User
from vision_agents.core.utils.live_track import audio_frames, video_frames
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.testing.player import MediaFilePlayer

logger = logging.getLogger(__name__)


@dataclass
class PublishedMedia:
    """What the agent published, as a remote peer would receive it."""

    audio_chunks: list[PcmData] = field(default_factory=list)
    video_frames: int = 0
    last_video_frame: av.VideoFrame | None = None
    video_times: list[float] = field(default_factory=list)

    @property
    def audio_frames(self) -> int:
        return len(self.audio_chunks)

    @property
    def audio(self) -> PcmData:
        """All published audio so far, as one block (48 kHz stereo unless the track says else)."""
        if not self.audio_chunks:
            return PcmData.empty(48000, 2)
        first = self.audio_chunks[0]
        samples = np.concatenate([c.samples for c in self.audio_chunks], axis=1)
        return PcmData(samples, first.sample_rate, first.channels)


@dataclass
class _Member:
    participant: Participant
    tracks: list[aiortc.MediaStreamTrack]
    player: MediaFilePlayer | None = None
    screen: aiortc.MediaStreamTrack | None = None


class InMemoryEdge(EdgeTransport):
    """A call that lives in this process, for tests and offline demos.

    ``add_participant`` makes someone join and play a media file (or given tracks) as live
    camera and microphone; the agent receives them exactly as from a real call. Whatever the
    agent publishes is pulled in real time and kept in ``published``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.published = PublishedMedia()
        self._call: Call | None = None
        self._agent: Participant | None = None
        self._members: dict[str, _Member] = {}
        self._tasks = TaskOwner("memory-edge")

    @property
    def participants(self) -> list[Participant]:
        return [m.participant for m in self._members.values()]

    async def create_call(self, call_type: str, call_id: str) -> Call:
        self._call = Call(call_type=call_type, call_id=call_id)
        return self._call

    async def join(self, call: Call, user: User) -> Participant:
        self._call = call
        self._agent = Participant.for_user(user)
        for member in self._members.values():
            self._announce(member)
        return self._agent

    async def add_participant(
        self,
        user: User | str,
        media: str | Path | None = None,
        *,
        tracks: list[aiortc.MediaStreamTrack] | None = None,
        loop: bool = False,
    ) -> Participant:
        """A participant joins, sending ``media`` (a file played live) and/or ``tracks``."""
        user = user if isinstance(user, User) else User(id=user, name=user)
        player = MediaFilePlayer(media, loop=loop) if media is not None else None
        member_tracks = [*(player.tracks if player else []), *(tracks or [])]
        member = _Member(Participant.for_user(user), member_tracks, player)
        self._members[member.participant.session_id] = member
        if self._agent is not None:
            self._announce(member)
        return member.participant

    async def remove_participant(self, participant: Participant) -> None:
        """The participant leaves: their tracks end and the agent is told."""
        member = self._members.pop(participant.session_id, None)
        if member is None:
            raise KeyError(f"{participant} is not in the call")
        if member.player is not None:
            member.player.stop()
        for track in [*member.tracks, *([member.screen] if member.screen else [])]:
            track.stop()
            self.events.send(
                TrackRemovedEvent(participant=participant, track_id=track.id, kind=_kind(track))
            )
        self.events.send(ParticipantLeftEvent(participant=participant))

    async def share_screen(self, participant: Participant, track: aiortc.MediaStreamTrack) -> None:
        """``participant`` starts sharing a screen: ``track`` (video) reaches the agent as their
        screen track (``TrackAddedEvent.source == "screen"``), replacing any screen before."""
        member = self._member(participant)
        if track.kind != "video":
            raise ValueError(f"a shared screen is a video track, got {track.kind!r}")
        await self.stop_screen_share(participant)
        member.screen = track
        if self._agent is not None:
            self.events.send(
                TrackAddedEvent(participant=participant, track=track, kind="video", source="screen")
            )

    async def stop_screen_share(self, participant: Participant) -> None:
        """``participant`` stops sharing (nothing happens if they were not)."""
        member = self._member(participant)
        track, member.screen = member.screen, None
        if track is None:
            return
        track.stop()
        self.events.send(
            TrackRemovedEvent(participant=participant, track_id=track.id, kind="video")
        )

    def _member(self, participant: Participant) -> _Member:
        member = self._members.get(participant.session_id)
        if member is None:
            raise KeyError(f"{participant} is not in the call")
        return member

    async def end_call(self, reason: str = "ended") -> None:
        self.events.send(
            CallEndedEvent(call_id=self._call.call_id if self._call else "", reason=reason)
        )

    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        self._tasks.spawn(self._record_audio(track), "record-audio")

    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        self._tasks.spawn(self._record_video(track), "record-video")

    async def leave(self) -> None:
        await self._tasks.close()
        for member in self._members.values():
            if member.player is not None:
                member.player.stop()
            for track in [*member.tracks, *([member.screen] if member.screen else [])]:
                track.stop()
        self._members.clear()
        self._agent = None

    def _announce(self, member: _Member) -> None:
        self.events.send(ParticipantJoinedEvent(participant=member.participant))
        for track in member.tracks:
            kind = _kind(track)
            source: TrackSource = "microphone" if kind == "audio" else "camera"
            self.events.send(
                TrackAddedEvent(
                    participant=member.participant, track=track, kind=kind, source=source
                )
            )
        if member.screen is not None:
            self.events.send(
                TrackAddedEvent(
                    participant=member.participant,
                    track=member.screen,
                    kind="video",
                    source="screen",
                )
            )

    async def _record_audio(self, track: aiortc.MediaStreamTrack) -> None:
        async for frame in audio_frames(track):
            self.published.audio_chunks.append(PcmData.from_av_frame(frame))

    async def _record_video(self, track: aiortc.MediaStreamTrack) -> None:
        async for frame in video_frames(track):
            self.published.video_frames += 1
            self.published.last_video_frame = frame
            self.published.video_times.append(time.monotonic())
            await asyncio.sleep(0)


def _kind(track: aiortc.MediaStreamTrack) -> TrackKind:
    if track.kind == "audio":
        return "audio"
    if track.kind == "video":
        return "video"
    raise ValueError(f"track kind must be 'audio' or 'video', got {track.kind!r}")
