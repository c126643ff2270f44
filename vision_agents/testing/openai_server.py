"""A local OpenAI Realtime (GA) server: test agents against the real ``openai`` SDK, no key.

Every client event is validated strictly against the SDK's own pydantic types (the member of
the union named by ``type``, and no unknown field anywhere in the tree); a bad event gets the
API's ``error`` event and is not acted on. Replies are scripted; everything received is
recorded. ``POST /v1/realtime/calls`` answers a WebRTC offer (raw ``application/sdp`` or
multipart ``sdp`` + ``session``) with an aiortc peer (``openai_webrtc.py``): the same events
over the ``oai-events`` data channel, reply audio on its outgoing track, the caller's audio
track recorded; ``/v1/realtime?call_id=`` attaches a sideband WebSocket to such a call.
``POST /v1/realtime/client_secrets`` mints ephemeral keys.

Responses follow the service's event sequences (output items, content parts, transcripts,
``response.done`` with the output and token usage), and the service's rules are modelled,
each citing its documentation where it is enforced: the session cap (``session_limit_s``),
one response at a time, cancel with nothing active, server VAD interrupting, tool outputs only
for known calls, truncation of assistant audio only and not past its end, the voice locked
once audio was produced.

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

from vision_agents.core.llm.image_tokens import OPENAI_LOW_DETAIL_TOKENS, openai_image_tokens

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
    failure: JsonDict | None = None
    """The response fails instead (``response.done`` status ``failed``, this as
    ``status_details.error``), e.g. ``{"type": "requests", "code": "rate_limit_exceeded",
    "message": ...}`` as the service reports a rate limit or exhausted quota."""


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


@functools.cache
def _server_event_types() -> dict[str, type[pydantic.BaseModel]]:
    from openai.types.realtime import RealtimeServerEvent

    union = typing.get_args(RealtimeServerEvent)[0]
    out: dict[str, type[pydantic.BaseModel]] = {}
    for member in typing.get_args(union):
        for value in typing.get_args(member.model_fields["type"].annotation):
            out[value] = member
    return out


# Fields the service sends that the SDK's types do not declare (yet): the session resource's
# own id, object and expiry appear in session.created / session.updated.
_UNDECLARED_OK = frozenset({"session.id", "session.object", "session.expires_at"})


def validate_server_event(event: JsonDict) -> str | None:
    """What is wrong with one server event by the ``openai`` SDK's types (``None``: valid)."""
    model = _server_event_types().get(str(event.get("type")))
    if model is None:
        return "unknown event type"
    try:
        parsed = model.model_validate(event)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    extras = [e for e in _extras(parsed) if e not in _UNDECLARED_OK]
    return f"undeclared field {extras[0]}" if extras else None


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
class Tokens:
    """Token counts by modality (the server's own accounting; see ``tokens_for_*``)."""

    text: int = 0
    audio: int = 0
    image: int = 0

    @property
    def total(self) -> int:
        return self.text + self.audio + self.image

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.text + other.text, self.audio + other.audio, self.image + other.image)

    def capped(self, other: Tokens) -> Tokens:
        """Per modality, the smaller of the two (the cached share of an input)."""
        return Tokens(
            min(self.text, other.text), min(self.audio, other.audio), min(self.image, other.image)
        )


# Token accounting. OpenAI's Realtime cost guide ("Managing costs") counts user audio at one
# token per 100 ms and assistant audio at one token per 50 ms; text is about four characters a
# token; an image by OpenAI's vision rule at the size of the image received (decoded here) and
# its ``detail``. Every response's input is the whole conversation so far (later turns re-read
# earlier ones), and the part already read by the previous response is reported as cached
# (prompt caching of the unchanged prefix).
USER_AUDIO_MS_PER_TOKEN = 100
ASSISTANT_AUDIO_MS_PER_TOKEN = 50
CHARS_PER_TOKEN = 4
BYTES_PER_MS = AUDIO_RATE * 2 // 1000


