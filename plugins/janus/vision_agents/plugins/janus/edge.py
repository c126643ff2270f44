"""`JanusEdge`: the agent in a Janus VideoRoom, as an ordinary WebRTC participant (aiortc).

The agent publishes its audio and video on one peer connection and subscribes to each other
publisher on one more each, as they come and go (the VideoRoom's events). Janus runs in its own
process, here or on another machine; the agent needs only its WebSocket URL and the secret its
signed tokens are made with. When the socket drops (Janus restarted, network gone), everyone
is reported gone and the edge rejoins with backoff: room (re)created, media republished, the
publishers found there subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiortc
from aiortc.exceptions import InvalidStateError

from vision_agents.core.edge.events import (
    CallEndedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackMutedEvent,
    TrackRemovedEvent,
    TrackSource,
)
from vision_agents.core.edge.sender_clock import SenderClock, watch_track
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.types import Participant, User
from vision_agents.plugins.janus.client import (
    JanusClosed,
    JanusError,
    JanusHandle,
    JanusSession,
    signed_token,
)
from vision_agents.plugins.janus.tracks import LateTrack

logger = logging.getLogger(__name__)

_NO_SUCH_FEED = 428  # the VideoRoom's answer when the publisher left first

MUTED = "muted"
"""A published stream's VideoRoom ``description`` while its sender has muted it (Janus tells
the room of a description change, not of a paused stream; our page sets it)."""
SCREEN = "screen"
"""The ``description`` our page gives the video stream of a shared screen."""
ROOM_EXISTS = 427  # VideoRoom error code: a room with this id exists already
REJOIN_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # then every 2 s until the agent leaves


def room_pin(token_secret: str, call_id: str) -> str:
    """The VideoRoom ``pin`` for ``call_id``: a token for Janus's API admits to any room, the
    pin only to this one. Derived from the secret, so every agent of the call knows it."""
    digest = hmac.new(token_secret.encode(), b"room-pin:" + call_id.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def room_number(call_id: str) -> int:
    """The VideoRoom id for ``call_id``: stable, positive, below 2**53 (JSON-safe)."""
    if not call_id:
        raise ValueError("call_id must not be empty")
    return int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:6], "big") or 1


@dataclass
class _Screen:
    """A publisher's shared screen, and our subscription to that one stream."""

    mid: str
    handle: JanusHandle | None = None
    pc: aiortc.RTCPeerConnection | None = None
    track: LateTrack | None = None  # set once announced


@dataclass
class _Feed:
    """Another publisher in the room, and our subscription to it."""

    feed_id: int
    participant: Participant
    handle: JanusHandle | None = None
    pc: aiortc.RTCPeerConnection | None = None
    tracks: list[tuple[str, str]] = field(default_factory=list)  # (track id, kind)
    relays: list[LateTrack] = field(default_factory=list)  # ended when the feed goes
    entry: dict[str, Any] = field(default_factory=dict)  # the room's latest word on it
    muted: dict[str, bool] = field(default_factory=dict)  # kind -> muted, as last announced
    screen: _Screen | None = None


