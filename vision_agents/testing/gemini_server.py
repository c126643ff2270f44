"""A strict local Gemini Live server for tests: the real SDK talks to it over TLS on loopback.

Every client message is validated with the SDK's own pydantic types (extra keys forbidden);
what the real service would reject closes the socket with the code it would use (1007 for an
invalid argument, 1008 for an unknown model or a bad resumption handle). Tests script what
the "model" does (audio, transcripts, tool calls, interruptions, goAway, resumption handles,
abrupt drops) and assert on what arrived (``received``, ``frames``, ``audio``, ...).

    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(model="gemini-live-test", client=server.client())
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import pydantic
from google import genai
from google.genai import types
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vision_agents.core.audio import PcmData
from vision_agents.testing.gemini_limits import Ledger, LiveLimits, usage_metadata
from vision_agents.testing.tls import LocalTLS

_NO_LIMITS = LiveLimits(connection_lifetime_s=None, enforce_context=False)

CLOSE_INVALID_ARGUMENT = 1007
CLOSE_POLICY = 1008

_PATH = re.compile(
    r"^/ws/(google\.ai\.generativelanguage\.[A-Za-z0-9]+\.GenerativeService\."
    r"BidiGenerateContent(Constrained)?"
    r"|google\.cloud\.aiplatform\.[A-Za-z0-9]+\.LlmBidiService/BidiGenerateContent)$"
)
"""The Gemini Developer API's endpoint, and Vertex AI's (express mode: an API key)."""
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG"


@dataclass(frozen=True)
class WireMessage:
    """One client message as it arrived."""

    connection: int
    kind: str  # "setup", "realtime_input", "client_content", "tool_response"
    size: int  # bytes of JSON on the wire
    at: float  # time.monotonic()
    body: dict[str, Any]


@dataclass(frozen=True)
class WireFrame:
    """One video frame as it arrived."""

    connection: int
    at: float
    mime_type: str
    size: int
    width: int
    height: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class WireAudio:
    connection: int
    at: float
    mime_type: str
    sample_rate: int
    data: bytes = field(repr=False)


@dataclass
class _Conn:
    index: int
    ws: ServerConnection
    setup: dict[str, Any]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    known_calls: set[str] = field(default_factory=set)
    """Calls this session made (resumed ones included): results for others are refused."""
    messages: int = 0
    """Client messages after the setup (the setup is message 0)."""
    consumed: int = 0
    """Index of the last client message the model took into the session's state."""
    stalled: bool = False
    """The model stopped consuming: messages arrive (the front end answers pings) but are
    never taken into the state."""

    @property
    def transparent(self) -> bool:
        return bool((self.setup.get("sessionResumption") or {}).get("transparent"))


TextResponder = Callable[[str], "tuple[str, PcmData | None]"]


