"""One call on the server: browser members, the agent's tracks, and who sees and hears whom.

Every browser negotiates once: its camera and microphone (sent), a video sender for a shared
screen (silent until the person shares one), plus one receive slot (an audio and a video
transceiver) per seat in the call, seat 0 being the agent. When someone joins, leaves or
shares a screen, the server re-points slots instead of renegotiating, so joining is one round
trip and leaving stops the forwarding at once. While someone shares a screen, the other
browsers see it in that person's slot instead of their camera.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiortc
from aiortc import sdp

from vision_agents.core.edge.sender_clock import watch_track
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.webrtc.bandwidth import ModelBitrateEstimator, use_model_estimator
from vision_agents.plugins.webrtc.fanout import Fanout, FanoutTrack, SlotTrack
from vision_agents.plugins.webrtc.ice import gather_on
from vision_agents.plugins.webrtc.receive_stats import VideoReceiveMeter, count_received_bytes

logger = logging.getLogger(__name__)

MAX_SDP_BYTES = 128 * 1024
SEND_FPS_FLOOR = 5.0
"""The least a browser is asked to send when only the agent watches it."""


def send_fps_for(wanted: float | None) -> float | None:
    """What to ask a browser to send when the agent is its only viewer and its consumers take
    at most ``wanted`` frames a second: twice that (a frame is then at most half a consumer's
    interval old), at least ``SEND_FPS_FLOOR``; None (as much as it likes) for every frame."""
    if wanted is None:
        return None
    return max(SEND_FPS_FLOOR, 2.0 * wanted)


def send_scale_for(camera: tuple[int, int] | None, wanted_side: int | None) -> float | None:
    """How much to ask a browser to scale its ``camera`` (width, height) down by when the agent
    is its only viewer and its consumers need at most ``wanted_side`` pixels on the longest
    side: the largest whole factor that keeps that side at least ``wanted_side`` (640x480 for
    320 -> 2, for 512 -> None), so frames are never smaller than needed and the browser's
    encoder gets an exact size. None (full size) for an unknown camera or size."""
    if camera is None or wanted_side is None:
        return None
    factor = max(camera) // wanted_side
    return float(factor) if factor >= 2 else None


@dataclass(frozen=True)
class VideoLimit:
    """What a browser is asked to send its camera at: ``RTCRtpEncodingParameters``'
    ``maxFramerate`` and ``scaleResolutionDownBy`` (None for either: as the browser likes)."""

    max_fps: float | None = None
    scale_down_by: float | None = None


class OfferError(ValueError):
    """A browser's offer does not have the shape the page sends."""


@dataclass(eq=False)
class Member:
    """A browser in the call."""

    seat: int
    participant: Participant
    pc: aiortc.RTCPeerConnection
    send: Any  # async callable taking a JSON-able dict
    sources: dict[str, Fanout] = field(default_factory=dict)
    slots: list[dict[str, SlotTrack]] = field(default_factory=list)
    muted: dict[str, bool] = field(default_factory=lambda: {"audio": False, "video": False})
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    states: list[str] = field(default_factory=list)
    """The media connection's states so far (connection and ICE), oldest first."""
    camera: tuple[int, int] | None = None
    """The camera's capture size (width, height) as the page reported it, if it has one."""
    video_limit: VideoLimit | None = None
    """What this browser was last asked to send its camera at (None: not asked yet)."""
    estimators: list[ModelBitrateEstimator] = field(default_factory=list)
    """The bandwidth estimates this connection sends the browser (one per video receiver)."""
    video_meter: VideoReceiveMeter | None = None
    """What arrives of the browser's camera (None: it sends none)."""
    video_estimator: ModelBitrateEstimator | None = None
    """The one of ``estimators`` that the camera's packets feed."""
    sharing: bool = False
    """Whether the browser is sharing a screen now (its ``sources["screen"]`` carries it)."""
    screen: tuple[int, int] | None = None
    """The shared screen's size (width, height) as the page reported it."""
    screen_limit: VideoLimit | None = None
    """What this browser was last asked to send its screen at (None: not asked yet)."""


