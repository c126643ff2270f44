"""`WebRTCEdge`: an `EdgeTransport` whose call runs in this process and is joined from browsers."""

from __future__ import annotations

import logging
from typing import Any

import aiortc

from vision_agents.core.edge.events import (
    CallEndedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackMutedEvent,
    TrackRemovedEvent,
)
from vision_agents.core.edge.sender_clock import SenderClock
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant, User
from vision_agents.plugins.webrtc.room import Member, Room
from vision_agents.plugins.webrtc.server import CallServer

logger = logging.getLogger(__name__)


class WebRTCEdge(EdgeTransport):
    """A call served by an embedded ``CallServer``; people join with a link in their browser.

    ``create_call`` returns a ``Call`` whose ``extra["join_url"]`` is a signed link (mint more
    with ``join_url``). The agent receives each browser's audio and video as separate tracks
    and publishes its own into every browser. The server starts with ``create_call`` (so the
    link works before the agent joins) and stops when the agent leaves, unless it was given.
    """

    def __init__(self, server: CallServer | None = None, **server_options: Any) -> None:
        super().__init__()
        if server is not None and server_options:
            raise ValueError(
                f"pass either a server or server options, not both: {sorted(server_options)}"
            )
        self.server = server or CallServer(**server_options)
        self._owns_server = server is None
        self._room: Room | None = None
        self._video_fps: float | None = None
        self._video_side: int | None = None
        self._agent: Participant | None = None
        self._tracks: dict[str, list[tuple[str, str]]] = {}  # user_id -> [(track_id, kind)]
        self._clocks: dict[str, SenderClock] = {}  # track_id -> its sender's clock

    @property
    def participants(self) -> list[Participant]:
        return [m.participant for m in self._room.members] if self._room else []

    async def create_call(self, call_type: str, call_id: str) -> Call:
        await self.server.start()
        room = self.server.room(call_id)
        room.listener = self
        self._room = room
        return Call(call_type, call_id, {"join_url": self.server.join_url(call_id)})

    def join_url(self, call: Call | str, *, name: str = "", ttl_s: float = 3600.0) -> str:
        """A fresh signed link to ``call`` (valid ``ttl_s`` seconds)."""
        call_id = call.call_id if isinstance(call, Call) else call
        return self.server.join_url(call_id, name=name, ttl_s=ttl_s)

    async def join(self, call: Call, user: User) -> Participant:
        if self._room is None or self._room.call_id != call.call_id:
            await self.create_call(call.call_type, call.call_id)
        assert self._room is not None
        self._agent = Participant.for_user(user)
        self._room.agent_name = user.name or "Agent"
        self._room.agent_video_fps = self._video_fps
        self._room.agent_video_side = self._video_side
        for member in self._room.members:
            self.member_joined(member)
        await self._room.broadcast_members()
        return self._agent

    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        self._require_room().publish_agent_track(track)

    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        self._require_room().publish_agent_track(track)

    def subscribe(self, participant: Participant, kind: str) -> aiortc.MediaStreamTrack | None:
        """Another copy of a participant's received track (e.g. to record it), or None."""
        room = self._require_room()
        for member in room.members:
            if member.participant == participant:
                return room.subscribe(member, kind)
        raise KeyError(f"{participant} is not in the call")

    async def want_video(self, max_fps: float | None, max_side: int | None = None) -> None:
        """Browsers that only the agent watches are asked for what its consumers take (twice
        ``max_fps``, at least 5 fps, scaled down by the largest whole factor that keeps the
        longest side at least ``max_side``); a browser another person sees sends as much and
        as large as it likes."""
        self._video_fps, self._video_side = max_fps, max_side
        if self._room is not None:
            self._room.agent_video_fps = max_fps
            self._room.agent_video_side = max_side
            await self._room.update_video_limits()

    async def send_message(self, message: dict[str, Any]) -> None:
        """Send a JSON message to every browser in the call (dropped when not in one)."""
        if self._room is not None:
            await self._room.broadcast(message)

    async def end_call(self, reason: str = "ended") -> None:
        """Tell the agent the call is over (browsers are disconnected when the agent leaves)."""
        call_id = self._room.call_id if self._room else ""
        self.events.send(CallEndedEvent(call_id=call_id, reason=reason))

    async def leave(self) -> None:
        room, self._room = self._room, None
        self._agent = None
        if room is not None:
            room.listener = None
            await room.close()
            self.server.rooms.pop(room.call_id, None)
        if self._owns_server:
            await self.server.stop()

    def sender_clock(self, track_id: str) -> SenderClock | None:
        return self._clocks.get(track_id)

    def _require_room(self) -> Room:
        if self._room is None:
            raise RuntimeError("no call yet: call create_call() or join() first")
        return self._room

    # -- RoomListener ------------------------------------------------------------------------

    def member_joined(self, member: Member) -> None:
        if self._agent is None or self._room is None:
            return  # announced when the agent joins
        self.events.send(ParticipantJoinedEvent(participant=member.participant))
        tracks = self._tracks.setdefault(member.participant.user_id, [])
        for kind in ("audio", "video"):
            track = self._room.subscribe(member, kind)
            if track is not None:
                tracks.append((track.id, kind))
                clock = member.sources[kind].clock
                if clock is not None:
                    self._clocks[track.id] = clock
                event: BaseEvent = TrackAddedEvent(
                    participant=member.participant, track=track, kind=kind
                )
                self.events.send(event)

    def member_left(self, member: Member) -> None:
        tracks = self._tracks.pop(member.participant.user_id, [])
        for track_id, _ in tracks:
            self._clocks.pop(track_id, None)
        if self._agent is None:
            return
        for track_id, kind in tracks:
            self.events.send(
                TrackRemovedEvent(
                    participant=member.participant,
                    track_id=track_id,
                    kind="audio" if kind == "audio" else "video",
                )
            )
        self.events.send(ParticipantLeftEvent(participant=member.participant))

    def member_muted(self, member: Member, kind: str, muted: bool) -> None:
        if self._agent is None:
            return
        for track_id, track_kind in self._tracks.get(member.participant.user_id, []):
            if track_kind == kind:
                self.events.send(
                    TrackMutedEvent(
                        participant=member.participant,
                        track_id=track_id,
                        kind="audio" if kind == "audio" else "video",
                        muted=muted,
                    )
                )
