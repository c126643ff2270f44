"""The call server: serves the page, checks join tokens, and signals over a WebSocket.

Everything a browser sends is bounded: open connections in all and per address, the time to
send request headers and bodies (``ConnectionGuard``, ``BODY_TIMEOUT_S``), HTTP bodies
(``MAX_BODY_BYTES``), WebSocket messages (``MAX_MESSAGE_BYTES``, SDP included), join attempts
per address, participants per call (sockets still negotiating hold a seat), one seat per join
token at a time, and the time allowed between connecting and sending an offer. A join token
is checked before any WebRTC work is done; every refusal is a JSON error saying why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import quote

from aiohttp import WSMsgType, web, web_response

from vision_agents.plugins.webrtc.consent import install_tolerant_consent
from vision_agents.plugins.webrtc.decoders import install_bounded_decoders
from vision_agents.plugins.webrtc.encoders import install_resilient_encoders
from vision_agents.plugins.webrtc.guard import (
    ACCEPT_BATCH,
    ConnectionGuard,
    GuardLimits,
    RateLimiter,
    RequestErrorLogger,
)
from vision_agents.plugins.webrtc.ice import install as install_ice_scope
from vision_agents.plugins.webrtc.jitter import install_marker_jitter_buffers
from vision_agents.plugins.webrtc.room import MAX_SDP_BYTES, OfferError, Room
from vision_agents.plugins.webrtc.tls import is_loopback, server_ssl_context
from vision_agents.plugins.webrtc.tokens import JoinClaims, JoinTokens, TokenError

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024
MAX_MESSAGE_BYTES = MAX_SDP_BYTES + 4 * 1024
MAX_NAME_CHARS = 64
MAX_CAMERA_SIDE = 8192  # pixels; a larger reported camera size is ignored
OFFER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 5.0
KEEPALIVE_TIMEOUT_S = 10.0
TLS_HANDSHAKE_TIMEOUT_S = 5.0
JOIN_BURST = 30
JOIN_PER_S = 3.0
SERVER_NAME = "vision-agents"
HSTS = "max-age=31536000"
CALL_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def check_call_id(call_id: str) -> str:
    if not CALL_ID_PATTERN.match(call_id):
        raise ValueError(
            f"call id {call_id!r} is not accepted: use 1-64 letters, digits, '-' or '_'"
        )
    return call_id


class CallServer:
    """An aiohttp server hosting calls that browsers join with signed links.

    Bound to loopback (the default) it speaks plain HTTP, which browsers treat as secure. On
    any other address it speaks HTTPS, with ``certfile``/``keyfile`` or ``ssl_context`` if
    given, else with a self-signed certificate made at start (browsers will ask to accept it).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret: bytes | None = None,
        max_participants: int = 6,
        public_host: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        loopback_ice: bool | None = None,
        limits: GuardLimits | None = None,
        join_burst: int = JOIN_BURST,
        join_per_s: float = JOIN_PER_S,
    ) -> None:
        self.host = host
        self.port = port
        self.public_host = public_host or (
            host if host not in ("0.0.0.0", "::") else socket.gethostname()
        )
        self.max_participants = max_participants
        self.tokens = JoinTokens(secret)
        self.rooms: dict[str, Room] = {}
        if ssl_context is None and (certfile is not None or not is_loopback(host)):
            ssl_context = server_ssl_context(certfile, keyfile, hosts=[self.public_host, host])
        self.ssl_context = ssl_context
        self.loopback_ice = is_loopback(host) if loopback_ice is None else loopback_ice
        self.guard = ConnectionGuard(limits)
        self.join_limiter = RateLimiter(join_burst, join_per_s)
        self._held: dict[tuple[str, str], object] = {}  # (call, token's participant) -> holder
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        return f"{scheme}://{host}:{self.port}"

    def room(self, call_id: str) -> Room:
        """The room for ``call_id``, made on first use."""
        room = self.rooms.get(check_call_id(call_id))
        if room is None:
            room = self.rooms[call_id] = Room(
                call_id, self.max_participants, ice_host=self.host, loopback_ice=self.loopback_ice
            )
        return room

    def join_url(self, call_id: str, *, name: str = "", ttl_s: float = 3600.0) -> str:
        """A link that lets one browser join ``call_id`` for ``ttl_s`` seconds."""
        token = self.tokens.mint(check_call_id(call_id), name=name, ttl_s=ttl_s)
        return f"{self.base_url}/call/{quote(call_id)}#token={token}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        install_ice_scope()
        install_resilient_encoders()
        install_bounded_decoders()  # video that falls behind is dropped, not delivered late
        install_marker_jitter_buffers()  # a video frame is decoded at its last packet
        install_tolerant_consent()  # a busy machine is not a dead peer
        # Responses aiohttp writes itself (a 400 for a malformed request) skip our
        # on_response_prepare hook; its default Server value would name its version.
        setattr(web_response, "SERVER_SOFTWARE", SERVER_NAME)  # noqa: B010 (not exported)
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/", self._page)
        app.router.add_get("/call/{call_id}", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_post("/api/check", self._check)
        app.router.add_get("/api/ws", self._websocket)
        app.on_response_prepare.append(_add_security_headers)
        handler_options: dict[str, Any] = {
            "access_log": None,
            "keepalive_timeout": KEEPALIVE_TIMEOUT_S,
            "logger": RequestErrorLogger(logging.getLogger("aiohttp.server"), self.guard),
        }
        self._runner = web.AppRunner(app, handle_signals=False, **handler_options)
        await self._runner.setup()
        manager = self._runner.server
        assert manager is not None  # set by setup()
        # Our own listener rather than a TCPSite: every connection passes the guard first.
        self._listener = await asyncio.get_running_loop().create_server(
            self.guard.protocol_factory(manager, **handler_options),
            self.host,
            self.port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S if self.ssl_context else None,
            reuse_address=True,
            backlog=ACCEPT_BATCH,
        )
        if self.port == 0:
            self.port = self._listener.sockets[0].getsockname()[1]
        logger.info("call server at %s", self.base_url)

    async def stop(self) -> None:
        for room in list(self.rooms.values()):
            await room.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None
        self.guard.summarise()

    # -- handlers ----------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Content-Type": "text/html"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": STATIC_FILES[name]})

    def _authorize(self, call_id: str, token: str) -> tuple[Room, JoinClaims]:
        """The room and claims for a join, or an HTTP error saying why not."""
        if not CALL_ID_PATTERN.match(call_id) or call_id not in self.rooms:
            raise _json_error(web.HTTPNotFound, "this call does not exist (or has ended)")
        try:
            claims = self.tokens.verify(token, call_id)
        except TokenError as exc:
            raise _json_error(web.HTTPForbidden, f"this join link is not valid: {exc}") from exc
        room = self.rooms[call_id]
        if (call_id, claims.participant_id) in self._held:
            raise _json_error(
                web.HTTPConflict,
                "this join link is already in use in this call (one link, one seat): "
                "leave there first, or ask for another link",
            )
        if room.occupied >= room.max_participants:
            raise _json_error(
                web.HTTPConflict, f"this call is full ({room.max_participants} participants)"
            )
        return room, claims

    def _limit_joins(self, request: web.Request) -> None:
        if not self.join_limiter.allow(request.remote or "?"):
            self.guard.count("join attempts over the rate limit")
            raise _json_error(
                web.HTTPTooManyRequests, "too many join attempts from this address: wait a moment"
            )

    async def _check(self, request: web.Request) -> web.Response:
        self._limit_joins(request)
        try:
            body = await asyncio.wait_for(request.json(), BODY_TIMEOUT_S)
        except TimeoutError as exc:
            raise _json_error(web.HTTPRequestTimeout, "the request body came too slowly") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise _json_error(web.HTTPBadRequest, "body must be JSON {call, token}") from exc
        if not isinstance(body, dict):
            raise _json_error(web.HTTPBadRequest, "body must be JSON {call, token}")
        room, claims = self._authorize(str(body.get("call", "")), str(body.get("token", "")))
        return web.json_response(
            {"slots": room.seat_count, "name": claims.name, "agent": room.agent_name}
        )

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        # A short close handshake: a peer that never answers it cannot hold up shutdown.
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=10.0, timeout=1.0)
        if not ws.can_prepare(request).ok:
            raise _json_error(
                web.HTTPBadRequest, "/api/ws is a WebSocket: connect with Upgrade: websocket"
            )
        self._limit_joins(request)
        room, claims = self._authorize(
            request.query.get("call", ""), request.query.get("token", "")
        )
        seat = room.reserve_seat()
        if seat is None:
            raise _json_error(web.HTTPConflict, "this call is full")
        held, holder = (room.call_id, claims.participant_id), object()
        self._held[held] = holder
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)

        def release() -> None:
            """Free the seat and the link (once: a rejoin may hold the link again after)."""
            room.release_seat(seat)
            if self._held.get(held) is holder:
                del self._held[held]

        try:
            await ws.prepare(request)
            await self._serve_member(ws, room, seat, claims, release)
        finally:
            release()
            if task is not None:
                self._connections.discard(task)
            await ws.close()
        return ws

    async def _serve_member(
        self,
        ws: web.WebSocketResponse,
        room: Room,
        seat: int,
        claims: JoinClaims,
        release: Callable[[], None],
    ) -> None:
        try:
            first = await asyncio.wait_for(ws.receive(), OFFER_TIMEOUT_S)
        except TimeoutError:
            await _send_error(ws, "no offer received in time")
            return
        if first.type in _GONE:  # closed, or broke a limit (aiohttp already closed it)
            logger.debug("a socket ended before its offer: %s", first.type.name)
            return
        offer = _parse_message(first)
        if offer is None or offer.get("type") != "offer" or not isinstance(offer.get("sdp"), str):
            await _send_error(ws, "first message must be an offer")
            return
        # The signed name wins; the page's own choice only names an unnamed link.
        name = claims.name or _clean_name(offer.get("name")) or f"Guest {seat}"
        screen_mid = offer.get("screen_mid")
        try:
            if screen_mid is not None and not (
                isinstance(screen_mid, str) and 0 < len(screen_mid) <= 32
            ):
                raise OfferError(f"screen_mid must be a short string, got {screen_mid!r:.40}")
            room.check_offer(offer["sdp"], screen_mid)
            member, answer = await room.connect(
                seat,
                name[:MAX_NAME_CHARS],
                offer["sdp"],
                ws.send_json,
                user_id=f"browser-{claims.participant_id}",
                camera=_camera_size(offer.get("camera")),
                screen_mid=screen_mid,
            )
        except OfferError as exc:
            await _send_error(ws, str(exc))
            return
        except Exception as exc:  # aiortc refusing what our checks let through
            logger.info("could not answer an offer: %s: %s", type(exc).__name__, exc)
            await _send_error(ws, "the offer could not be negotiated")
            return
        try:
            await ws.send_json({"type": "answer", "sdp": answer, "seat": seat})
            await room.broadcast_members()
            closed = asyncio.ensure_future(member.closed.wait())
            reason = "the server stopped"
            try:
                while True:
                    receive = asyncio.ensure_future(ws.receive())
                    done, _ = await asyncio.wait(
                        {receive, closed}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receive not in done:
                        receive.cancel()
                        pc = member.pc
                        socket = f"closed, code {ws.close_code}" if ws.closed else "open"
                        reason = (
                            f"media connection {pc.connectionState} "
                            f"(ICE {pc.iceConnectionState}; socket {socket}; "
                            f"states {' > '.join(member.states)})"
                        )
                        break
                    received = receive.result()
                    message = _parse_message(received)
                    if message is None:
                        reason = _why_socket_ended(received, ws)
                        break
                    try:
                        await self._on_message(room, member, message)
                    except ConnectionError as exc:
                        reason = f"the socket failed: {exc}"
                        break
            finally:
                closed.cancel()
        finally:
            room.note_departure(member, reason)
            # The link is free again before anyone hears that its member left: a page that
            # rejoins as soon as it learns so must not find the link still held (409).
            release()
            await room.remove(member)

    async def _on_message(self, room: Room, member: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "mute" and message.get("kind") in ("audio", "video"):
            room.set_muted(member, str(message["kind"]), bool(message.get("muted")))
            await room.broadcast_members()
        elif kind == "screen" and isinstance(message.get("sharing"), bool):
            size = _camera_size(message) if message["sharing"] else None
            try:
                await room.set_sharing(member, message["sharing"], size)
            except ValueError as exc:
                await member.send({"type": "error", "error": str(exc)})
        else:
            await member.send({"type": "error", "error": f"unknown message type {kind!r}"})


_GONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


async def _send_error(ws: web.WebSocketResponse, message: str) -> None:
    """Tell the page why; a socket that is already gone just ends."""
    try:
        await ws.send_json({"type": "error", "error": message})
    except Exception as exc:  # closing transport: nothing left to tell
        logger.debug("could not send %r: %s", message, exc)


def _clean_name(value: object) -> str:
    """A display name from the page: printable characters only, trimmed."""
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_NAME_CHARS]


def _camera_size(value: object) -> tuple[int, int] | None:
    """A capture size the page reports (its camera's, its shared screen's),
    ``{"width": w, "height": h}``; None if absent or odd."""
    if not isinstance(value, dict):
        return None
    width, height = value.get("width"), value.get("height")
    if _is_side(width) and _is_side(height):
        return width, height
    return None


def _is_side(value: object) -> TypeGuard[int]:
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= MAX_CAMERA_SIDE


def _why_socket_ended(message: Any, ws: web.WebSocketResponse) -> str:
    """Why a member's WebSocket loop ended, in words (for the departure log)."""
    kind = getattr(getattr(message, "type", None), "name", str(message))
    if kind in ("CLOSE", "CLOSING", "CLOSED"):
        return f"the page closed its socket ({kind.lower()}, code {ws.close_code})"
    if kind == "ERROR":
        return f"the socket failed: {ws.exception()!r} (code {ws.close_code})"
    return f"the page sent something that is not a JSON object ({kind.lower()})"


def _parse_message(msg: Any) -> dict[str, Any] | None:
    """A JSON object from a text frame; None when the socket closed or sent something else."""
    if msg.type != WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _json_error(cls: type[web.HTTPException], message: str) -> web.HTTPException:
    return cls(text=json.dumps({"error": message}), content_type="application/json")


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    response.headers["Server"] = SERVER_NAME  # not aiohttp's name and version
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