class GeminiLiveServer:
    """Speaks the Gemini Live (BidiGenerateContent) protocol to the official SDK."""

    def __init__(
        self,
        *,
        models: tuple[str, ...] | None = None,
        responder: TextResponder | None = None,
        handle_on_turn_complete: bool = True,
        handle_on_tool_response: bool = True,
        handle_every_s: float | None = None,
        limits: LiveLimits | None = None,
    ) -> None:
        self.models = models
        """Model names accepted (without ``models/``); None accepts any."""
        self.responder = responder
        """Answers a client text turn with (text, 24 kHz audio or None)."""
        self.handle_on_turn_complete = handle_on_turn_complete
        self.handle_on_tool_response = handle_on_tool_response
        """Checkpoint (issue a new handle) after each tool response, as the service does."""
        self.handle_every_s = handle_every_s
        """Also checkpoint this often while the session is idle (None: never)."""
        self.limits = limits
        """The service's limits to enforce (context window, connection lifetime, resumable
        points, tool results only for the resumed session's calls); None: none of them."""
        self.ledger = Ledger()
        """Token accounting of the current session (carried across resumptions)."""
        self.heard: list[bytes] = []
        """The user audio in the current session's state, in order (a resumed session holds
        what its handle held): what the model has heard, each sample once."""
        self._heard_at: dict[str, list[bytes]] = {}
        self.usage_reported: dict[str, int] = {}
        """Tokens reported in ``usageMetadata`` so far, per modality, over all sessions."""
        self.context_cuts = 0
        self.go_aways_sent = 0
        self._ledgers: dict[str, Ledger] = {}
        self._calls_at_handle: dict[str, set[str]] = {}
        self._pending_calls: set[str] = set()
        self._generating = 0
        self.tls = LocalTLS()
        self.received: list[WireMessage] = []
        self.frames: list[WireFrame] = []
        self.audio: list[WireAudio] = []
        self.texts: list[str] = []
        self.tool_responses: list[dict[str, Any]] = []
        self.setups: list[dict[str, Any]] = []
        self.rejections: list[tuple[int, str]] = []
        self.handles_issued: list[str] = []
        self.resumed_with: list[str | None] = []
        """The handle each setup resumed with (None: a fresh session)."""
        self.latest_at_resume: list[str | None] = []
        """The newest handle issued when each of those setups arrived."""
        self.issued_calls: set[str] = set()
        self._conns = itertools.count(1)
        self._current: _Conn | None = None
        self._connected = asyncio.Condition()
        self._server: Server | None = None
        self._handle_seq = itertools.count(1)
        self._call_seq = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> GeminiLiveServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            0,
            ssl=self.tls.server_context(),
            process_request=self._check_request,
            max_size=16 * 1024 * 1024,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, api_key: str = "local-test-key") -> genai.Client:
        """An SDK client pointed at this server, trusting its throwaway CA."""
        return genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=self.base_url,
                async_client_args={"ssl": self.tls.client_context()},
            ),
        )

    # -- what tests read ---------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self.setups)

    def audio_seconds(self) -> float:
        return sum(len(a.data) / 2 / a.sample_rate for a in self.audio)

    async def wait_connected(self, count: int = 1, within: float = 5.0) -> None:
        """Wait until ``count`` sessions have completed setup in total."""
        await self.wait_for(
            lambda: (
                self.connection_count >= count
                and self._current is not None
                and self._current.ready.is_set()
            ),
            within,
        )

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            async with self._connected:
                await self._connected.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._connected:
            self._connected.notify_all()

    # -- scripting the model --------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Send one server message (checked with ``LiveServerMessage``) on the live socket."""
        types.LiveServerMessage.model_validate(message)
        conn = self._current
        if conn is None:
            raise RuntimeError("no client is connected")
        await conn.ws.send(json.dumps(message))

    async def send_audio(
        self,
        pcm: PcmData,
        *,
        transcript: str | None = None,
        chunk_ms: float = 40,
        turn_complete: bool = True,
    ) -> None:
        """Speak: 24 kHz PCM chunks in ``modelTurn``, the output transcript, then turnComplete."""
        pcm = pcm.resample(24000, 1).to_int16()
        self._generating += 1
        try:
            for chunk in pcm.chunks(chunk_ms):
                blob = {"mimeType": "audio/pcm;rate=24000", "data": chunk.to_base64()}
                await self.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            if transcript:
                await self.send({"serverContent": {"outputTranscription": {"text": transcript}}})
        finally:
            self._generating -= 1
        self.ledger.add_output(pcm.duration, transcript or "", self._limits_or_default)
        if turn_complete:
            await self.send_turn_complete()

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        await self.send({"serverContent": {"modelTurn": {"parts": [{"text": text}]}}})
        self.ledger.add_output(0.0, text, self._limits_or_default)
        if turn_complete:
            await self.send_turn_complete()

    async def send_input_transcript(self, text: str) -> None:
        await self.send({"serverContent": {"inputTranscription": {"text": text}}})

    async def send_turn_complete(self) -> None:
        await self.send({"serverContent": {"generationComplete": True}})
        delta = self.ledger.usage_delta()
        await self.send(
            {"serverContent": {"turnComplete": True}, "usageMetadata": usage_metadata(delta)}
        )
        for key, value in delta.items():
            self.usage_reported[key] = self.usage_reported.get(key, 0) + value
        await self._check_context()
        if self.handle_on_turn_complete and self._resumption_enabled():
            await self.send_resumption_update()

    async def send_interrupted(self) -> None:
        await self.send({"serverContent": {"interrupted": True}})

    async def send_tool_call(
        self, name: str, args: dict[str, Any], call_id: str | None = None
    ) -> str:
        call_id = call_id or f"call-{next(self._call_seq)}"
        self.issued_calls.add(call_id)
        self._pending_calls.add(call_id)
        if self._current is not None:
            self._current.known_calls.add(call_id)
        await self.send(
            {"toolCall": {"functionCalls": [{"id": call_id, "name": name, "args": args}]}}
        )
        return call_id

    async def send_tool_cancellation(self, *call_ids: str) -> None:
        await self.send({"toolCallCancellation": {"ids": list(call_ids)}})

    async def send_go_away(self, time_left: str = "1s", *, then_close: bool = True) -> None:
        """Announce the connection's end. As the service does (Live API docs, "Session
        management": GoAway), the connection is then closed when ``time_left`` runs out."""
        self.go_aways_sent += 1
        conn = self._current
        await self.send({"goAway": {"timeLeft": time_left}})
        if then_close and conn is not None:
            seconds = float(time_left.rstrip("s") or 0)
            self._spawn(self._close_later(conn, seconds))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background; ``close()`` cancels and awaits what is left."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_later(self, conn: _Conn, seconds: float) -> None:
        await asyncio.sleep(seconds)
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.close(1000, "goAway time elapsed")

    async def send_resumption_update(self, resumable: bool = True) -> str | None:
        """Issue a resumption handle. With limits, as the service does: while the model
        generates or a tool call waits for its result the update is ``resumable: false`` and
        carries no handle (returns None)."""
        if self.limits is not None and (self._generating or self._pending_calls):
            await self.send({"sessionResumptionUpdate": {"resumable": False}})
            return None
        conn = self._current
        if conn is not None and conn.stalled:
            return None  # the model is stuck: no new resumable state
        handle = f"handle-{next(self._handle_seq)}"
        update: dict[str, Any] = {"newHandle": handle, "resumable": resumable}
        if conn is not None and conn.transparent:
            # int64 in proto3 JSON is a string
            update["lastConsumedClientMessageIndex"] = str(conn.consumed)
        await self.send({"sessionResumptionUpdate": update})
        self.handles_issued.append(handle)  # only once it went out
        self._ledgers[handle] = self.ledger.copy()
        self._heard_at[handle] = list(self.heard)
        if self._current is not None:
            self._calls_at_handle[handle] = set(self._current.known_calls)
        return handle

    @property
    def _limits_or_default(self) -> LiveLimits:
        return self.limits or _NO_LIMITS

    async def _check_context(self) -> None:
        """Compress the context as the session asked, or end the session past the window."""
        conn, limits = self._current, self.limits
        if conn is None or limits is None or not limits.enforce_context:
            return
        compression = conn.setup.get("contextWindowCompression") or conn.setup.get(
            "context_window_compression"
        )
        if compression is not None:
            window = compression.get("slidingWindow") or compression.get("sliding_window") or {}
            trigger = compression.get("triggerTokens") or compression.get("trigger_tokens")
            target = window.get("targetTokens") or window.get("target_tokens")
            self.ledger.compress(
                int(trigger) if trigger else None, int(target) if target else None, limits
            )
            return
        if self.ledger.context > limits.context_window_tokens:
            # Live API docs: past the context window the session ends (no compression set).
            self.context_cuts += 1
            self._current = None
            await self._reject(conn.ws, CLOSE_POLICY, "context window exhausted")

    async def _lifetime(self, conn: _Conn) -> None:
        """The connection's lifetime: goAway ``go_away_before_s`` before the end, then close."""
        limits = self.limits
        if limits is None or limits.connection_lifetime_s is None:
            return
        before = min(limits.go_away_before_s, limits.connection_lifetime_s)
        await asyncio.sleep(limits.real(limits.connection_lifetime_s - before))
        if self._current is conn:
            self.go_aways_sent += 1
            left = limits.real(before)
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(json.dumps({"goAway": {"timeLeft": f"{left:.3f}s"}}))
        await asyncio.sleep(limits.real(before))
        with contextlib.suppress(ConnectionClosed):
            await conn.ws.close(1000, "connection lifetime reached")

    async def drop(self, *, reset: bool = False) -> None:
        """Cut the connection without a WebSocket close frame (the client sees 1006).

        By default what was already sent still arrives (TCP FIN); ``reset=True`` aborts with
        a TCP RST, which can also destroy messages in flight, as a dying network does.
        """
        conn = self._current
        if conn is not None:
            self._current = None
            if reset:
                conn.ws.transport.abort()
            else:
                conn.ws.transport.close()

    async def close_connection(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame (1000 clean, 1011 internal error, ...)."""
        conn = self._current
        if conn is not None:
            self._current = None
            await conn.ws.close(code, reason)

    async def stall_model(self, seconds: float, code: int = 1011, reason: str = "") -> None:
        """The model stalls for ``seconds`` while the front end stays up (pings answered,
        messages accepted but never consumed), then the connection closes with ``code``:
        what was sent meanwhile is in no resumable state."""
        conn = self._current
        if conn is None:
            return
        conn.stalled = True

        async def close_later() -> None:
            await asyncio.sleep(seconds)
            if self._current is conn:
                self._current = None
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.close(code, reason or "internal error")

        self._spawn(close_later())

    async def stall_close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, then stop reading: the client's close handshake never finishes
        and the TCP connection stays open (a peer that hangs while closing)."""
        conn = self._current
        if conn is not None:
            self._current = None
            conn.ws.transport.pause_reading()
            conn.ws.protocol.send_close(code, reason)
            conn.ws.send_data()

    @property
    def audio_bytes(self) -> int:
        """User audio received over every connection so far (16 kHz mono s16 bytes)."""
        return sum(len(a.data) for a in self.audio)

    @property
    def latest_handle(self) -> str | None:
        return self.handles_issued[-1] if self.handles_issued else None

    # -- the protocol ---------------------------------------------------------------------

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not _PATH.match(request.path.split("?", 1)[0]):
            return connection.respond(404, f"no such endpoint: {request.path}\n")
        if not request.headers.get("x-goog-api-key") and "key=" not in request.path:
            return connection.respond(401, "missing API key\n")
        return None

    def _resumption_enabled(self) -> bool:
        conn = self._current
        return conn is not None and "sessionResumption" in conn.setup

    async def _serve(self, ws: ServerConnection) -> None:
        index = next(self._conns)
        try:
            raw = await ws.recv()
            setup = await self._check_setup(ws, index, raw)
            if setup is None:
                return
            conn = _Conn(index, ws, setup)
            handle = (setup.get("sessionResumption") or {}).get("handle")
            self.ledger = self._ledgers[handle].copy() if handle else Ledger()
            self.heard = list(self._heard_at[handle]) if handle else []
            conn.known_calls = set(self._calls_at_handle.get(handle, set())) if handle else set()
            self._pending_calls &= conn.known_calls
            previous, self._current = self._current, conn
            if previous is not None:
                previous.ws.transport.abort()
            if self.limits is not None and self.limits.enforce_context:
                await self._check_context()
                if self._current is not conn:
                    return  # resumed past the window: refused
            await ws.send(json.dumps({"setupComplete": {}}))
            if self.limits is not None and self.limits.connection_lifetime_s is not None:
                self._spawn(self._lifetime(conn))
            if "sessionResumption" in setup:
                await self.send_resumption_update()
                if self.handle_every_s is not None:
                    self._spawn(self._checkpoints(conn))
            conn.ready.set()
            self.setups.append(setup)
            await self._notify()
            async for message in ws:
                if not await self._handle(conn, message):
                    return
        except ConnectionClosed:
            pass
        finally:
            if self._current is not None and self._current.ws is ws:
                self._current = None
            await self._notify()

    async def _checkpoints(self, conn: _Conn) -> None:
        assert self.handle_every_s is not None
        while self._current is conn:
            await asyncio.sleep(self.handle_every_s)
            if self._current is conn and not self._generating:
                with contextlib.suppress(ConnectionClosed, RuntimeError):
                    await self.send_resumption_update()

    async def _reject(self, ws: ServerConnection, code: int, reason: str) -> None:
        self.rejections.append((code, reason))
        await self._notify()
        await ws.close(code, reason[:120])

    async def _check_setup(
        self, ws: ServerConnection, index: int, raw: str | bytes
    ) -> dict[str, Any] | None:
        body = _parse(raw)
        if body is None or set(body) != {"setup"}:
            await self._reject(ws, CLOSE_INVALID_ARGUMENT, "the first message must be a setup")
            return None
        error = _validate(body)
        if error:
            await self._reject(ws, CLOSE_INVALID_ARGUMENT, f"Invalid setup: {error}")
            return None
        setup: dict[str, Any] = body["setup"]
        model = str(setup.get("model", ""))
        # Developer API: models/NAME; Vertex AI: [projects/P/locations/L/]publishers/google/models/NAME
        vertex = re.fullmatch(
            r"(projects/[^/]+/locations/[^/]+/)?publishers/google/(models/.+)", model
        )
        if vertex is not None:
            model = vertex.group(2)
        if not model.startswith("models/") or (
            self.models is not None and model.removeprefix("models/") not in self.models
        ):
            await self._reject(ws, CLOSE_POLICY, f"models/{model} is not found or not supported")
            return None
        handle = (setup.get("sessionResumption") or {}).get("handle")
        if handle is not None and handle not in self.handles_issued:
            await self._reject(ws, CLOSE_POLICY, f"unknown session resumption handle {handle!r}")
            return None
        if "sessionResumption" in setup:
            self.resumed_with.append(handle)
            self.latest_at_resume.append(self.latest_handle)
        self._record(index, "setup", raw, body)
        return setup

    def _record(self, index: int, kind: str, raw: str | bytes, body: dict[str, Any]) -> None:
        self.received.append(WireMessage(index, kind, len(raw), time.monotonic(), body))

    async def _handle(self, conn: _Conn, raw: str | bytes) -> bool:
        if conn is not self._current:
            return False  # dropped: the service never saw this
        body = _parse(raw)
        error = "not a JSON object" if body is None else _validate(body)
        if body is None or error:
            await self._reject(conn.ws, CLOSE_INVALID_ARGUMENT, f"Invalid message: {error}")
            return False
        kinds = [k for k in body if body[k] is not None]
        if len(kinds) != 1 or kinds[0] == "setup":
            await self._reject(conn.ws, CLOSE_INVALID_ARGUMENT, f"unexpected message {kinds}")
            return False
        kind = _snake(kinds[0])
        self._record(conn.index, kind, raw, body)
        payload: dict[str, Any] = body[kinds[0]]
        now = time.monotonic()
        conn.messages += 1
        if conn.stalled:
            self._arrived(conn.index, now, payload)
            await self._notify()
            return True
        if kind == "realtime_input":
            problem = self._on_realtime_input(conn.index, now, payload)
            if not problem:
                await self._check_context()
                if self._current is not conn:
                    return False
        elif kind == "tool_response":
            problem = self._on_tool_response(payload)
        else:
            problem = await self._on_client_content(payload)
        if problem:
            await self._reject(conn.ws, CLOSE_INVALID_ARGUMENT, problem)
            return False
        conn.consumed = conn.messages
        if kind == "tool_response" and self.handle_on_tool_response and self._resumption_enabled():
            await self.send_resumption_update()
        await self._notify()
        return True

    def _arrived(self, index: int, now: float, payload: dict[str, Any]) -> None:
        """A stalled model's input: it reached the server, never the session's state."""
        blob = payload.get("audio") if isinstance(payload.get("audio"), dict) else None
        if blob is not None and str(blob.get("mimeType") or blob.get("mime_type") or "").startswith(
            "audio/pcm"
        ):
            with contextlib.suppress(binascii.Error, ValueError):
                data = _b64(str(blob.get("data", "")))
                self.audio.append(WireAudio(index, now, "audio/pcm", 16000, data))

    def _on_realtime_input(self, index: int, now: float, payload: dict[str, Any]) -> str | None:
        for key, blob in payload.items():
            if _snake(key) in ("audio", "video", "media_chunks"):
                blobs = blob if isinstance(blob, list) else [blob]
                for b in blobs:
                    problem = self._on_blob(index, now, b)
                    if problem:
                        return problem
            elif _snake(key) == "text":
                self.texts.append(str(blob))
        return None

    def _on_blob(self, index: int, now: float, blob: dict[str, Any]) -> str | None:
        mime = str(blob.get("mime_type") or blob.get("mimeType") or "")
        try:
            data = _b64(str(blob.get("data", "")))
        except (binascii.Error, ValueError):
            return "blob data is not base64"
        if mime.startswith("audio/pcm"):
            match = re.search(r"rate=(\d+)", mime)
            rate = int(match.group(1)) if match else 16000
            if len(data) % 2:
                return "audio/pcm data must be whole 16-bit samples"
            self.audio.append(WireAudio(index, now, mime, rate, data))
            self.heard.append(data)
            self.ledger.add_input_audio(len(data) / 2 / rate, self._limits_or_default)
        elif mime in ("image/jpeg", "image/png"):
            magic = _JPEG_MAGIC if mime == "image/jpeg" else _PNG_MAGIC
            if not data.startswith(magic):
                return f"blob is not a {mime} image"
            width, height = _image_size(data)
            self.frames.append(WireFrame(index, now, mime, len(data), width, height, data))
            self.ledger.add_frame(self._limits_or_default)
        else:
            return f"unsupported mime type {mime!r}"
        return None

    def _on_tool_response(self, payload: dict[str, Any]) -> str | None:
        responses = payload.get("functionResponses") or payload.get("function_responses") or []
        conn = self._current
        for response in responses:
            call_id = response.get("id")
            # With limits: only calls the (resumed) session made; a call made after the handle
            # it resumed from does not exist there.
            # Live API docs, "Session management with Live API": resuming gives the handle's state.
            known = conn.known_calls if self.limits is not None and conn else self.issued_calls
            if call_id not in known:
                return f"function response for unknown call id {call_id!r}"
            self._pending_calls.discard(call_id)
            self.tool_responses.append(response)
        return None

    async def _on_client_content(self, payload: dict[str, Any]) -> str | None:
        text = " ".join(
            str(part.get("text", ""))
            for turn in payload.get("turns") or []
            for part in turn.get("parts") or []
        )
        self.texts.append(text)
        self.ledger.add_input_text(text)
        complete = payload.get("turnComplete", payload.get("turn_complete"))
        if complete and self.responder is not None:
            reply, audio = self.responder(text)
            self._spawn(self._reply(reply, audio))
        return None

    async def _reply(self, text: str, audio: PcmData | None) -> None:
        try:
            if audio is not None:
                await self.send_audio(audio, transcript=text)
            else:
                await self.send_text(text)
        except (ConnectionClosed, RuntimeError):
            pass


def _parse(raw: str | bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _validate(body: dict[str, Any]) -> str | None:
    """What the SDK's types find wrong with a client message, or None.

    SDK gap: ``LiveClientSetup`` lacks ``realtimeInputConfig``; it is checked on its own.
    """
    body = json.loads(json.dumps(body))
    setup = body.get("setup")
    try:
        if isinstance(setup, dict):
            for key in ("realtimeInputConfig", "realtime_input_config"):
                if key in setup:
                    types.RealtimeInputConfig.model_validate(setup.pop(key))
        types.LiveClientMessage.model_validate_json(json.dumps(body))
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return None


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def _b64(data: str) -> bytes:
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)


def _image_size(data: bytes) -> tuple[int, int]:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return 0, 0
    return int(image.shape[1]), int(image.shape[0])