def text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def audio_tokens(audio_bytes: int, *, assistant: bool) -> int:
    ms = audio_bytes // BYTES_PER_MS
    per = ASSISTANT_AUDIO_MS_PER_TOKEN if assistant else USER_AUDIO_MS_PER_TOKEN
    return -(-ms // per)


def image_tokens(part: JsonDict) -> int:
    """One ``input_image`` part by OpenAI's vision rule: the image it carries is decoded for its
    size (a ``data:`` URL; one that is not an image is refused as the service refuses it), and
    a missing ``detail`` counts as "auto". A remote URL (not fetched here) counts as "low"."""
    detail = part.get("detail")
    url = str(part.get("image_url") or "")
    if detail == "low" or not url.startswith("data:"):
        return OPENAI_LOW_DETAIL_TOKENS
    size = _decoded_size(url)
    if size is None:
        raise ValidationFailed(
            "Invalid image data: the image_url is not a decodable image.",
            "invalid_value",
            "item.content.image_url",
        )
    return openai_image_tokens(size[0], size[1], detail)


def _decoded_size(url: str) -> tuple[int, int] | None:
    import cv2
    import numpy as np

    _, _, payload = url.partition(",")
    try:
        raw = base64.b64decode(payload, validate=True)
    except ValueError:
        return None
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None
    return int(image.shape[1]), int(image.shape[0])


def item_tokens(item: JsonDict, audio_bytes: int = 0, images: int = 0) -> Tokens:
    """What one conversation item costs as input to a later response (``images``: the tokens
    of its ``input_image`` parts, counted once when the item was added)."""
    kind = item.get("type")
    if kind == "function_call":
        return Tokens(text=text_tokens(str(item.get("name", "")) + str(item.get("arguments", ""))))
    if kind == "function_call_output":
        return Tokens(text=text_tokens(str(item.get("output", ""))))
    out = Tokens()
    for part in item.get("content") or []:
        ptype = part.get("type")
        if ptype in ("input_text", "output_text", "text"):
            out.text += text_tokens(str(part.get("text") or ""))
        elif ptype in ("output_audio", "audio"):
            out.text += text_tokens(str(part.get("transcript") or ""))
    if audio_bytes:
        out.audio += audio_tokens(audio_bytes, assistant=item.get("role") == "assistant")
    out.image += images
    return out


@dataclass
class Usage:
    """Cumulative token usage, summed over the ``response.done`` events a session sent."""

    input: Tokens = field(default_factory=Tokens)
    cached: Tokens = field(default_factory=Tokens)
    output: Tokens = field(default_factory=Tokens)
    responses: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input.total

    @property
    def cached_tokens(self) -> int:
        return self.cached.total

    @property
    def output_tokens(self) -> int:
        return self.output.total

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input += other.input
        self.cached += other.cached
        self.output += other.output
        self.responses += other.responses

    def as_wire(self) -> JsonDict:
        """As ``response.done.response.usage`` (``RealtimeResponseUsage``)."""
        return {
            "total_tokens": self.total_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_token_details": {
                "text_tokens": self.input.text,
                "audio_tokens": self.input.audio,
                "image_tokens": self.input.image,
                "cached_tokens": self.cached_tokens,
                "cached_tokens_details": {
                    "text_tokens": self.cached.text,
                    "audio_tokens": self.cached.audio,
                    "image_tokens": self.cached.image,
                },
            },
            "output_token_details": {
                "text_tokens": self.output.text,
                "audio_tokens": self.output.audio,
            },
        }


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
    """The conversation, in order (the server's representation of each item)."""
    item_audio: dict[str, int] = field(default_factory=dict)
    """Audio bytes behind each audio item (assistant replies, committed user audio)."""
    item_images: dict[str, int] = field(default_factory=dict)
    """Image tokens of each item with ``input_image`` parts (``image_tokens``)."""
    call_ids: set[str] = field(default_factory=set)
    """``call_id`` of every ``function_call`` item in the conversation."""
    buffer: bytearray = field(default_factory=bytearray)
    """Input audio appended since the last commit (the uncommitted input buffer)."""
    buffer_start: int = 0
    """Byte position of the buffer's first byte in the audio this session was given."""
    committed: list[bytes] = field(default_factory=list)
    """User audio this session committed into its conversation while it was the newest
    session (a client carries its conversation to the next one)."""
    stalled: bool = False
    """The model stopped taking input: appends arrive (pings are answered) but never reach
    the buffer."""
    produced_audio: bool = False
    usage: Usage = field(default_factory=Usage)
    """Token totals of this session, summed from its ``response.done`` events."""
    read_context: Tokens = field(default_factory=Tokens)
    """The conversation as the previous response left it (the cacheable prefix)."""
    response_task: asyncio.Task[None] | None = None
    response_id: str | None = None
    cancel_reason: str | None = None
    playout_task: asyncio.Task[None] | None = None
    inbox: asyncio.Queue[str] | None = None
    reader: asyncio.Task[None] | None = None
    expiry_task: asyncio.Task[None] | None = None
    expired: bool = False
    call_id: str | None = None
    """WebRTC: the call's id; ``/v1/realtime?call_id=`` attaches a sideband WebSocket."""
    sidebands: list[web.WebSocketResponse] = field(default_factory=list)

    @property
    def buffered_audio(self) -> int:
        """Input audio bytes appended since the last commit."""
        return len(self.buffer)

    @property
    def transport(self) -> str:
        return "webrtc" if self.rtc is not None else "websocket"

    @property
    def closed(self) -> bool:
        if self.rtc is not None:
            return self.rtc.closed
        return self.ws is None or self.ws.closed

    @property
    def response_active(self) -> bool:
        return self.response_task is not None and not self.response_task.done()

    async def send_text(self, text: str) -> None:
        if self.rtc is not None:
            self.rtc.send(text)
        elif self.ws is not None:
            await self.ws.send_str(text)
        for ws in list(self.sidebands):
            if not ws.closed:
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(text)

    def tasks(self) -> list[asyncio.Task[None]]:
        return [
            t
            for t in (self.response_task, self.playout_task, self.reader, self.expiry_task)
            if t is not None
        ]

    def find_item(self, item_id: str) -> JsonDict | None:
        return next((i for i in self.items if i.get("id") == item_id), None)

    def context(self) -> Tokens:
        """What the whole conversation costs as input to the next response."""
        total = Tokens()
        for item in self.items:
            item_id = str(item.get("id"))
            total += item_tokens(
                item, self.item_audio.get(item_id, 0), self.item_images.get(item_id, 0)
            )
        return total

    @property
    def turn_detection(self) -> JsonDict | None:
        """The session's turn detection; a session that never set it has the service's
        default, server VAD (API reference, session ``audio.input.turn_detection``)."""
        audio_in = (self.session.get("audio") or {}).get("input") or {}
        if "turn_detection" not in audio_in:
            return {"type": "server_vad", "create_response": True, "interrupt_response": True}
        vad = audio_in["turn_detection"]
        return vad if isinstance(vad, dict) else None

    @property
    def voice(self) -> str:
        output = (self.session.get("audio") or {}).get("output") or {}
        return str(output.get("voice") or DEFAULT_VOICE)

    def voiced_seconds(self, threshold: float = 300.0) -> float:
        """Seconds of the caller's audio louder than ``threshold`` RMS, in 20 ms blocks."""
        import numpy as np

        samples = np.frombuffer(bytes(self.audio), np.int16).astype(np.float32)
        block = AUDIO_RATE // 50
        blocks = samples[: len(samples) // block * block].reshape(-1, block)
        rms = np.sqrt((blocks**2).mean(axis=1)) if len(blocks) else np.zeros(0)
        return float((rms > threshold).sum()) / 50


DEFAULT_VOICE = "alloy"
SESSION_LIMIT_S = 3600.0


def _merge(base: JsonDict, update: JsonDict) -> JsonDict:
    """``session.update`` semantics: the fields given replace those of the session; nested
    objects are merged, so updating ``audio.input`` keeps ``audio.output``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class OpenAIRealtimeServer:
    """Scriptable local stand-in for ``/v1/realtime`` (WebSocket) and client secrets.

    ``session_limit_s`` scales the service's 60-minute session cap for tests; every event the
    server sends is checked against the ``openai`` SDK's server event types, and any mismatch
    is kept in ``invalid_events`` (tests assert it stays empty).
    """

    check_events = True

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        session_limit_s: float = SESSION_LIMIT_S,
    ) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.session_limit_s = session_limit_s
        self.connections: list[Connection] = []
        self.errors: list[JsonDict] = []
        self.invalid_events: list[str] = []
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
    def usage(self) -> Usage:
        """Token usage over every session, as reported in their ``response.done`` events."""
        total = Usage()
        for conn in self.connections:
            total.add(conn.usage)
        return total

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
        event = {"event_id": f"event_{self._event_seq}", **event}
        if self.check_events:
            problem = self._event_problem(event)
            if problem:
                self.invalid_events.append(f"{event.get('type')}: {problem}")
        await conn.send_text(json.dumps(event))

    def _event_problem(self, event: JsonDict) -> str | None:
        """What the ``openai`` SDK's server event types find wrong with ``event``, or None."""
        return validate_server_event(event)

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
        vad = conn.turn_detection
        if not vad or vad.get("interrupt_response") is False:
            return
        rid = conn.response_id
        # Realtime conversations guide, "Voice activity detection": with interrupt_response
        # (default true) the server cancels the in-progress response on speech start.
        await self._cancel_response(conn, "turn_detected")
        if conn.rtc is not None:
            conn.rtc.audio_out.clear()
            if conn.playout_task is not None and not conn.playout_task.done():
                conn.playout_task.cancel()
                await self.send(
                    {"type": "output_audio_buffer.cleared", "response_id": rid or ""}, conn
                )

    async def user_turn(
        self, transcript: str = "", *, audio_end_ms: int | None = None, respond: bool | None = None
    ) -> None:
        """The user stops talking, as server VAD reports it: ``speech_stopped`` at
        ``audio_end_ms`` into the session's audio (None: all of it so far), the buffer up to
        there committed as a user item, its transcription, then (``create_response``, on by
        default with turn detection) a response. ``respond`` overrides the session."""
        conn = self.current
        if conn is None:
            raise RuntimeError("no client is connected")
        if audio_end_ms is None:
            audio_end_ms = (conn.buffer_start + len(conn.buffer)) // BYTES_PER_MS
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": _id("item"),
            },
            conn,
        )
        item = await self._commit(conn, audio_end_ms * BYTES_PER_MS)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item["id"],
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": 1},
            },
            conn,
        )
        item["content"][0]["transcript"] = transcript
        if respond is None:
            vad = conn.turn_detection
            respond = vad is not None and vad.get("create_response") is not False
        if respond and not conn.response_active:
            self._start_response(conn, {"type": "response.create"})

    async def transcription_failed(
        self, message: str = "Input transcription failed.", code: str = "transcription_failed"
    ) -> None:
        """The user's speech could not be transcribed, as the service reports it
        (``conversation.item.input_audio_transcription.failed``, separate from ``error``)."""
        conn = self.current
        item_id = (
            next((str(i["id"]) for i in reversed(conn.items) if i.get("role") == "user"), None)
            if conn is not None
            else None
        )
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item_id or _id("item"),
                "content_index": 0,
                "error": {"type": "transcription_error", "code": code, "message": message},
            }
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

    async def expire_session(self, conn: Connection | None = None) -> None:
        """The session hit its time limit now (see ``session_limit_s``)."""
        conn = conn or self.current
        if conn is not None:
            await self._expire(conn)

    def _expiry_message(self) -> str:
        minutes = self.session_limit_s / 60
        return f"Your session hit the maximum duration of {minutes:g} minutes."

    async def _expire(self, conn: Connection) -> None:
        """Realtime API developer notes: a session lasts at most 60 minutes. The service then
        sends an ``error`` with ``session_expired``; the socket stays open and every later
        client event is answered with the same error (the session is no longer usable)."""
        if conn.expired:
            return
        conn.expired = True
        await self._cancel_response(conn, "client_cancelled")
        await self._error(conn, ValidationFailed(self._expiry_message(), "session_expired"), None)

    def _arm_expiry(self, conn: Connection) -> None:
        async def expire_later() -> None:
            await asyncio.sleep(self.session_limit_s)
            if not conn.closed:
                with contextlib.suppress(ConnectionError):
                    await self._expire(conn)

        conn.expiry_task = asyncio.get_running_loop().create_task(expire_later())

    def heard_audio(self) -> list[bytes]:
        """The user audio in the model's final state, in order: what each session committed
        while it was the newest (the client carries its conversation over), then the newest
        session's uncommitted buffer. A sample that appears twice was heard twice."""
        heard = [chunk for c in self.connections for chunk in c.committed]
        if self.connections and not self.connections[-1].expired:
            heard.append(bytes(self.connections[-1].buffer))
        return heard

    async def stall_model(self, seconds: float, code: int = 1011) -> None:
        """The model stalls for ``seconds`` while the front end stays up (pings answered,
        appends accepted but never buffered), then the socket closes with ``code``."""
        conn = self.current
        if conn is None:
            return
        conn.stalled = True

        async def close_later() -> None:
            await asyncio.sleep(seconds)
            if conn.ws is not None:
                with contextlib.suppress(ConnectionError):
                    await conn.ws.close(code=code, message=b"server error")

        task = asyncio.get_running_loop().create_task(close_later())
        self._stalled.add(task)
        task.add_done_callback(self._stalled.discard)

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
        call_id = request.query.get("call_id")
        if call_id is not None:
            return await self._sideband(request, call_id)
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws=ws, model=request.query.get("model", ""), authorization=auth)
        conn.session = {"type": "realtime", "id": _id("sess"), "model": conn.model}
        self.connections.append(conn)
        self._arm_expiry(conn)
        await self.send({"type": "session.created", "session": conn.session}, conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._handle(conn, msg.data)
        except ConnectionError:
            pass  # the client went away (or ``drop`` cut it)
        finally:
            for task in (conn.response_task, conn.expiry_task):
                if task is not None:
                    task.cancel()
        return ws

    async def _sideband(self, request: web.Request, call_id: str) -> web.StreamResponse:
        """``/v1/realtime?call_id=``: a server-side WebSocket on a WebRTC call's session
        (Realtime guide, "Webhooks and server-side controls"): it sees the session's events
        and may send client events, which act on the call. Unknown calls get a 404."""
        from aiohttp import WSMsgType, web

        conn = next((c for c in self.connections if c.call_id == call_id and not c.closed), None)
        if conn is None:
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "Call not found."}},
                status=404,
            )
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn.sidebands.append(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(conn, msg.data)
        except ConnectionError:
            pass
        finally:
            conn.sidebands.remove(ws)
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
        if conn.expired:  # see ``_expire``
            await self._error(
                conn, ValidationFailed(self._expiry_message(), "session_expired"), event_id
            )
            return
        handler = _HANDLERS.get(data["type"])
        if handler is None:
            return
        try:
            await handler(self, conn, data)
        except ValidationFailed as exc:
            await self._error(conn, exc, event_id)

    async def _on_session_update(self, conn: Connection, data: JsonDict) -> None:
        session = _merge(conn.session, data["session"])
        new_voice = ((session.get("audio") or {}).get("output") or {}).get("voice")
        if conn.produced_audio and new_voice is not None and new_voice != conn.voice:
            # Realtime conversations guide, "Session lifecycle events": the voice cannot be
            # changed once the model has responded with audio in the session. The service
            # refuses the whole update with ``cannot_update_voice``.
            raise ValidationFailed(
                "Cannot update a conversation's voice if assistant audio is present.",
                "cannot_update_voice",
                "session.audio.output.voice",
            )
        conn.session = session
        await self.send({"type": "session.updated", "session": conn.session}, conn)

    async def _on_append(self, conn: Connection, data: JsonDict) -> None:
        pcm = base64.b64decode(data["audio"])
        conn.audio_bytes += len(pcm)
        conn.audio += pcm
        if not conn.stalled:
            conn.buffer += pcm

    async def _on_commit(self, conn: Connection, data: JsonDict) -> None:
        await self._commit(conn)

    def _take_buffer(self, conn: Connection, upto: int | None = None) -> int:
        """The buffer up to session byte ``upto`` (None: all of it) goes into the
        conversation; returns its size. The rest stays buffered."""
        count = (
            len(conn.buffer)
            if upto is None
            else max(0, min(len(conn.buffer), upto - conn.buffer_start))
        )
        taken = bytes(conn.buffer[:count])
        del conn.buffer[:count]
        conn.buffer_start += count
        if taken and self.connections and self.connections[-1] is conn:
            conn.committed.append(taken)
        return count

    async def _commit(self, conn: Connection, upto: int | None = None) -> JsonDict:
        """The input buffer becomes a user audio item: ``committed``, then the item."""
        item: JsonDict = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        previous = conn.items[-1]["id"] if conn.items else None
        conn.item_audio[item["id"]] = self._take_buffer(conn, upto)
        await self.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item["id"],
                "previous_item_id": previous,
            },
            conn,
        )
        await self._add_item(conn, item)
        return item

    async def _add_item(self, conn: Connection, item: JsonDict) -> None:
        previous = conn.items[-1]["id"] if conn.items else None
        conn.items.append(item)
        if item.get("type") == "function_call" and item.get("call_id"):
            conn.call_ids.add(str(item["call_id"]))
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "item": item, "previous_item_id": previous}, conn)

    async def _on_clear(self, conn: Connection, data: JsonDict) -> None:
        conn.buffer_start += len(conn.buffer)
        conn.buffer.clear()
        await self.send({"type": "input_audio_buffer.cleared"}, conn)

    async def _on_item_create(self, conn: Connection, data: JsonDict) -> None:
        item = {"id": _id("item"), "object": "realtime.item", "status": "completed", **data["item"]}
        if item.get("type") == "function_call_output" and item.get("call_id") not in conn.call_ids:
            # API reference, conversation.item.create: "If passed on a function_call_output
            # item, the server will check that a function_call item with the same ID exists
            # in the conversation history." The service answers ``invalid_tool_call_id``.
            raise ValidationFailed(
                f"Tool call ID '{item.get('call_id')}' not found in conversation.",
                "invalid_tool_call_id",
                "item.call_id",
            )
        if conn.find_item(str(item["id"])) is not None:
            raise ValidationFailed(
                f"Item with id '{item['id']}' already exists.", "item_id_conflict", "item.id"
            )
        images = sum(
            image_tokens(part)
            for part in item.get("content") or []
            if part.get("type") == "input_image"
        )
        if images:
            conn.item_images[str(item["id"])] = images
        await self._add_item(conn, item)

    async def _on_item_retrieve(self, conn: Connection, data: JsonDict) -> None:
        # API reference, conversation.item.retrieve: answered with conversation.item.retrieved,
        # unless the item does not exist, which is an error. The code is the service's
        # ``item_<action>_invalid_item_id`` (Pipecat's OpenAI service matches it).
        item = conn.find_item(data["item_id"])
        if item is None:
            raise ValidationFailed(
                f"Item with item_id not found: {data['item_id']}",
                "item_retrieve_invalid_item_id",
                "item_id",
            )
        await self.send({"type": "conversation.item.retrieved", "item": item}, conn)

    async def _on_item_delete(self, conn: Connection, data: JsonDict) -> None:
        item = conn.find_item(data["item_id"])
        if item is None:
            raise ValidationFailed(
                f"Item with item_id not found: {data['item_id']}",
                "item_delete_invalid_item_id",
                "item_id",
            )
        conn.items.remove(item)
        await self.send({"type": "conversation.item.deleted", "item_id": data["item_id"]}, conn)

    async def _on_truncate(self, conn: Connection, data: JsonDict) -> None:
        # API reference, conversation.item.truncate: "Only assistant message items can be
        # truncated" (the service says "Only model output audio messages can be truncated"),
        # and "If the audio_end_ms is greater than the actual audio duration, the server will
        # respond with an error". Truncating drops the item's transcript from the context.
        item = conn.find_item(data["item_id"])
        if item is None:
            raise ValidationFailed(
                f"Item with item_id not found: {data['item_id']}",
                "item_truncate_invalid_item_id",
                "item_id",
            )
        audio = conn.item_audio.get(str(item["id"]))
        content = item.get("content") or []
        index = data["content_index"]
        if (
            item.get("role") != "assistant"
            or audio is None
            or index >= len(content)
            or content[index].get("type") != "output_audio"
        ):
            raise ValidationFailed(
                "Only model output audio messages can be truncated", "invalid_value", "item_id"
            )
        audio_ms = audio // BYTES_PER_MS
        end = data["audio_end_ms"]
        if end > audio_ms:
            raise ValidationFailed(
                f"Audio content of {audio_ms}ms is already shorter than {end}ms",
                "invalid_value",
                "audio_end_ms",
            )
        conn.item_audio[str(item["id"])] = end * BYTES_PER_MS
        content[index] = {**content[index], "transcript": ""}
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": data["item_id"],
                "content_index": index,
                "audio_end_ms": end,
            },
            conn,
        )

    async def _on_output_clear(self, conn: Connection, data: JsonDict) -> None:
        if conn.rtc is None:
            raise ValidationFailed(
                "output_audio_buffer.clear is only supported for WebRTC sessions.",
                "invalid_value",
                "type",
            )
        conn.rtc.audio_out.clear()
        if conn.playout_task is not None and not conn.playout_task.done():
            conn.playout_task.cancel()
            await self.send(
                {"type": "output_audio_buffer.cleared", "response_id": conn.response_id or ""},
                conn,
            )

    async def _on_cancel(self, conn: Connection, data: JsonDict) -> None:
        if not conn.response_active:
            # API reference, response.cancel: with no response to cancel the server answers
            # with an error (code ``response_cancel_not_active``).
            raise ValidationFailed(
                "Cancellation failed: no active response found", "response_cancel_not_active"
            )
        await self._cancel_response(conn, "client_cancelled")

    async def _on_response_create(self, conn: Connection, data: JsonDict) -> None:
        if conn.response_active:
            # Realtime conversations guide: one response at a time per conversation; a second
            # response.create is refused with ``conversation_already_has_active_response``.
            raise ValidationFailed(
                "Conversation already has an active response in progress.",
                "conversation_already_has_active_response",
            )
        self._start_response(conn, data)

    async def _cancel_response(self, conn: Connection, reason: str) -> None:
        task = conn.response_task
        if task is None or task.done():
            return
        conn.cancel_reason = reason
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await asyncio.shield(task)

    def _start_response(self, conn: Connection, request: JsonDict) -> None:
        reply = self._script.popleft() if self._script else self.responder(request)
        conn.cancel_reason = None
        if conn.buffered_audio:  # audio the client never committed still reaches the model
            item_id = _id("item")
            conn.items.append(
                {
                    "id": item_id,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "user",
                    "status": "completed",
                    "content": [{"type": "input_audio", "transcript": None}],
                }
            )
            conn.item_audio[item_id] = self._take_buffer(conn)
        conn.response_task = asyncio.get_running_loop().create_task(
            _ResponseRun(self, conn, request, reply).run()
        )

    async def _play_on_track(
        self, conn: Connection, rid: str, reply: ScriptedReply, item_id: str = ""
    ) -> None:
        """Reply audio on the outgoing track; ``output_audio_buffer.stopped`` once it played.
        What was written counts as the item's audio (the length ``truncate`` is checked on)."""
        from vision_agents.core.audio import PcmData

        assert conn.rtc is not None
        track = conn.rtc.audio_out
        if conn.playout_task is not None and not conn.playout_task.done():
            conn.playout_task.cancel()
        await self.send({"type": "output_audio_buffer.started", "response_id": rid}, conn)
        step = AUDIO_RATE * 2 * reply.chunk_ms // 1000
        for start in range(0, len(reply.audio), step):
            chunk = reply.audio[start : start + step]
            track.write(PcmData.from_bytes(chunk, AUDIO_RATE, 1, "s16"))
            if item_id:
                conn.item_audio[item_id] = conn.item_audio.get(item_id, 0) + len(chunk)
                conn.produced_audio = True
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

        conn.call_id = _id("rtc")
        call_id = conn.call_id
        conn.rtc = ServerPeer(inbox.put_nowait, on_audio)
        answer = await conn.rtc.answer(offer)
        self.connections.append(conn)
        conn.reader = asyncio.get_running_loop().create_task(self._serve_channel(conn))
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
        self._arm_expiry(conn)
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


