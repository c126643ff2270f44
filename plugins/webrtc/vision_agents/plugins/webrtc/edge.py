"""`WebRTCEdge`: an `EdgeTransport` whose call runs in this process and is joined from browsers."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import aiortc

from vision_agents.core.edge.events import (
    CallEndedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackMutedEvent,
    TrackRemovedEvent,
    TrackSource,
    VideoReceiveStatsEvent,
)
from vision_agents.core.edge.sender_clock import SenderClock
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant, User
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.webrtc.fanout import FanoutTrack
from vision_agents.plugins.webrtc.room import Member, Room
from vision_agents.plugins.webrtc.server import CallServer

logger = logging.getLogger(__name__)

STATS_INTERVAL_S = 2.0
_SOURCES: dict[str, TrackSource] = {"audio": "microphone", "video": "camera", "screen": "screen"}


class WebRTCEdge(EdgeTransport):
    """A call served by an embedded ``CallServer``; people join with a link in their browser.

    ``create_call`` returns a ``Call`` whose ``extra["join_url"]`` is a signed link (mint more
    with ``join_url``). The agent receives each browser's audio and video as separate tracks
    and publishes its own into every browser. The server starts with ``create_call`` (so the
    link works before the agent joins) and stops when the agent leaves, unless it was given.

    While the agent is in the call, every ``stats_interval_s`` seconds (default None: never;
    ``STATS_INTERVAL_S`` is a good period) it sends
    a ``VideoReceiveStatsEvent`` per participant camera on ``events`` and the same figures to
    that participant's page (a "video-stats" message, shown in its Stats panel).
    """

    def __init__(
        self,
        server: CallServer | None = None,
        *,
        stats_interval_s: float | None = None,
        **server_options: Any,
    ) -> None:
        super().__init__()
        if server is not None and server_options:
            raise ValueError(
                f"pass either a server or server options, not both: {sorted(server_options)}"
            )
        self.stats_interval_s = _check_interval(stats_interval_s)
        self._stats: TaskOwner | None = None
        self.server = server or CallServer(**server_options)
        self._owns_server = server is None
        self._room: Room | None = None
        self._video_fps: float | None = None
        self._video_side: int | None = None
        self._agent: Participant | None = None
        self._tracks: dict[str, list[tuple[str, str]]] = {}  # user_id -> [(track_id, kind)]
        self._clocks: dict[str, SenderClock] = {}  # track_id -> its sender's clock
        self._screens: dict[str, FanoutTrack] = {}  # user_id -> the agent's copy of a screen

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
        if self.stats_interval_s is not None and self._stats is None:
            self._stats = TaskOwner("webrtc-edge")
            self._stats.spawn(self._report_stats(self.stats_interval_s), "video-stats")
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
        stats, self._stats = self._stats, None
        if stats is not None:
            await stats.close()
        room, self._room = self._room, None
        self._agent = None
        self._screens.clear()
        if room is not None:
            room.listener = None
            await room.close()
            self.server.rooms.pop(room.call_id, None)
        if self._owns_server:
            await self.server.stop()

    def sender_clock(self, track_id: str) -> SenderClock | None:
        return self._clocks.get(track_id)

    async def report_video_stats(self) -> None:
        """Send each participant camera's figures since the last report, now: a
        ``VideoReceiveStatsEvent`` and a "video-stats" message to its page."""
        room = self._room
        if room is None or self._agent is None:
            return
        for member in room.members:
            meter = member.video_meter
            track_id = next(
                (
                    t
                    for t, kind in self._tracks.get(member.participant.user_id, [])
                    if kind == "video"
                ),
                None,
            )
            if meter is None or track_id is None:
                continue  # no camera, or not announced to the agent yet
            figures = meter.take()
            estimator = member.video_estimator
            event = VideoReceiveStatsEvent(
                participant=member.participant,
                track_id=track_id,
                interval_s=round(figures.interval_s, 3),
                width=figures.width,
                height=figures.height,
                fps=round(figures.fps, 2),
                kbps=round(figures.kbps, 1),
                freezes=figures.freezes,
                frozen_s=round(figures.frozen_s, 3),
                muted=figures.muted,
                estimate_bps=estimator.estimate_bps if estimator is not None else None,
                estimate_falls=estimator.control.falls if estimator is not None else None,
                model_frames=self.model_frames(track_id) if self.model_frames else None,
            )
            self.events.send(event)
            await room.send(member, video_stats_message(event))

    async def _report_stats(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.report_video_stats()

    def _require_room(self) -> Room:
        if self._room is None:
            raise RuntimeError("no call yet: call create_call() or join() first")
        return self._room

    # -- RoomListener ------------------------------------------------------------------------

    def member_joined(self, member: Member) -> None:
        if self._agent is None or self._room is None:
            return  # announced when the agent joins
        self.events.send(ParticipantJoinedEvent(participant=member.participant))
        for kind in ("audio", "video", "screen") if member.sharing else ("audio", "video"):
            self._add_track(member, kind)

    def _add_track(self, member: Member, kind: str) -> None:
        """Announce ``member``'s "audio", "video" (camera) or "screen" track to the agent."""
        assert self._room is not None
        track = self._room.subscribe(member, kind)
        if track is None:
            return
        if kind == "screen":
            self._screens[member.participant.user_id] = track
        self._tracks.setdefault(member.participant.user_id, []).append((track.id, kind))
        clock = member.sources[kind].clock
        if clock is not None:
            self._clocks[track.id] = clock
        event: BaseEvent = TrackAddedEvent(
            participant=member.participant,
            track=track,
            kind="audio" if kind == "audio" else "video",
            source=_SOURCES[kind],
        )
        self.events.send(event)

    def member_sharing(self, member: Member, sharing: bool) -> None:
        if self._agent is None or self._room is None:
            return  # announced when the agent joins
        if sharing:
            self._add_track(member, "screen")
            return
        screen = self._screens.pop(member.participant.user_id, None)
        if screen is None:
            return
        member.sources["screen"].remove(screen)  # a screen announced has its source
        screen.stop()
        self._tracks[member.participant.user_id].remove((screen.id, "screen"))
        self._clocks.pop(screen.id, None)
        self.events.send(
            TrackRemovedEvent(participant=member.participant, track_id=screen.id, kind="video")
        )

    def member_left(self, member: Member) -> None:
        self._screens.pop(member.participant.user_id, None)  # ends with its source
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


def video_stats_message(event: VideoReceiveStatsEvent) -> dict[str, Any]:
    """The "video-stats" message a page gets about its own camera (the event's figures)."""
    return {
        "type": "video-stats",
        "interval_s": event.interval_s,
        "width": event.width,
        "height": event.height,
        "fps": event.fps,
        "kbps": event.kbps,
        "freezes": event.freezes,
        "frozen_s": event.frozen_s,
        "muted": event.muted,
        "estimate_bps": event.estimate_bps,
        "estimate_falls": event.estimate_falls,
        "model_frames": event.model_frames,
    }


def _check_interval(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(
            f"stats_interval_s must be a number of seconds above 0 (or None: no stats), "
            f"got {value!r}"
        )
    return float(value)