@dataclass(frozen=True)
class Departure:
    """A member who left the call: when (monotonic seconds), and why."""

    seat: int
    name: str
    at: float
    reason: str


class RoomListener(Protocol):
    """What the edge hears about a room."""

    def member_joined(self, member: Member) -> None: ...
    def member_left(self, member: Member) -> None: ...
    def member_muted(self, member: Member, kind: str, muted: bool) -> None: ...
    def member_sharing(self, member: Member, sharing: bool) -> None: ...


class Room:
    """A call with up to ``max_participants`` browsers plus the agent in seat 0.

    Its peer connections gather ICE candidates (and bind media sockets) on ``ice_host`` only
    when that names one address (e.g. 127.0.0.1), plus loopback when ``loopback_ice``.
    """

    def __init__(
        self,
        call_id: str,
        max_participants: int,
        *,
        ice_host: str = "0.0.0.0",
        loopback_ice: bool = False,
    ) -> None:
        if max_participants < 1:
            raise ValueError(f"max_participants must be at least 1, got {max_participants}")
        self.call_id = call_id
        self.max_participants = max_participants
        self.agent_name = "Agent"
        self.agent_video_fps: float | None = None
        """The most frames a second the agent's consumers take of a participant's video
        (None: every frame); browsers only the agent watches are asked to send accordingly."""
        self.agent_video_side: int | None = None
        """The longest side in pixels the agent's consumers need of a participant's video
        (None: full size); browsers only the agent watches are asked to scale down to it."""
        self.listener: RoomListener | None = None
        self.ice_host = ice_host
        self.loopback_ice = loopback_ice
        self.seats: list[Member | None] = [None] * (max_participants + 1)
        self._reserved: set[int] = set()
        self._agent_sources: dict[str, Fanout] = {}
        self._tasks = TaskOwner(f"room:{call_id}")
        self.departures: deque[Departure] = deque(maxlen=20)
        """The last members who left, and why (newest last)."""

    @property
    def members(self) -> list[Member]:
        return [m for m in self.seats if m is not None]

    @property
    def seat_count(self) -> int:
        """Receive slots each browser opens: the agent plus every possible participant."""
        return len(self.seats)

    @property
    def occupied(self) -> int:
        """Seats taken: members plus sockets that hold a seat while they negotiate."""
        return len(self.members) + len(self._reserved)

    def reserve_seat(self) -> int | None:
        """A free seat for a browser about to join, or None when the call is full."""
        for seat in range(1, len(self.seats)):
            if self.seats[seat] is None and seat not in self._reserved:
                self._reserved.add(seat)
                return seat
        return None

    def release_seat(self, seat: int) -> None:
        self._reserved.discard(seat)

    # -- agent -------------------------------------------------------------------------------

    def publish_agent_track(self, track: aiortc.MediaStreamTrack) -> None:
        """Send the agent's audio or video to every browser (seat 0), now and later."""
        old = self._agent_sources.get(track.kind)
        if old is not None:
            self._tasks.spawn(old.stop(), "stop-old-agent-track")
        source = Fanout(track, self._tasks, "agent", encode_opus=track.kind == "audio")
        self._agent_sources[track.kind] = source
        for member in self.members:
            member.slots[0][track.kind].attach(source)

    # -- browsers ----------------------------------------------------------------------------

    def check_offer(self, offer_sdp: str, screen_mid: str | None = None) -> list[tuple[str, str]]:
        """Each m-line's (kind, direction) if the offer has the page's shape; else OfferError.
        ``screen_mid``: the mid of the video m-line that carries a shared screen, if any."""
        return _check_offer(offer_sdp, self.seat_count, screen_mid)

    async def connect(
        self,
        seat: int,
        name: str,
        offer_sdp: str,
        send: Any,
        *,
        user_id: str | None = None,
        camera: tuple[int, int] | None = None,
        screen_mid: str | None = None,
    ) -> tuple[Member, str]:
        """Answer a browser's offer for ``seat``; returns the member and the answer SDP.
        ``camera`` is the capture size the page reports (it lets the room ask for less);
        ``screen_mid`` the mid of the m-line its shared screen will come on, if it has one."""
        kinds = _check_offer(offer_sdp, self.seat_count, screen_mid)
        with gather_on(self.ice_host, loopback=self.loopback_ice):
            return await self._connect(
                seat, name, offer_sdp, send, kinds, user_id, camera, screen_mid
            )

    async def _connect(
        self,
        seat: int,
        name: str,
        offer_sdp: str,
        send: Any,
        kinds: list[tuple[str, str]],
        user_id: str | None,
        camera: tuple[int, int] | None,
        screen_mid: str | None,
    ) -> tuple[Member, str]:
        # One transport for every m-line, as browsers do by default (max-bundle).
        config = aiortc.RTCConfiguration(bundlePolicy=aiortc.RTCBundlePolicy.MAX_BUNDLE)
        pc = aiortc.RTCPeerConnection(config)
        participant = Participant(user_id=user_id or f"browser-{uuid.uuid4().hex[:8]}", name=name)
        member = Member(seat, participant, pc, send, camera=camera)
        received: list[aiortc.MediaStreamTrack] = []
        pc.on("track", received.append)
        try:
            await pc.setRemoteDescription(aiortc.RTCSessionDescription(offer_sdp, "offer"))
            member.estimators = use_model_estimator(pc)
            receive_slots: dict[str, list[SlotTrack]] = {"audio": [], "video": []}
            for transceiver, (kind, direction) in zip(pc.getTransceivers(), kinds, strict=True):
                if direction == "recvonly":
                    slot = SlotTrack(kind)
                    transceiver.sender.replaceTrack(slot)
                    transceiver.direction = "sendonly"
                    receive_slots[kind].append(slot)
            member.slots = [
                {"audio": a, "video": v}
                for a, v in zip(receive_slots["audio"], receive_slots["video"], strict=True)
            ]
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            await pc.close()
            raise
        screen_track = next(
            (
                t.receiver.track
                for t in pc.getTransceivers()
                if screen_mid is not None and t.mid == screen_mid
            ),
            None,
        )
        if screen_track is not None:
            member.sources["screen"] = Fanout(
                screen_track,
                self._tasks,
                f"{member.participant.user_id}:screen",
                watch_track(pc, screen_track),
            )
        for track in received:
            if track is screen_track:
                continue
            if track.kind in ("audio", "video") and track.kind not in member.sources:
                meter = self._meter_camera(member, track) if track.kind == "video" else None
                member.sources[track.kind] = Fanout(
                    track,
                    self._tasks,
                    member.participant.user_id,
                    watch_track(pc, track),
                    encode_opus=track.kind == "audio",
                    meter=meter,
                )
        self._seat(member)

        @pc.on("connectionstatechange")
        def _on_state() -> None:
            member.states.append(pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                member.closed.set()

        @pc.on("iceconnectionstatechange")
        def _on_ice_state() -> None:
            member.states.append(f"ice:{pc.iceConnectionState}")

        return member, pc.localDescription.sdp

    def _meter_camera(self, member: Member, track: aiortc.MediaStreamTrack) -> VideoReceiveMeter:
        """Measure what arrives of ``member``'s camera ``track``: its frames (through the
        fan-out), the bytes its receiver gets, and which bandwidth estimate is its own."""
        meter = member.video_meter = VideoReceiveMeter()
        receivers = [t.receiver for t in member.pc.getTransceivers() if t.kind == "video"]
        for index, receiver in enumerate(receivers):
            if receiver.track is track:
                count_received_bytes(receiver, meter)
                # use_model_estimator gave each video receiver one, in this order.
                if len(member.estimators) == len(receivers):
                    member.video_estimator = member.estimators[index]
        return meter

    def _seat(self, member: Member) -> None:
        self._reserved.discard(member.seat)
        self.seats[member.seat] = member
        for kind, source in self._agent_sources.items():
            member.slots[0][kind].attach(source)
        for other in self.members:
            if other is member:
                continue
            for kind, source in self._shown(member).items():
                other.slots[member.seat][kind].attach(source)
            for kind, source in self._shown(other).items():
                member.slots[other.seat][kind].attach(source)
        if self.listener is not None:
            self.listener.member_joined(member)

    @staticmethod
    def _shown(member: Member) -> dict[str, Fanout]:
        """What the other browsers get of ``member`` in its slot: audio, and the shared screen
        while there is one, else the camera."""
        shown = {k: v for k, v in member.sources.items() if k in ("audio", "video")}
        if member.sharing and "screen" in member.sources:
            shown["video"] = member.sources["screen"]
        return shown

    async def set_sharing(
        self, member: Member, sharing: bool, size: tuple[int, int] | None = None
    ) -> None:
        """``member`` started (with the screen's ``size``) or stopped sharing a screen: the
        others see it in that member's slot, the agent gets it as a track of its own."""
        if "screen" not in member.sources:
            raise ValueError("this page did not offer a screen track (reload it to share)")
        changed = member.sharing != sharing
        member.sharing, member.screen = sharing, size if sharing else None
        if changed:
            for other in self.members:
                if other is not member:
                    other.slots[member.seat]["video"].attach(self._shown(member).get("video"))
            if self.listener is not None:
                self.listener.member_sharing(member, sharing)
        member.screen_limit = None  # a new screen: ask again
        await self.broadcast_members()

    def note_departure(self, member: Member, reason: str) -> None:
        """Record (and log) why ``member`` is leaving; call before ``remove``."""
        if self.seats[member.seat] is not member:
            return
        self.departures.append(
            Departure(member.seat, member.participant.name, time.monotonic(), reason)
        )
        logger.info(
            "%s (seat %d) left call %s: %s",
            member.participant.name,
            member.seat,
            self.call_id,
            reason,
        )

    async def remove(self, member: Member) -> None:
        """The browser left: stop forwarding it everywhere, then close its connection."""
        if self.seats[member.seat] is not member:
            return
        self.seats[member.seat] = None
        for source in member.sources.values():
            await source.stop()
        for slot in member.slots:
            for track in slot.values():
                track.stop()
        if self.listener is not None:
            self.listener.member_left(member)
        # The others learn first: closing a peer connection can take a while on a busy machine.
        await self.broadcast_members()
        await member.pc.close()

    def set_muted(self, member: Member, kind: str, muted: bool) -> None:
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        member.muted[kind] = muted
        if kind == "video" and member.video_meter is not None:
            member.video_meter.set_muted(muted)
        if self.listener is not None:
            self.listener.member_muted(member, kind, muted)

    def subscribe(self, member: Member, kind: str) -> FanoutTrack | None:
        """A copy of ``member``'s "audio", "video" (camera) or "screen" track, if it has one."""
        source = member.sources.get(kind)
        return source.subscribe() if source is not None else None

    # -- messages ----------------------------------------------------------------------------

    def roster(self) -> list[dict[str, Any]]:
        people: list[dict[str, Any]] = [{"seat": 0, "name": self.agent_name, "agent": True}]
        for m in self.members:
            people.append(
                {
                    "seat": m.seat,
                    "name": m.participant.name,
                    "agent": False,
                    "audio_muted": m.muted["audio"],
                    "video_muted": m.muted["video"],
                    "sharing": m.sharing,
                }
            )
        return people

    async def broadcast_members(self) -> None:
        roster = self.roster()
        for m in self.members:
            await self._send(m, {"type": "members", "you": m.seat, "members": roster})
        await self.update_video_limits()

    async def update_video_limits(self) -> None:
        """Ask each browser for only the video it needs to send: as much and as large as it
        likes while another person sees it, else what the agent's consumers take
        (``agent_video_fps``) at the size they need (``agent_video_side``). The same for a
        shared screen, which the others see instead of the camera."""
        for m in self.members:
            watched_by_people = any(other is not m for other in self.members)
            limit = self._limit_for(m.camera, watched_by_people and not m.sharing)
            if m.video_limit != limit:
                m.video_limit = limit
                await self._send(m, _limit_message(limit, "camera"))
            if m.sharing:
                limit = self._limit_for(m.screen, watched_by_people)
                if m.screen_limit != limit:
                    m.screen_limit = limit
                    await self._send(m, _limit_message(limit, "screen"))

    def _limit_for(self, size: tuple[int, int] | None, watched_by_people: bool) -> VideoLimit:
        if watched_by_people:
            return VideoLimit()
        return VideoLimit(
            send_fps_for(self.agent_video_fps), send_scale_for(size, self.agent_video_side)
        )

    async def broadcast(self, message: dict[str, Any]) -> None:
        for m in self.members:
            await self._send(m, message)

    async def send(self, member: Member, message: dict[str, Any]) -> None:
        """Send a JSON message to one browser (dropped if its socket is closing)."""
        await self._send(member, message)

    async def _send(self, member: Member, message: dict[str, Any]) -> None:
        try:
            await member.send(message)
        except Exception as exc:  # a closing socket: its own handler cleans up
            logger.debug("sending to %s failed: %s", member.participant.user_id, exc)

    async def close(self) -> None:
        for member in self.members:
            await self.remove(member)
        await self._tasks.close()


def _limit_message(limit: VideoLimit, track: str) -> dict[str, Any]:
    return {
        "type": "video-limit",
        "track": track,
        "max_fps": limit.max_fps,
        "scale_down_by": limit.scale_down_by,
    }


def _check_offer(
    offer_sdp: str, seat_count: int, screen_mid: str | None = None
) -> list[tuple[str, str]]:
    """Each m-line's (kind, direction); the page sends its own audio and video (and a video
    for a shared screen on the m-line ``screen_mid``) plus ``seat_count`` receive-only
    audio/video pairs."""
    if len(offer_sdp.encode()) > MAX_SDP_BYTES:
        raise OfferError(f"offer is larger than {MAX_SDP_BYTES} bytes")
    try:
        parsed = sdp.SessionDescription.parse(offer_sdp)
    except Exception as exc:
        raise OfferError(f"offer is not valid SDP: {exc}") from exc
    kinds = [(m.kind, m.direction or "sendrecv") for m in parsed.media]
    if screen_mid is not None:
        screen = [
            m
            for m in parsed.media
            if m.rtp.muxId == screen_mid and m.kind == "video" and m.direction == "sendonly"
        ]
        if not screen:
            raise OfferError(f"screen_mid {screen_mid!r} names no sendonly video m-line")
    sending = [
        k
        for m, (k, d) in zip(parsed.media, kinds, strict=True)
        if d in ("sendonly", "sendrecv") and (screen_mid is None or m.rtp.muxId != screen_mid)
    ]
    receiving = [k for k, d in kinds if d == "recvonly"]
    if any(k not in ("audio", "video") for k, _ in kinds):
        raise OfferError("offer may only hold audio and video (events use the WebSocket)")
    if len(sending) > 2 or len(set(sending)) != len(sending):
        raise OfferError(f"offer sends {sending}; at most one audio and one video are accepted")
    if receiving.count("audio") != seat_count or receiving.count("video") != seat_count:
        raise OfferError(
            f"offer must receive {seat_count} audio and {seat_count} video slots, "
            f"got {receiving.count('audio')} and {receiving.count('video')}"
        )
    for media in parsed.media:
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError("offer lacks ICE credentials (a=ice-ufrag and a=ice-pwd)")
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError("offer lacks a DTLS fingerprint (a=fingerprint)")
    return kinds
