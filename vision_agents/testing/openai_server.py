"""A local OpenAI Realtime (GA) server: test agents against the real ``openai`` SDK, no key.

Every client event is validated strictly against the SDK's own pydantic types (the member of
the union named by ``type``, and no unknown field anywhere in the tree); a bad event gets the
API's ``error`` event and is not acted on. Replies are scripted; everything received is
recorded. ``POST /v1/realtime/calls`` answers a WebRTC offer (raw ``application/sdp`` or
multipart ``sdp`` + ``session``) with an aiortc peer (``openai_webrtc.py``): the same events
over the ``oai-events`` data channel, reply audio on its outgoing track, the caller's audio
track recorded. ``POST /v1/realtime/client_secrets`` mints ephemeral keys.

    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="test", base_url=server.base_url)
        server.script(ScriptedReply(transcript="hello", audio=pcm24k))
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import time
import typing
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

if TYPE_CHECKING:  # aiohttp and openai come with the ``testing`` and ``openai`` extras
    from aiohttp import web

    from vision_agents.testing.openai_webrtc import ServerPeer

JsonDict = dict[str, Any]
AUDIO_RATE = 24000


@dataclass
class ScriptedReply:
    """One model response: spoken transcript with audio, text, and/or tool calls."""

    transcript: str = ""
    audio: bytes = b""
    """24 kHz mono s16le; sent in ``chunk_ms`` deltas."""
    text: str = ""
    """Sent as ``response.output_text`` (for text-only sessions) when set."""
    tool_calls: list[tuple[str, JsonDict]] = field(default_factory=list)
    chunk_ms: int = 100
    pace: float = 0.0
    """Seconds between audio deltas (0: all at once, like the real API)."""


Responder = Callable[[JsonDict], ScriptedReply]
"""``(response.create event) -> ScriptedReply``; used when the script queue is empty."""


@functools.cache
def _client_event_types() -> dict[str, type[pydantic.BaseModel]]:
    from openai.types.realtime import RealtimeClientEvent

    union = typing.get_args(RealtimeClientEvent)[0]
    out: dict[str, type[pydantic.BaseModel]] = {}
    for member in typing.get_args(union):
        literal = member.model_fields["type"].annotation
        for value in typing.get_args(literal):
            out[value] = member
    return out


def _extras(node: Any, path: str = "") -> list[str]:
    """Paths of fields the SDK's types did not declare."""
    found: list[str] = []
    if isinstance(node, pydantic.BaseModel):
        for key in node.model_extra or {}:
            found.append(f"{path}.{key}" if path else key)
        for name in type(node).model_fields:
            found += _extras(getattr(node, name), f"{path}.{name}" if path else name)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            found += _extras(value, f"{path}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            found += _extras(value, f"{path}.{key}")
    return found


class ValidationFailed(Exception):
    def __init__(self, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def validate_client_event(data: Any) -> JsonDict:
    """Check one client event as the API does; raise ``ValidationFailed`` when it is not valid."""
    if not isinstance(data, dict):
        raise ValidationFailed("Expected an object", "invalid_json")
    kind = data.get("type")
    model = _client_event_types().get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValidationFailed(
            f"Invalid value: {kind!r}. Unknown event type.", "invalid_value", "type"
        )
    try:
        parsed = model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(
            f"Invalid '{param}': {first['msg']}", "invalid_value", param
        ) from None
    extras = _extras(parsed)
    if extras:
        raise ValidationFailed(f"Unknown parameter: '{extras[0]}'.", "unknown_parameter", extras[0])
    if kind == "session.update":
        session = data.get("session") or {}
        if session.get("type") != "realtime":
            raise ValidationFailed(
                "session.type must be 'realtime'", "invalid_value", "session.type"
            )
        for side in ("input", "output"):
            fmt = ((session.get("audio") or {}).get(side) or {}).get("format")
            if fmt and fmt.get("type") == "audio/pcm" and fmt.get("rate", AUDIO_RATE) != AUDIO_RATE:
                raise ValidationFailed("audio/pcm rate must be 24000", "invalid_value")
    return data


@dataclass
class Connection:
    """One session (a WebSocket, or a WebRTC call) as the server saw it."""

    model: str
    authorization: str
    ws: web.WebSocketResponse | None = None
    rtc: ServerPeer | None = None
    received: list[JsonDict] = field(default_factory=list)
    session: JsonDict = field(default_factory=dict)
    audio_bytes: int = 0
    audio: bytearray = field(default_factory=bytearray)
    """The caller's audio, 24 kHz mono s16 (WebRTC: decoded from its track, silence included)."""
    items: list[JsonDict] = field(default_factory=list)
    response_task: asyncio.Task[None] | None = None
    response_id: str | None = None
    playout_task: asyncio.Task[None] | None = None
    inbox: asyncio.Queue[str] | None = None
    reader: asyncio.Task[None] | None = None
    expired: bool = False

    @property
    def transport(self) -> str:
        return "webrtc" if self.rtc is not None else "websocket"

    @property
    def closed(self) -> bool:
        if self.rtc is not None:
            return self.rtc.closed
        return self.ws is None or self.ws.closed

    async def send_text(self, text: str) -> None:
        if self.rtc is not None:
            self.rtc.send(text)
        elif self.ws is not None:
            await self.ws.send_str(text)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.response_task, self.playout_task, self.reader) if t is not None]

    def voiced_seconds(self, threshold: float = 300.0) -> float:
        """Seconds of the caller's audio louder than ``threshold`` RMS, in 20 ms blocks."""
        import numpy as np

        samples = np.frombuffer(bytes(self.audio), np.int16).astype(np.float32)
        block = AUDIO_RATE // 50
        blocks = samples[: len(samples) // block * block].reshape(-1, block)
        rms = np.sqrt((blocks**2).mean(axis=1)) if len(blocks) else np.zeros(0)
        return float((rms > threshold).sum()) / 50


class OpenAIRealtimeServer:
    """Scriptable local stand-in for ``/v1/realtime`` (WebSocket) and client secrets."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None
    ) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.connections: list[Connection] = []
        self.errors: list[JsonDict] = []
        self._stalled: set[asyncio.Task[Any]] = set()
        self.client_secrets: list[JsonDict] = []
        self.responder: Responder = lambda _e: ScriptedReply(transcript="ok")
        self._script: deque[ScriptedReply] = deque()
        self._runner: web.AppRunner | None = None
        self._event_seq = 0
        self._connected = asyncio.Condition()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> OpenAIRealtimeServer:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/v1/realtime", self._websocket)
        app.router.add_post("/v1/realtime/client_secrets", self._client_secret)
        app.router.add_post("/v1/realtime/calls", self._call)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets, "the server did not open a socket"
        self.port = int(sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        for task in list(self._stalled):
            task.cancel()
        await asyncio.gather(*self._stalled, return_exceptions=True)
        tasks = [t for c in self.connections for t in c.tasks()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(
            *(c.rtc.close() for c in self.connections if c.rtc), return_exceptions=True
        )
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAIRealtimeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """For ``openai.AsyncOpenAI(base_url=...)``."""
        return f"http://{self.host}:{self.port}/v1"

    # -- what was received ------------------------------------------------------------

    @property
    def received(self) -> list[JsonDict]:
        """Every valid client event, all connections in order."""
        return [e for c in self.connections for e in c.received]

    def received_of(self, kind: str) -> list[JsonDict]:
        return [e for e in self.received if e.get("type") == kind]

    @property
    def audio_seconds(self) -> float:
        return sum(c.audio_bytes for c in self.connections) / 2 / AUDIO_RATE

    def voiced_seconds(self, threshold: float = 300.0) -> float:
        """Seconds of non-silent caller audio over all connections (see ``Connection``)."""
        return sum(c.voiced_seconds(threshold) for c in self.connections)

    @property
    def current(self) -> Connection | None:
        live = [c for c in self.connections if not c.closed]
        return live[-1] if live else None

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            await asyncio.sleep(0.01)

    # -- scripting --------------------------------------------------------------------

    def script(self, *replies: ScriptedReply) -> None:
        """Answer the next ``response.create``s with these, in order."""
        self._script.extend(replies)

    async def send(self, event: JsonDict, conn: Connection | None = None) -> None:
        conn = conn or self.current
        if conn is None:
            raise RuntimeError("no client is connected")
        self._event_seq += 1
        await conn.send_text(json.dumps({"event_id": f"event_{self._event_seq}", **event}))

    async def speech_started(self, audio_start_ms: int = 0) -> None:
        """The user starts talking (barge-in). As the service's server VAD does when
        ``turn_detection.interrupt_response`` is on (the default), the active response is
        cancelled by the server itself, and over WebRTC the audio still queued for the caller
        is cleared (``output_audio_buffer.cleared``)."""
        conn = self.current
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": _id("item"),
            }
        )
        if conn is None:
            return
        vad = ((conn.session.get("audio") or {}).get("input") or {}).get("turn_detection")
        if not vad or vad.get("interrupt_response") is False:
            return
        task = conn.response_task
        if task is not None and not task.done():
            task.cancel()
        if conn.rtc is not None:
            conn.rtc.audio_out.clear()
            if conn.playout_task is not None and not conn.playout_task.done():
                conn.playout_task.cancel()
                await self.send(
                    {"type": "output_audio_buffer.cleared", "response_id": conn.response_id}, conn
                )

    async def user_transcript(self, text: str) -> None:
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": _id("item"),
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": 1},
            }
        )

    async def respond(self, reply: ScriptedReply | None = None) -> None:
        """Start a response on our own (as server VAD does after the user stops)."""
        conn = self.current
        if conn is None:
            raise RuntimeError("no client is connected")
        if reply is not None:
            self._script.appendleft(reply)
        self._start_response(conn, {"type": "response.create"})

    async def drop(self) -> None:
        """Cut every connection abruptly (no close handshake), like a network failure."""
        for conn in self.connections:
            if conn.closed:
                continue
            if conn.rtc is not None:  # the peer goes away; the caller sees the channel close
                await conn.rtc.close()
            elif conn.ws is not None:
                transport = conn.ws._req.transport if conn.ws._req else None
                if transport is not None:
                    transport.abort()

    async def close_connection(self, code: int = 1000, message: str = "") -> None:
        """Close the current WebSocket with a close frame (1000 clean, 1011 server error)."""
        conn = self.current
        if conn is not None and conn.ws is not None:
            await conn.ws.close(code=code, message=message.encode())

    async def stall_close(self, code: int = 1000) -> None:
        """Send a close frame, then stop reading: the client's close handshake never finishes
        and the TCP connection stays open (a peer that hangs while closing)."""
        conn = self.current
        if conn is None or conn.ws is None or conn.ws._req is None:
            return
        transport = conn.ws._req.transport
        if transport is not None:
            transport.pause_reading()
        task = asyncio.get_running_loop().create_task(conn.ws.close(code=code))
        self._stalled.add(task)
        task.add_done_callback(self._stalled.discard)

    async def expire_session(self) -> None:
        """The session hit its time limit: an ``error`` with ``session_expired``; the socket
        stays open and the session is no longer usable (as the service does at 60 minutes)."""
        conn = self.current
        if conn is None:
            return
        conn.expired = True
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "session_expired",
                    "message": "Your session hit the maximum duration of 60 minutes.",
                },
            },
            conn,
        )

    @property
    def audio_bytes(self) -> int:
        """User audio received over every connection so far (24 kHz mono s16 bytes)."""
        return sum(c.audio_bytes for c in self.connections)

    async def wait_connections(self, count: int, within: float = 10.0) -> None:
        await self.wait_for(
            lambda: len(self.connections) >= count and self.current is not None, within
        )

    # -- handlers ---------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:]:
            return None
        key = auth[7:]
        ok = (
            self.api_key is None
            or key == self.api_key
            or any(s["value"] == key for s in self.client_secrets)
        )
        return auth if ok else None

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import WSMsgType, web

        auth = self._authorized(request)
        if auth is None:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": "Incorrect API key provided.",
                    }
                },
                status=401,
            )
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws=ws, model=request.query.get("model", ""), authorization=auth)
        conn.session = {"type": "realtime", "id": _id("sess"), "model": conn.model}
        self.connections.append(conn)
        await self.send({"type": "session.created", "session": conn.session}, conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._handle(conn, msg.data)
        except ConnectionError:
            pass  # the client went away (or ``drop`` cut it)
        finally:
            if conn.response_task is not None:
                conn.response_task.cancel()
        return ws

    async def _error(self, conn: Connection, exc: ValidationFailed, event_id: str | None) -> None:
        error = {
            "type": "invalid_request_error",
            "code": exc.code,
            "message": str(exc),
            "param": exc.param,
            "event_id": event_id,
        }
        self.errors.append(error)
        await self.send({"type": "error", "error": error}, conn)

    async def _handle(self, conn: Connection, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            await self._error(conn, ValidationFailed("Invalid JSON", "invalid_json"), None)
            return
        event_id = data.get("event_id") if isinstance(data, dict) else None
        try:
            validate_client_event(data)
        except ValidationFailed as exc:
            await self._error(conn, exc, event_id)
            return
        conn.received.append(data)
        kind = data["type"]
        if conn.expired:
            await self._error(
                conn,
                ValidationFailed(
                    "Your session hit the maximum duration of 60 minutes.", "session_expired"
                ),
                event_id,
            )
            return
        if kind == "session.update":
            conn.session = {**conn.session, **data["session"]}
            await self.send({"type": "session.updated", "session": conn.session}, conn)
        elif kind == "input_audio_buffer.append":
            pcm = base64.b64decode(data["audio"])
            conn.audio_bytes += len(pcm)
            conn.audio += pcm
        elif kind == "input_audio_buffer.commit":
            await self.send(
                {
                    "type": "input_audio_buffer.committed",
                    "item_id": _id("item"),
                    "previous_item_id": None,
                },
                conn,
            )
        elif kind == "input_audio_buffer.clear":
            await self.send({"type": "input_audio_buffer.cleared"}, conn)
        elif kind == "conversation.item.create":
            item = {"id": _id("item"), "status": "completed", **data["item"]}
            conn.items.append(item)
            await self.send(
                {"type": "conversation.item.added", "item": item, "previous_item_id": None}, conn
            )
        elif kind == "conversation.item.truncate":
            await self.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": data["item_id"],
                    "content_index": data["content_index"],
                    "audio_end_ms": data["audio_end_ms"],
                },
                conn,
            )
        elif kind == "output_audio_buffer.clear":
            if conn.rtc is None:
                await self._error(
                    conn,
                    ValidationFailed(
                        "output_audio_buffer.clear is only supported for WebRTC sessions.",
                        "invalid_value",
                        "type",
                    ),
                    event_id,
                )
                return
            conn.rtc.audio_out.clear()
            if conn.playout_task is not None and not conn.playout_task.done():
                conn.playout_task.cancel()
                await self.send({"type": "output_audio_buffer.cleared", "response_id": None}, conn)
        elif kind == "response.cancel":
            task = conn.response_task
            if task is not None and not task.done():
                task.cancel()
            else:  # the service answers a cancel with nothing active with an error
                await self._error(
                    conn,
                    ValidationFailed(
                        "Cancellation failed: no active response found",
                        "response_cancel_not_active",
                    ),
                    event_id,
                )
        elif kind == "response.create":
            if conn.response_task is not None and not conn.response_task.done():
                await self._error(
                    conn,
                    ValidationFailed(
                        "Conversation already has an active response in progress.",
                        "conversation_already_has_active_response",
                    ),
                    event_id,
                )
                return
            self._start_response(conn, data)

    def _start_response(self, conn: Connection, request: JsonDict) -> None:
        reply = self._script.popleft() if self._script else self.responder(request)
        conn.response_task = asyncio.get_running_loop().create_task(
            self._run_response(conn, request, reply)
        )

    async def _run_response(
        self, conn: Connection, request: JsonDict, reply: ScriptedReply
    ) -> None:
        rid = _id("resp")
        conn.response_id = rid
        metadata = (request.get("response") or {}).get("metadata")
        base = {"object": "realtime.response", "id": rid, "metadata": metadata}
        await self.send(
            {"type": "response.created", "response": {**base, "status": "in_progress"}}, conn
        )
        status = "completed"
        try:
            index = 0
            text_only = conn.session.get("output_modalities") == ["text"]
            if reply.transcript or reply.audio or reply.text:
                item_id = _id("item")
                common = {"response_id": rid, "item_id": item_id, "output_index": index}
                await self.send(
                    {
                        "type": "response.output_item.added",
                        "response_id": rid,
                        "output_index": index,
                        "item": {
                            "id": item_id,
                            "type": "message",
                            "role": "assistant",
                            "content": [],
                        },
                    },
                    conn,
                )
                if text_only or reply.text:
                    text = reply.text or reply.transcript
                    await self.send(
                        {
                            "type": "response.output_text.delta",
                            **common,
                            "content_index": 0,
                            "delta": text,
                        },
                        conn,
                    )
                    await self.send(
                        {
                            "type": "response.output_text.done",
                            **common,
                            "content_index": 0,
                            "text": text,
                        },
                        conn,
                    )
                else:
                    if conn.rtc is not None:  # WebRTC: the audio plays on the media track
                        await self._play_on_track(conn, rid, reply)
                    else:
                        step = AUDIO_RATE * 2 * reply.chunk_ms // 1000
                        for start in range(0, len(reply.audio), step):
                            chunk = reply.audio[start : start + step]
                            await self.send(
                                {
                                    "type": "response.output_audio.delta",
                                    **common,
                                    "content_index": 0,
                                    "delta": base64.b64encode(chunk).decode(),
                                },
                                conn,
                            )
                            if reply.pace:
                                await asyncio.sleep(reply.pace)
                    await self.send(
                        {"type": "response.output_audio.done", **common, "content_index": 0}, conn
                    )
                    await self.send(
                        {
                            "type": "response.output_audio_transcript.done",
                            **common,
                            "content_index": 0,
                            "transcript": reply.transcript,
                        },
                        conn,
                    )
                index += 1
            for name, args in reply.tool_calls:
                item_id, call_id = _id("item"), _id("call")
                arguments = json.dumps(args)
                await self.send(
                    {
                        "type": "response.output_item.added",
                        "response_id": rid,
                        "output_index": index,
                        "item": {
                            "id": item_id,
                            "type": "function_call",
                            "call_id": call_id,
                            "name": name,
                            "arguments": "",
                        },
                    },
                    conn,
                )
                common = {
                    "response_id": rid,
                    "item_id": item_id,
                    "output_index": index,
                    "call_id": call_id,
                }
                half = len(arguments) // 2
                for piece in (arguments[:half], arguments[half:]):
                    await self.send(
                        {
                            "type": "response.function_call_arguments.delta",
                            **common,
                            "delta": piece,
                        },
                        conn,
                    )
                await self.send(
                    {
                        "type": "response.function_call_arguments.done",
                        **common,
                        "name": name,
                        "arguments": arguments,
                    },
                    conn,
                )
                index += 1
        except asyncio.CancelledError:
            status = "cancelled"
        finally:
            conn.response_id = None
            if not conn.closed:
                with contextlib.suppress(Exception):
                    await self.send(
                        {
                            "type": "response.done",
                            "response": {**base, "status": status, "output": []},
                        },
                        conn,
                    )

    async def _play_on_track(self, conn: Connection, rid: str, reply: ScriptedReply) -> None:
        """Reply audio on the outgoing track; ``output_audio_buffer.stopped`` once it played."""
        from vision_agents.core.audio import PcmData

        assert conn.rtc is not None
        track = conn.rtc.audio_out
        if conn.playout_task is not None and not conn.playout_task.done():
            conn.playout_task.cancel()
        await self.send({"type": "output_audio_buffer.started", "response_id": rid}, conn)
        step = AUDIO_RATE * 2 * reply.chunk_ms // 1000
        for start in range(0, len(reply.audio), step):
            track.write(PcmData.from_bytes(reply.audio[start : start + step], AUDIO_RATE, 1, "s16"))
            if reply.pace:
                await asyncio.sleep(reply.pace)
        track.end_of_response()

        async def stopped() -> None:
            await track.wait_idle()
            if not conn.closed:
                await self.send({"type": "output_audio_buffer.stopped", "response_id": rid}, conn)

        conn.playout_task = asyncio.get_running_loop().create_task(stopped())

    async def _call(self, request: web.Request) -> web.Response:
        """``POST /v1/realtime/calls``: answer a WebRTC offer with a local aiortc peer."""
        from aiohttp import BodyPartReader, web

        from vision_agents.testing.openai_webrtc import ServerPeer, allow_loopback_ice

        auth = self._authorized(request)
        if auth is None:
            return web.json_response(
                {"error": {"message": "Incorrect API key provided."}}, status=401
            )
        session: JsonDict = {"type": "realtime"}
        if request.content_type == "multipart/form-data":
            offer = ""
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "sdp":
                    offer = await part.text()
                elif part.name == "session":
                    session = json.loads(await part.text())
        elif request.content_type == "application/sdp":
            offer = await request.text()
        else:
            return web.json_response(
                {"error": {"message": "Send application/sdp or multipart sdp + session."}},
                status=400,
            )
        try:
            validate_client_event({"type": "session.update", "session": session})
        except ValidationFailed as exc:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": str(exc)}}, status=400
            )
        if "v=0" not in offer:
            return web.json_response({"error": {"message": "Invalid SDP offer."}}, status=400)
        allow_loopback_ice()
        inbox: asyncio.Queue[str] = asyncio.Queue()
        conn = Connection(model=str(session.get("model", "")), authorization=auth, inbox=inbox)
        conn.session = {**session, "id": _id("sess")}

        def on_audio(pcm: bytes) -> None:
            conn.audio += pcm
            conn.audio_bytes += len(pcm)

        conn.rtc = ServerPeer(inbox.put_nowait, on_audio)
        answer = await conn.rtc.answer(offer)
        self.connections.append(conn)
        conn.reader = asyncio.get_running_loop().create_task(self._serve_channel(conn))
        call_id = _id("rtc")
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={"Location": f"/v1/realtime/calls/{call_id}"},
        )

    async def _serve_channel(self, conn: Connection) -> None:
        """Say ``session.created`` once the channel opens, then handle events in order."""
        assert conn.rtc is not None and conn.inbox is not None
        await conn.rtc.opened.wait()
        await self.send({"type": "session.created", "session": conn.session}, conn)
        while not conn.closed:
            raw = await conn.inbox.get()
            try:
                await self._handle(conn, raw)
            except ConnectionError:
                return

    async def _client_secret(self, request: web.Request) -> web.Response:
        from aiohttp import web

        if self._authorized(request) is None:
            return web.json_response(
                {"error": {"message": "Incorrect API key provided."}}, status=401
            )
        body = await request.json()
        session = body.get("session") or {"type": "realtime"}
        try:
            validate_client_event({"type": "session.update", "session": session})
        except ValidationFailed as exc:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": str(exc),
                        "param": exc.param,
                    }
                },
                status=400,
            )
        seconds = int((body.get("expires_after") or {}).get("seconds", 600))
        secret = {
            "value": "ek_" + uuid.uuid4().hex,
            "expires_at": int(time.time()) + seconds,
            "session": {**session, "id": _id("sess"), "object": "realtime.session"},
        }
        self.client_secrets.append(secret)
        return web.json_response(secret)


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"