class JanusEdge(EdgeTransport):
    """Calls on a Janus server (VideoRoom plugin over WebSockets).

    ``url``: Janus's WebSocket API (``ws://host:8188``). ``token_secret``: its
    ``token_auth_secret`` (tokens for the agent and for join links are signed with it).
    ``admin_key``: the VideoRoom ``admin_key`` that allows creating rooms. ``page_url``: a page
    that joins with janus.js (``create_call`` then puts a signed ``join_url`` in the call).
    """

    def __init__(
        self,
        url: str,
        *,
        token_secret: str,
        admin_key: str,
        page_url: str | None = None,
        max_publishers: int = 12,
        token_ttl_s: float = 3600.0,
    ) -> None:
        super().__init__()
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must be Janus's WebSocket API (ws:// or wss://), got {url!r}")
        if not token_secret:
            raise ValueError("token_secret must not be empty (Janus's token_auth_secret)")
        if max_publishers < 2:
            raise ValueError(f"max_publishers must be at least 2, got {max_publishers}")
        self.url = url
        self._secret = token_secret
        self._admin_key = admin_key
        self.page_url = page_url
        self.max_publishers = max_publishers
        self.token_ttl_s = token_ttl_s
        self._room_secrets: dict[str, str] = {}
        self._call: Call | None = None
        self._user: User | None = None
        self._agent: Participant | None = None
        self._session: JanusSession | None = None
        self._publisher: JanusHandle | None = None
        self._publisher_pc: aiortc.RTCPeerConnection | None = None
        self._channel: aiortc.RTCDataChannel | None = None
        self._published: dict[str, aiortc.MediaStreamTrack] = {}
        self._late: dict[str, LateTrack] = {}
        self._feeds: dict[int, _Feed] = {}
        self._clocks: dict[str, SenderClock] = {}  # track_id -> its sender's clock
        self._own_feed = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._leaving = False
        self.joined = asyncio.Event()
        """Set while the agent is in the room (cleared while rejoining after a drop)."""
        self.rejoins = 0

    @property
    def participants(self) -> list[Participant]:
        return [feed.participant for feed in self._feeds.values()]

    def sender_clock(self, track_id: str) -> SenderClock | None:
        return self._clocks.get(track_id)

    def token(self, ttl_s: float | None = None) -> str:
        """A signed token for Janus's API, valid ``ttl_s`` (default ``token_ttl_s``)."""
        return signed_token(self._secret, self.token_ttl_s if ttl_s is None else ttl_s)

    def join_url(self, call: Call | str, *, name: str = "", ttl_s: float | None = None) -> str:
        """A link to ``page_url`` that joins ``call`` with a token expiring in ``ttl_s``."""
        if self.page_url is None:
            raise RuntimeError("no page_url: give JanusEdge the page that joins with janus.js")
        call_id = call.call_id if isinstance(call, Call) else call
        query = {"janus": self.url, "room": str(room_number(call_id))}
        if name:
            query["name"] = name
        # The token and the room's pin go in the fragment, which the browser never sends to
        # the page's server (nor in a Referer), as with the embedded call server's links.
        token = urllib.parse.urlencode(
            {"token": self.token(ttl_s), "pin": room_pin(self._secret, call_id)}
        )
        return f"{self.page_url}?{urllib.parse.urlencode(query)}#{token}"

    async def create_call(self, call_type: str, call_id: str) -> Call:
        room = room_number(call_id)
        secret = self._room_secrets.setdefault(call_id, secrets.token_urlsafe(18))
        session = await JanusSession.connect(self.url, self.token())
        try:
            await self._create_room(session, room, secret, room_pin(self._secret, call_id))
        finally:
            await session.close()
        extra: dict[str, Any] = {"janus_url": self.url, "room": room}
        if self.page_url is not None:
            extra["join_url"] = self.join_url(call_id)
        return Call(call_type, call_id, extra)

    async def _create_room(self, session: JanusSession, room: int, secret: str, pin: str) -> None:
        handle = await session.attach()
        try:
            await handle.message(
                {
                    "request": "create",
                    "room": room,
                    "secret": secret,
                    "pin": pin,
                    "admin_key": self._admin_key,
                    "publishers": self.max_publishers,
                    "audiocodec": "opus",
                    "videocodec": "vp8",
                    "notify_joining": True,
                    "permanent": False,
                }
            )
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:
                raise
        finally:
            await handle.detach()

    async def join(self, call: Call, user: User) -> Participant:
        if self._call is not None:
            raise RuntimeError("this JanusEdge already joined a call; make one edge per call")
        self._call, self._user = call, user
        self._agent = Participant.for_user(user)
        await self._enter_room()
        self._supervisor = asyncio.create_task(self._supervise(), name="janus-supervisor")
        return self._agent

    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        self._publish("audio", track)

    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        self._publish("video", track)

    def _publish(self, kind: str, track: aiortc.MediaStreamTrack) -> None:
        if self._call is None:
            raise RuntimeError("join() the call before publishing")
        self._published[kind] = track
        late = self._late.get(kind)
        if late is not None:
            late.attach(track)

    async def send_message(self, message: dict[str, Any]) -> None:
        """Send a JSON message to every page in the room, on the agent's data channel
        (dropped while it is not open: before joining, or while rejoining)."""
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message, separators=(",", ":")))

    async def end_call(self, reason: str = "ended") -> None:
        call_id = self._call.call_id if self._call else ""
        self.events.send(CallEndedEvent(call_id=call_id, reason=reason))

    async def leave(self) -> None:
        self._leaving = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._teardown(announce=True, gently=True)
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        self._call = None

    # -- joining and rejoining ----------------------------------------------------------------

    async def _enter_room(self) -> None:
        assert self._call is not None and self._user is not None
        room = room_number(self._call.call_id)
        secret = self._room_secrets.setdefault(self._call.call_id, secrets.token_urlsafe(18))
        session = await JanusSession.connect(self.url, self.token())
        self._session = session
        try:
            pin = room_pin(self._secret, self._call.call_id)
            await self._create_room(session, room, secret, pin)
            publisher = await session.attach()
            publisher.on_event = self._on_room_event
            self._publisher = publisher
            answer = await publisher.message(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room,
                    "pin": pin,
                    "display": self._user.name or "Agent",
                }
            )
            data = answer["plugindata"]["data"]
            self._own_feed = int(data["id"])
            await self._start_publishing(publisher)
        except BaseException:
            await self._teardown(announce=False, gently=False)
            raise
        self.joined.set()
        for entry in data.get("publishers", []):
            self._spawn(self._subscribe(entry))

    async def _start_publishing(self, publisher: JanusHandle) -> None:
        pc = aiortc.RTCPeerConnection()
        self._publisher_pc = pc
        self._late = {}
        for kind in ("audio", "video"):
            late = LateTrack(kind)
            if kind in self._published:
                late.attach(self._published[kind])
            self._late[kind] = late
            pc.addTransceiver(late, direction="sendonly")
        # Janus relays a publisher's data channel to subscribers that take data (our page
        # does): the pages get transcripts and messages on it.
        self._channel = pc.createDataChannel("vision-agents")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await publisher.message(
            {"request": "configure", "audio": True, "video": True, "data": True},
            jsep={"type": "offer", "sdp": pc.localDescription.sdp},
        )
        jsep = answer.get("jsep")
        if not jsep:
            raise JanusError(0, "no SDP answer to the agent's offer", "configure")
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(jsep["sdp"], jsep["type"]))

    async def _supervise(self) -> None:
        while not self._leaving:
            session = self._session
            if session is not None:
                await session.closed.wait()
                if self._leaving:
                    return
                logger.warning("lost Janus (%s); rejoining", session.close_reason)
            self.joined.clear()
            await self._teardown(announce=True, gently=False)
            attempt = 0
            while not self._leaving:
                try:
                    await self._enter_room()
                    self.rejoins += 1
                    logger.info("back in the Janus room after %d attempt(s)", attempt + 1)
                    break
                except (JanusClosed, JanusError, OSError) as exc:
                    delay = REJOIN_BACKOFF_S[min(attempt, len(REJOIN_BACKOFF_S) - 1)]
                    logger.info("rejoining Janus failed (%s); again in %.1f s", exc, delay)
                    attempt += 1
                    await asyncio.sleep(delay)

    async def _teardown(self, *, announce: bool, gently: bool) -> None:
        for feed in list(self._feeds.values()):
            await self._drop_feed(feed, announce=announce, gently=gently)
        publisher, self._publisher = self._publisher, None
        if publisher is not None and gently:
            with contextlib.suppress(JanusClosed, JanusError):
                await publisher.message({"request": "leave"})
        pc, self._publisher_pc = self._publisher_pc, None
        self._channel = None
        if pc is not None:
            await pc.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- other publishers -----------------------------------------------------------------------

    def _on_room_event(self, message: dict[str, Any]) -> None:
        data = message.get("plugindata", {}).get("data", {})
        if data.get("videoroom") != "event":
            return
        for entry in data.get("publishers", []) or []:
            feed = self._feeds.get(int(entry.get("id", 0)))
            if feed is None:
                self._spawn(self._subscribe(entry))
            else:
                feed.entry = entry
                if feed.tracks:  # else said once the subscription has its tracks
                    self._update_mutes(feed)
                    self._update_screen(feed)
        for key in ("unpublished", "leaving"):
            gone = data.get(key)
            if isinstance(gone, int) and gone in self._feeds:
                self._spawn(self._drop_feed(self._feeds[gone], announce=True, gently=True))

    @staticmethod
    def _mutes_of(entry: dict[str, Any]) -> dict[str, bool]:
        """kind -> muted, from a publisher entry's streams (their descriptions)."""
        return {
            str(stream.get("type")): stream.get("description") == MUTED
            for stream in entry.get("streams", []) or []
            if stream.get("type") in ("audio", "video") and stream.get("description") != SCREEN
        }

    @staticmethod
    def _screen_mid(entry: dict[str, Any]) -> str | None:
        """The mid of the publisher's shared screen (a live video stream our page describes
        as "screen"), if it shares one."""
        for stream in entry.get("streams", []) or []:
            if (
                stream.get("type") == "video"
                and stream.get("description") == SCREEN
                and not stream.get("disabled")
                and stream.get("mid") is not None
            ):
                return str(stream["mid"])
        return None

    @staticmethod
    def _camera_and_microphone(feed_id: int, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """What to subscribe to of a publisher: every stream but a shared screen (which gets a
        subscription of its own, as it comes and goes)."""
        streams = entry.get("streams") or []
        mids = [
            str(s["mid"])
            for s in streams
            if s.get("mid") is not None and s.get("description") != SCREEN and not s.get("disabled")
        ]
        if not streams or not mids:
            return [{"feed": feed_id}]
        return [{"feed": feed_id, "mid": mid} for mid in mids]

    def _update_screen(self, feed: _Feed) -> None:
        mid = self._screen_mid(feed.entry)
        current = feed.screen
        if current is not None and current.mid == mid:
            return
        if current is not None:
            self._spawn(self._drop_screen(feed, current, announce=True))
        if mid is not None:
            feed.screen = _Screen(mid)
            self._spawn(self._subscribe_screen(feed, feed.screen))

    async def _subscribe_screen(self, feed: _Feed, screen: _Screen) -> None:
        def keep(handle: JanusHandle, pc: aiortc.RTCPeerConnection | None) -> None:
            screen.handle, screen.pc = handle, pc

        try:
            pc, received = await self._open_subscription(
                [{"feed": feed.feed_id, "mid": screen.mid}], keep
            )
        except (JanusClosed, JanusError, InvalidStateError) as exc:
            log = logger.warning if feed.screen is screen else logger.debug
            log("subscribing to %s's screen failed: %s", feed.participant.name, exc)
            await self._drop_screen(feed, screen, announce=False)
            return
        video = [r for r in received if r.kind == "video"]
        if feed.screen is not screen or self._feeds.get(feed.feed_id) is not feed or not video:
            await self._drop_screen(feed, screen, announce=False)
            return
        track = LateTrack("video")
        track.attach(video[0])
        screen.track = track
        clock = watch_track(pc, video[0])
        if clock is not None:
            self._clocks[track.id] = clock
        self.events.send(
            TrackAddedEvent(
                participant=feed.participant, track=track, kind="video", source="screen"
            )
        )

    async def _drop_screen(self, feed: _Feed, screen: _Screen, *, announce: bool) -> None:
        if feed.screen is screen:
            feed.screen = None
        track, screen.track = screen.track, None
        if track is not None:
            self._clocks.pop(track.id, None)
            track.stop()
            if announce:
                self.events.send(
                    TrackRemovedEvent(participant=feed.participant, track_id=track.id, kind="video")
                )
        if screen.pc is not None:
            await screen.pc.close()
        if screen.handle is not None:
            with contextlib.suppress(JanusClosed, JanusError):
                await screen.handle.detach()

    async def _open_subscription(
        self,
        streams: list[dict[str, Any]],
        keep: Callable[[JanusHandle, aiortc.RTCPeerConnection | None], None],
    ) -> tuple[aiortc.RTCPeerConnection, list[aiortc.MediaStreamTrack]]:
        """Subscribe to ``streams`` on a handle and peer connection of their own (``keep``
        is told of both as soon as they exist, so a teardown finds them); returns the peer
        connection and the tracks received."""
        session = self._session
        if session is None or self._call is None:
            raise JanusClosed("not in the room")
        handle = await session.attach()
        keep(handle, None)
        answer = await handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": room_number(self._call.call_id),
                "pin": room_pin(self._secret, self._call.call_id),
                "streams": streams,
            }
        )
        offer = answer.get("jsep")
        if not offer:
            raise JanusError(0, "no SDP offer for the subscription", "join")
        pc = aiortc.RTCPeerConnection()
        keep(handle, pc)
        received: list[aiortc.MediaStreamTrack] = []
        pc.on("track", received.append)
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(offer["sdp"], offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.message(
            {"request": "start"}, jsep={"type": "answer", "sdp": pc.localDescription.sdp}
        )
        return pc, received

    def _update_mutes(self, feed: _Feed) -> None:
        for kind, muted in self._mutes_of(feed.entry).items():
            if feed.muted.get(kind, False) == muted:
                continue
            feed.muted[kind] = muted
            for track_id, track_kind in feed.tracks:
                if track_kind == kind:
                    self.events.send(
                        TrackMutedEvent(
                            participant=feed.participant,
                            track_id=track_id,
                            kind="audio" if kind == "audio" else "video",
                            muted=muted,
                        )
                    )

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _subscribe(self, entry: dict[str, Any]) -> None:
        feed_id = int(entry["id"])
        session = self._session
        if feed_id in self._feeds or feed_id == self._own_feed or session is None:
            return
        assert self._call is not None
        name = str(entry.get("display") or f"feed {feed_id}")
        feed = _Feed(feed_id, Participant(user_id=f"janus-{feed_id}", name=name), entry=entry)
        self._feeds[feed_id] = feed

        def keep(handle: JanusHandle, pc: aiortc.RTCPeerConnection | None) -> None:
            feed.handle, feed.pc = handle, pc

        try:
            pc, received = await self._open_subscription(
                self._camera_and_microphone(feed_id, entry), keep
            )
        except (JanusClosed, JanusError, InvalidStateError) as exc:
            # A publisher that leaves while we subscribe closes our side under us: no feed,
            # no handle, a closed peer connection. Only a failure for a feed still there is news.
            gone = isinstance(exc, JanusError) and exc.code == _NO_SUCH_FEED
            still_there = self._feeds.get(feed_id) is feed and not gone
            log = logger.warning if still_there else logger.debug
            log("subscribing to %s failed: %s", name, exc)
            await self._drop_feed(feed, announce=False, gently=False)
            return
        if self._feeds.get(feed_id) is not feed:
            return  # left while we subscribed
        self.events.send(ParticipantJoinedEvent(participant=feed.participant))
        for remote in received:
            # aiortc names a remote track after the SDP's msid, and Janus gives every
            # subscription the same ones: a relay gives each participant's track its own id.
            track = LateTrack(remote.kind)
            track.attach(remote)
            kind: Literal["audio", "video"] = "audio" if track.kind == "audio" else "video"
            feed.tracks.append((track.id, kind))
            clock = watch_track(pc, remote)
            if clock is not None:
                self._clocks[track.id] = clock
            feed.relays.append(track)
            source: TrackSource = "microphone" if kind == "audio" else "camera"
            self.events.send(
                TrackAddedEvent(participant=feed.participant, track=track, kind=kind, source=source)
            )
        self._update_mutes(feed)  # joined muted, or muted while we subscribed
        self._update_screen(feed)  # sharing already, or began while we subscribed

    async def _drop_feed(self, feed: _Feed, *, announce: bool, gently: bool) -> None:
        if self._feeds.get(feed.feed_id) is not feed:
            return
        del self._feeds[feed.feed_id]
        if feed.screen is not None:
            await self._drop_screen(feed, feed.screen, announce=announce)
        for track_id, _ in feed.tracks:
            self._clocks.pop(track_id, None)
        for relay in feed.relays:
            relay.stop()
        if announce and feed.tracks:
            for track_id, kind in feed.tracks:
                self.events.send(
                    TrackRemovedEvent(
                        participant=feed.participant,
                        track_id=track_id,
                        kind="audio" if kind == "audio" else "video",
                    )
                )
            self.events.send(ParticipantLeftEvent(participant=feed.participant))
        if feed.pc is not None:
            await feed.pc.close()
        if feed.handle is not None and gently:
            await feed.handle.detach()