class _ResponseRun:
    """One response, sent as the service sends it (API reference, server events):

    ``response.created``; per output item ``response.output_item.added`` and
    ``conversation.item.added``; a message then gets ``response.content_part.added``, its
    audio / transcript (or text) deltas and dones, ``response.content_part.done``; a function
    call gets ``response.function_call_arguments.delta`` / ``.done``; each item ends with
    ``response.output_item.done`` and ``conversation.item.done``. ``response.done`` carries
    the output items and the usage. A cancelled response closes its open item as
    ``incomplete`` and ends with status ``cancelled`` and the reason.
    """

    def __init__(
        self,
        server: OpenAIRealtimeServer,
        conn: Connection,
        request: JsonDict,
        reply: ScriptedReply,
    ) -> None:
        self.server, self.conn, self.request, self.reply = server, conn, request, reply
        self.rid = _id("resp")
        self.output: list[JsonDict] = []
        self.open: JsonDict | None = None  # the item being generated
        self.open_part: JsonDict | None = None
        self.out_tokens = Tokens()
        self.input = conn.context()
        options = request.get("response") or {}
        modalities = options.get("output_modalities") or conn.session.get("output_modalities")
        self.text_only = modalities == ["text"]
        self.base: JsonDict = {
            "object": "realtime.response",
            "id": self.rid,
            "conversation_id": "conv_local" if options.get("conversation") != "none" else None,
            "metadata": options.get("metadata"),
            "output_modalities": ["text"] if self.text_only else ["audio"],
            "max_output_tokens": options.get("max_output_tokens", "inf"),
        }
        if not self.text_only:
            self.base["audio"] = {
                "output": {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}, "voice": conn.voice}
            }

    async def send(self, event: JsonDict) -> None:
        await self.server.send(event, self.conn)

    async def run(self) -> None:
        conn = self.conn
        conn.response_id = self.rid
        await self.send(
            {
                "type": "response.created",
                "response": {**self.base, "status": "in_progress", "output": []},
            }
        )
        status, details = "completed", None
        try:
            reply = self.reply
            if reply.failure is not None:
                status, details = "failed", {"type": "failed", "error": reply.failure}
                return
            if reply.transcript or reply.audio or reply.text:
                await self._message(reply)
            for name, args in reply.tool_calls:
                await self._function_call(name, args)
        except asyncio.CancelledError:
            status = "cancelled"
            details = {"type": "cancelled", "reason": conn.cancel_reason or "client_cancelled"}
            with contextlib.suppress(Exception):
                await self._finish_open("incomplete")
        finally:
            conn.response_id = None
            self.out_tokens.audio = sum(
                audio_tokens(conn.item_audio.get(str(i["id"]), 0), assistant=True)
                for i in self.output
                if i.get("type") == "message"
            )
            usage = Usage(
                input=self.input,
                cached=self.input.capped(conn.read_context),
                output=self.out_tokens,
                responses=1,
            )
            conn.usage.add(usage)
            conn.read_context = conn.context()
            if not conn.closed:
                with contextlib.suppress(Exception):
                    await self.send(
                        {
                            "type": "response.done",
                            "response": {
                                **self.base,
                                "status": status,
                                "status_details": details,
                                "output": self.output,
                                "usage": usage.as_wire(),
                            },
                        }
                    )

    async def _open_item(self, item: JsonDict) -> None:
        self.open = item
        index = len(self.output)
        self.output.append(item)
        previous = self.conn.items[-1]["id"] if self.conn.items else None
        self.conn.items.append(item)
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": self.rid,
                "output_index": index,
                "item": item,
            }
        )
        await self.send(
            {"type": "conversation.item.added", "item": item, "previous_item_id": previous}
        )

    async def _finish_open(self, status: str) -> None:
        item = self.open
        if item is None:
            return
        self.open = None
        index = self.output.index(item)
        item["status"] = status
        common = {"response_id": self.rid, "item_id": item["id"], "output_index": index}
        part = self.open_part
        if part is not None:
            self.open_part = None
            item["content"] = [
                {"type": "output_text", "text": part["text"]}
                if part["type"] == "text"
                else {"type": "output_audio", "transcript": part["transcript"]}
            ]
            await self.send(
                {"type": "response.content_part.done", **common, "content_index": 0, "part": part}
            )
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": self.rid,
                "output_index": index,
                "item": item,
            }
        )
        items = self.conn.items
        at = items.index(item) if item in items else 0
        previous = items[at - 1]["id"] if at > 0 else None
        await self.send(
            {"type": "conversation.item.done", "item": item, "previous_item_id": previous}
        )

    async def _message(self, reply: ScriptedReply) -> None:
        conn = self.conn
        item: JsonDict = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await self._open_item(item)
        common = {
            "response_id": self.rid,
            "item_id": item["id"],
            "output_index": len(self.output) - 1,
        }
        text_mode = self.text_only or bool(reply.text)
        part: JsonDict = (
            {"type": "text", "text": ""} if text_mode else {"type": "audio", "transcript": ""}
        )
        self.open_part = part
        await self.send(
            {
                "type": "response.content_part.added",
                **common,
                "content_index": 0,
                "part": dict(part),
            }
        )
        if text_mode:
            text = reply.text or reply.transcript
            for piece in _pieces(text, 3):
                part["text"] += piece
                await self.send(
                    {
                        "type": "response.output_text.delta",
                        **common,
                        "content_index": 0,
                        "delta": piece,
                    }
                )
            self.out_tokens.text += text_tokens(text)
            await self.send(
                {"type": "response.output_text.done", **common, "content_index": 0, "text": text}
            )
            await self._finish_open("completed")
            return
        step = BYTES_PER_MS * reply.chunk_ms
        chunks = [reply.audio[i : i + step] for i in range(0, len(reply.audio), step)]
        words = _pieces(reply.transcript, max(1, len(chunks)))
        conn.item_audio[item["id"]] = 0
        if conn.rtc is not None:  # WebRTC: the audio plays on the media track, not as deltas
            await self.server._play_on_track(conn, self.rid, reply, item["id"])
            chunks = []
        for i, chunk in enumerate(chunks):
            await self.send(
                {
                    "type": "response.output_audio.delta",
                    **common,
                    "content_index": 0,
                    "delta": base64.b64encode(chunk).decode(),
                }
            )
            conn.produced_audio = True
            conn.item_audio[item["id"]] += len(chunk)
            if i < len(words):
                await self._transcript_delta(common, words[i])
            if reply.pace:
                await asyncio.sleep(reply.pace)
        for piece in words[len(chunks) :]:
            await self._transcript_delta(common, piece)
        await self.send({"type": "response.output_audio.done", **common, "content_index": 0})
        await self.send(
            {
                "type": "response.output_audio_transcript.done",
                **common,
                "content_index": 0,
                "transcript": part["transcript"],
            }
        )
        await self._finish_open("completed")

    async def _transcript_delta(self, common: JsonDict, piece: str) -> None:
        assert self.open_part is not None
        before = text_tokens(self.open_part["transcript"])
        self.open_part["transcript"] += piece
        self.out_tokens.text += text_tokens(self.open_part["transcript"]) - before
        await self.send(
            {
                "type": "response.output_audio_transcript.delta",
                **common,
                "content_index": 0,
                "delta": piece,
            }
        )

    async def _function_call(self, name: str, args: JsonDict) -> None:
        call_id = _id("call")
        item: JsonDict = {
            "id": _id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": name,
            "arguments": "",
        }
        self.conn.call_ids.add(call_id)
        await self._open_item(item)
        common = {
            "response_id": self.rid,
            "item_id": item["id"],
            "output_index": len(self.output) - 1,
            "call_id": call_id,
        }
        arguments = json.dumps(args)
        for piece in _pieces(arguments, 2, by_words=False):
            item["arguments"] += piece
            await self.send(
                {"type": "response.function_call_arguments.delta", **common, "delta": piece}
            )
        self.out_tokens.text += text_tokens(name + arguments)
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **common,
                "name": name,
                "arguments": arguments,
            }
        )
        await self._finish_open("completed")


