"""`TwilioServer`: answers phone calls for agents.

Two routes, both under ``path`` (default ``/twilio``):

- ``POST /twilio/voice``: the number's voice webhook. The request must carry a valid
  ``X-Twilio-Signature`` (checked with Twilio's SDK against ``public_url``); the answer is TwiML
  that connects the call to a bidirectional Media Stream, with a short-lived ticket for it.
- ``GET /twilio/media``: the Media Streams WebSocket. A stream is accepted only with a valid
  ticket for its call (so nobody can open a stream without a signed webhook first), then its
  ``PhoneCallEdge`` goes to the ``on_call`` handler.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.twilio import protocol
from vision_agents.plugins.twilio.edge import PhoneCallEdge

logger = logging.getLogger(__name__)

CallHandler = Callable[[PhoneCallEdge], Awaitable[None]]

_TICKET = "va_ticket"
_MAX_BAD_MESSAGES = 50


@dataclass
class _Pending:
    caller: str
    called: str
    expires_at: float


class TwilioServer:
    """Answers calls to a Twilio number and runs ``handler(edge)`` for each one.

    - ``auth_token``: the account's auth token (default ``TWILIO_AUTH_TOKEN``), which signs
      webhooks. Without one the server refuses to start, unless ``validate_signatures=False``
      (local experiments only: then anyone who can reach the port can place calls).
    - ``public_url``: the address Twilio calls (``https://abc.example.com``), used to check
      signatures and to build the stream's ``wss://`` URL; by default the request's own.
    - ``max_calls``: calls at once; past it the webhook answers ``<Reject reason="busy">``.
    - ``ticket_ttl_s``: how long after the webhook its stream may start.

    Use ``@server.on_call`` to register the handler, then ``async with server:`` or
    ``await server.start()`` / ``await server.close()``.
    """

    def __init__(
        self,
        *,
        auth_token: str | None = None,
        public_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        path: str = "/twilio",
        max_calls: int = 20,
        validate_signatures: bool = True,
        ticket_ttl_s: float = 60.0,
    ) -> None:
        token = auth_token if auth_token is not None else os.environ.get("TWILIO_AUTH_TOKEN")
        if validate_signatures and not token:
            raise ValueError(
                "TwilioServer needs the account's auth token to check webhook signatures: pass "
                "auth_token=... or set TWILIO_AUTH_TOKEN (validate_signatures=False turns the "
                "check off, for local experiments only)"
            )
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {max_calls!r}")
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"path must start with '/' and not end with one, got {path!r}")
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"public_url must be http(s)://host[:port], got {public_url!r}")
            public_url = public_url.rstrip("/")
        self.host, self.port, self.path = host, port, path
        self.public_url = public_url
        self.max_calls = max_calls
        self.ticket_ttl_s = ticket_ttl_s
        self.refused_signatures = 0
        self.refused_streams = 0
        self._validator = RequestValidator(token) if validate_signatures and token else None
        # Tickets are signed with a key derived from the auth token, so every node behind the
        # same number accepts the streams of another's webhook.
        seed = (token or os.urandom(32).hex()).encode()
        self._ticket_key = hmac.new(seed, b"vision-agents media stream ticket", "sha256").digest()
        self._pending: dict[str, _Pending] = {}
        self._handler: CallHandler | None = None
        self._calls: dict[str, PhoneCallEdge] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._tasks = TaskOwner("twilio-server")
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._handlers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:  # never the token
        return f"TwilioServer(url={self.url!r}, calls={len(self._calls)})"

    # -- set-up -------------------------------------------------------------------------------

    def on_call(self, handler: CallHandler) -> CallHandler:
        """Register the coroutine that takes each call (usually: make an Agent, join, finish)."""
        self._handler = handler
        return handler

    @property
    def url(self) -> str:
        """Where this server listens (after ``start``, with the real port)."""
        return f"http://{self.host}:{self.port}"

    @property
    def voice_url(self) -> str:
        """The webhook URL to give Twilio (the number's "A call comes in" setting)."""
        return f"{self.public_url or self.url}{self.path}/voice"

    @property
    def calls(self) -> list[PhoneCallEdge]:
        return list(self._calls.values())

    async def start(self) -> None:
        if self._handler is None:
            raise RuntimeError("register a call handler with @server.on_call before start()")
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post(f"{self.path}/voice", self._voice)
        app.router.add_get(f"{self.path}/media", self._media)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        logger.info("answering phone calls: webhook %s", self.voice_url)

    async def close(self, grace_s: float = 5.0) -> None:
        """End every call (its agent sees ``CallEndedEvent``), give the handlers ``grace_s``
        to finish, cancel the rest, stop listening."""
        self._closing = True
        for edge in list(self._calls.values()):
            edge.stream_closed()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=grace_s)
        await self._tasks.close()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TwilioServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the webhook --------------------------------------------------------------------------

    async def _voice(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        if self._validator is not None:
            url = f"{self.public_url}{request.path_qs}" if self.public_url else str(request.url)
            signature = request.headers.get("X-Twilio-Signature", "")
            if not signature or not self._validator.validate(url, params, signature):
                self.refused_signatures += 1
                logger.warning(
                    "refused a voice webhook: %s X-Twilio-Signature",
                    "invalid" if signature else "no",
                )
                return web.Response(status=403, text="invalid or missing X-Twilio-Signature\n")
        call_sid = params.get("CallSid", "")
        if not call_sid:
            return web.Response(status=400, text="the webhook form has no CallSid\n")
        response = VoiceResponse()
        self._prune()
        if len(self._calls) + len(self._pending) >= self.max_calls:
            logger.warning("refused call %s: %d calls already", call_sid, self.max_calls)
            response.reject(reason="busy")
            return _twiml(response)
        expires_at = time.time() + self.ticket_ttl_s
        self._pending[call_sid] = _Pending(params.get("From", ""), params.get("To", ""), expires_at)
        stream = Stream(url=self._media_url(request))
        stream.parameter(name=_TICKET, value=self._ticket(call_sid, expires_at))
        connect = Connect()
        connect.append(stream)
        response.append(connect)
        return _twiml(response)

    def _media_url(self, request: web.Request) -> str:
        base = self.public_url or f"{request.scheme}://{request.host}"
        scheme, rest = base.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{self.path}/media"

    def _ticket(self, call_sid: str, expires_at: float) -> str:
        expiry = str(int(expires_at))
        mac = hmac.new(self._ticket_key, f"{call_sid}.{expiry}".encode(), hashlib.sha256)
        return f"{expiry}.{mac.hexdigest()}"

    def _ticket_ok(self, call_sid: str, ticket: str) -> bool:
        expiry, _, mac = ticket.partition(".")
        if not expiry.isdigit() or int(expiry) < time.time():
            return False
        want = hmac.new(self._ticket_key, f"{call_sid}.{expiry}".encode(), hashlib.sha256)
        return hmac.compare_digest(want.hexdigest(), mac)

    def _prune(self) -> None:
        now = time.time()
        for sid in [sid for sid, p in self._pending.items() if p.expires_at < now]:
            del self._pending[sid]

    # -- the stream ---------------------------------------------------------------------------

    async def _media(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=protocol.MAX_MESSAGE_BYTES, heartbeat=None)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await self._stream(ws)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _stream(self, ws: web.WebSocketResponse) -> None:
        try:
            start = await asyncio.wait_for(self._wait_start(ws), timeout=10.0)
        except (TimeoutError, protocol.ProtocolError) as exc:
            self.refused_streams += 1
            logger.warning("refused a media stream: %s", exc)
            await ws.close(code=1008, message=b"refused")
            return
        if self._closing:
            await ws.close(code=1001, message=b"server closing")
            return
        edge = PhoneCallEdge(
            start,
            ws.send_str,
            lambda: _close(ws),
            caller=self._pending[start.call_sid].caller,
            called=self._pending[start.call_sid].called,
        )
        del self._pending[start.call_sid]
        self._calls[start.call_sid] = edge
        assert self._handler is not None
        task = self._tasks.spawn(self._run(edge, self._handler), f"call:{start.call_sid}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        bad = 0
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    parsed = protocol.parse(message.data)
                except protocol.ProtocolError as exc:
                    bad += 1
                    logger.debug("call %s: ignored a message: %s", start.call_sid, exc)
                    if bad > _MAX_BAD_MESSAGES:
                        logger.warning("call %s: too many bad messages, closing", start.call_sid)
                        break
                    continue
                edge.receive(parsed)
                if isinstance(parsed, protocol.Stop):
                    break
        finally:
            edge.stream_closed()
            await ws.close()

    async def _wait_start(self, ws: web.WebSocketResponse) -> protocol.Start:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            parsed = protocol.parse(message.data)
            if isinstance(parsed, protocol.Connected):
                continue
            if not isinstance(parsed, protocol.Start):
                raise protocol.ProtocolError(f"expected start, got {type(parsed).__name__}")
            ticket = parsed.custom_parameters.get(_TICKET, "")
            if parsed.call_sid not in self._pending or not self._ticket_ok(parsed.call_sid, ticket):
                raise protocol.ProtocolError(
                    f"no valid ticket for call {parsed.call_sid} (a stream must follow a "
                    "signed webhook of this server)"
                )
            if parsed.encoding != "audio/x-mulaw" or parsed.sample_rate != 8000:
                raise protocol.ProtocolError(
                    f"unsupported media format {parsed.encoding} at {parsed.sample_rate} Hz"
                )
            return parsed
        raise protocol.ProtocolError("the stream closed before start")

    async def _run(self, edge: PhoneCallEdge, handler: CallHandler) -> None:
        try:
            await handler(edge)
        except Exception:
            logger.exception("the call handler failed for call %s", edge.call_sid)
        finally:
            self._calls.pop(edge.call_sid, None)
            await edge.close()


def _twiml(response: VoiceResponse) -> web.Response:
    return web.Response(text=str(response), content_type="application/xml")


async def _close(ws: web.WebSocketResponse) -> None:
    await ws.close()