def _pieces(text: str, count: int, *, by_words: bool = True) -> list[str]:
    """``text`` in at most ``count`` consecutive pieces that join back to it."""
    if not text:
        return []
    if by_words:
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1][:-1]
        words = [w for w in words if w]
    else:
        words = list(text)
    count = max(1, min(count, len(words)))
    size = -(-len(words) // count)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


_Handler = Callable[[OpenAIRealtimeServer, Connection, JsonDict], typing.Awaitable[None]]
_HANDLERS: dict[str, _Handler] = {
    "session.update": OpenAIRealtimeServer._on_session_update,
    "input_audio_buffer.append": OpenAIRealtimeServer._on_append,
    "input_audio_buffer.commit": OpenAIRealtimeServer._on_commit,
    "input_audio_buffer.clear": OpenAIRealtimeServer._on_clear,
    "conversation.item.create": OpenAIRealtimeServer._on_item_create,
    "conversation.item.retrieve": OpenAIRealtimeServer._on_item_retrieve,
    "conversation.item.delete": OpenAIRealtimeServer._on_item_delete,
    "conversation.item.truncate": OpenAIRealtimeServer._on_truncate,
    "output_audio_buffer.clear": OpenAIRealtimeServer._on_output_clear,
    "response.cancel": OpenAIRealtimeServer._on_cancel,
    "response.create": OpenAIRealtimeServer._on_response_create,
}


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"
