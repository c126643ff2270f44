"""OpenAI Realtime connection layer: the SDK socket, reconnection, media and tool plumbing.

The protocol itself (what to send, what server events mean) lives in ``protocol.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal

import aiortc
import av

import openai
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.llm.realtime import Realtime as RealtimeBase
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.core.utils.video import encode_jpeg
from vision_agents.plugins.openai import protocol as p
from vision_agents.plugins.openai.webrtc import WebRTCConnection

logger = logging.getLogger(__name__)

_DEFAULT: Any = object()

ApiKey = str | Callable[[], str | Awaitable[str]]
"""A key, or a sync/async function returning one, called at every connect (rotating keys)."""


class Realtime(RealtimeBase):
    """OpenAI Realtime (GA) speech-to-speech over the official ``openai`` SDK.

    WebSocket (default): audio goes in at 24 kHz mono PCM (resampled here). WebRTC
    (``transport="webrtc"``, aiortc): audio goes out and comes back on media tracks and events
    travel over the ``oai-events`` data channel. Either way video goes as JPEG ``input_image``
    items at ``fps``. On a dropped socket it reconnects (``max_retries``, exponential backoff) and
    re-sends session settings, tools and the conversation so far.

    Barge-in truncates the playing item at the played position: in an Agent, what its audio
    track really played of the response (``set_playback_position``); otherwise estimated as
    real time since the item's first audio chunk (capped at what was received). Pass
    ``played_ms`` to use a playback counter of your own instead.
    """

    provider_name: ClassVar[str] = "openai_realtime"
    api_key_env: ClassVar[str] = "OPENAI_API_KEY"
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        model: str = "gpt-realtime",
        fps: float = 1,
        api_key: ApiKey | None = None,
        client: openai.AsyncOpenAI | None = None,
        transport: Literal["websocket", "webrtc"] = "websocket",
        voice: str | None = "marin",
        turn_detection: dict[str, Any] | None = _DEFAULT,
        *,
        instructions: str | None = None,
        transcription_model: str | None = "whisper-1",
        output_modalities: list[Literal["audio", "text"]] | None = None,
        base_url: str | None = None,
        max_image_side: int = 1024,
        jpeg_quality: int = 80,
        max_retries: int = 5,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        max_session_duration: float | None = None,
        played_ms: p.PlayedMs | None = None,
        session_extra: dict[str, Any] | None = None,
        tool_timeout: float | None = 30.0,
        ice_servers: list[aiortc.RTCIceServer] | None = None,
    ) -> None:
        super().__init__(fps=fps, tool_timeout=tool_timeout)
        if transport not in ("websocket", "webrtc"):
            raise ValueError(f"transport must be 'websocket' or 'webrtc', got {transport!r}")
        self.transport = transport
        self.ice_servers = ice_servers
        self.model = model
        self.voice = voice
        self.turn_detection = (
            {"type": "server_vad", "create_response": True}
            if turn_detection is _DEFAULT
            else turn_detection
        )
        self.transcription_model = transcription_model
        self.output_modalities: list[Literal["audio", "text"]] = output_modalities or ["audio"]
        self.session_extra = dict(session_extra or {})
        if instructions is not None:
            self.instructions = instructions
        self.max_image_side = max_image_side
        self.jpeg_quality = jpeg_quality
        self.max_retries = max_retries
        self.retry_initial_delay = retry_initial_delay
        self.retry_max_delay = retry_max_delay
        self.max_session_duration = max_session_duration
        self._client = client
        self._api_key = api_key
        self._owns_client = False
        self._base_url = base_url
        self._state = p.ProtocolState(played_ms=played_ms, media_audio=transport == "webrtc")
        if played_ms is None:  # an Agent's player knows what was really played
            self._state.response_played_ms = self._response_played_ms
        self._conn: AsyncRealtimeConnection | WebRTCConnection | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self._receiver: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._connected_at = 0.0
        self._resamplers: dict[str, Resampler] = {}
        self._replies: dict[str, asyncio.Future[str]] = {}
        self.reconnects = 0
        """Connections made after the first (drops recovered and recycles)."""
        self.frames_sent = 0

    # -- settings ---------------------------------------------------------------------

    def settings(self) -> p.SessionSettings:
        """The session settings as they go on the wire now."""
        return p.SessionSettings(
            model=self.model,
            instructions=self.instructions,
            voice=self.voice,
            turn_detection=self.turn_detection,
            transcription_model=self.transcription_model,
            output_modalities=list(self.output_modalities),
            tools=self.tools.schemas(),
            extra=self.session_extra,
        )

    def _response_played_ms(self, response_id: str) -> float | None:
        position = self.playback_position
        return position(response_id) if position is not None else None

    def _make_client(self) -> openai.AsyncOpenAI:
        if self._client is not None:
            return self._client
        if callable(self._api_key):
            raise ValueError(
                f"{self.provider_name}: api_key is a function, called at each connect; "
                "connect first, or pass a key string"
            )
        key = self._api_key or os.environ.get(self.api_key_env)
        if not key:
            raise ValueError(
                f"{self.provider_name}: no API key; pass api_key=... or set {self.api_key_env}"
            )
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=self._base_url or self.default_base_url
        )
        return self._client

    async def _client_for_connect(self) -> openai.AsyncOpenAI:
        """The SDK client for a new connection: a key function gives a fresh one each time."""
        if not callable(self._api_key):
            return self._make_client()
        key = self._api_key()
        if not isinstance(key, str):
            key = await key
        if not key:
            raise ValueError(f"{self.provider_name}: the api_key function returned {key!r}")
        old, owned = self._client, self._owns_client
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=self._base_url or self.default_base_url
        )
        self._owns_client = True
        if old is not None and owned:
            await old.close()
        return self._client

    # -- connection -------------------------------------------------------------------

    async def connect(self) -> None:
        if self._conn is not None:
            return
        self._closing = False
        self._conn = await self._open()
        self._receiver = asyncio.get_running_loop().create_task(
            self._receive_loop(), name=f"{self.provider_name}:receive"
        )
        if self.max_session_duration:
            self._watchdog = asyncio.get_running_loop().create_task(
                self._recycle_loop(), name=f"{self.provider_name}:recycle"
            )
        self._emit_connected_event(
            session_config=self.settings().to_session(), capabilities={"transport": self.transport}
        )

    async def _open(self) -> AsyncRealtimeConnection | WebRTCConnection:
        client = await self._client_for_connect()
        conn: AsyncRealtimeConnection | WebRTCConnection
        if self.transport == "webrtc":
            conn = await WebRTCConnection.open(
                client,
                self.settings().to_session(),
                self._on_track_audio,
                ice_servers=self.ice_servers,
            )
        else:
            conn = await client.realtime.connect(model=self.model).enter()
        try:
            for event in self._state.replay(self.settings()):
                await conn.send(event)  # type: ignore[arg-type]
        except BaseException:
            await conn.close()
            raise
        self._connected_at = time.monotonic()
        self._ready.set()
        return conn

    async def _receive_loop(self) -> None:
        while not self._closing:
            conn = self._conn
            assert conn is not None
            try:
                raw = await conn.recv_bytes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                if conn is not self._conn:  # recycled under us: read the new one
                    continue
                if not await self._reconnect(exc):
                    return
                continue
            try:
                await self._dispatch(self._state.feed(json.loads(raw)))
            except Exception as exc:
                self._emit_error_event(exc, context="handling a server event")

    async def _reconnect(self, cause: BaseException) -> bool:
        self._ready.clear()
        await self._dispatch(self._state.reset_connection())
        old, self._conn = self._conn, None
        if old is not None:
            await _quiet_close(old)
        delay = self.retry_initial_delay
        for attempt in range(1, self.max_retries + 1):
            try:
                self._conn = await self._open()
                self.reconnects += 1
                logger.info(
                    "%s: reconnected after %r (attempt %d)", self.provider_name, cause, attempt
                )
                return True
            except Exception as exc:
                logger.warning(
                    "%s: reconnect attempt %d failed: %s", self.provider_name, attempt, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_delay)
        self._emit_error_event(cause, context=f"connection lost; {self.max_retries} retries failed")
        self._emit_disconnected_event(reason=f"connection lost: {cause}", was_clean=False)
        return False

    async def _recycle_loop(self) -> None:
        assert self.max_session_duration is not None
        while not self._closing:
            await asyncio.sleep(min(1.0, self.max_session_duration / 4))
            age = time.monotonic() - self._connected_at
            if (
                age >= self.max_session_duration
                and not self._state.response_active
                and self._ready.is_set()
            ):
                await self._recycle()

    async def _recycle(self) -> None:
        """Swap in a fresh connection between turns, before the provider's session limit."""
        old = self._conn
        self._conn = await self._open()
        self.reconnects += 1
        if old is not None:
            await _quiet_close(old)

    async def close(self) -> None:
        self._closing = True
        await self._close_base()
        await cancel_and_wait(self._receiver, self._watchdog)
        self._receiver = self._watchdog = None
        conn, self._conn = self._conn, None
        self._ready.clear()
        if conn is not None:
            await _quiet_close(conn)
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.close()
        for fut in self._replies.values():
            if not fut.done():
                fut.cancel()
        self._replies.clear()
        if self._connected:
            self._emit_disconnected_event(reason="closed", was_clean=True)

    def _on_track_audio(self, pcm_24k: bytes) -> None:
        """WebRTC: the model's voice from the remote track (kept while a response streams)."""
        for ev in self._state.track_audio(pcm_24k):
            if isinstance(ev, p.AudioDelta):
                pcm = PcmData.from_bytes(ev.pcm, p.AUDIO_RATE, 1, "s16")
                self._emit_audio_output_event(pcm, response_id=ev.response_id)

    async def _send(self, event: p.JsonDict) -> bool:
        conn = self._conn
        if conn is None or not self._ready.is_set():
            return False
        try:
            await conn.send(event)  # type: ignore[arg-type]
            return True
        except Exception as exc:  # the receive loop sees the drop and reconnects
            logger.debug("%s: send failed: %s", self.provider_name, exc)
            return False

    # -- server events ----------------------------------------------------------------

    async def _dispatch(self, events: list[p.ProtocolEvent]) -> None:
        for ev in events:
            if isinstance(ev, p.AudioDelta):
                pcm = PcmData.from_bytes(ev.pcm, p.AUDIO_RATE, 1, "s16")
                self._emit_audio_output_event(pcm, response_id=ev.response_id)
            elif isinstance(ev, p.AudioDone):
                self._emit_audio_output_done_event(ev.response_id, interrupted=ev.interrupted)
            elif isinstance(ev, p.UserTranscript):
                self._emit_user_speech_transcription(ev.text, original=ev)
            elif isinstance(ev, p.AgentTranscript):
                self._emit_agent_speech_transcription(ev.text, original=ev)
            elif isinstance(ev, p.TextResponse):
                self._emit_response_event(
                    ev.text,
                    ev.response_id,
                    is_complete=ev.is_complete,
                    conversation_item_id=ev.item_id,
                )
            elif isinstance(ev, p.ToolCall):
                self._start_tool_call(ev.call_id, ev.name, ev.arguments)
            elif isinstance(ev, p.ResponseFinished):
                self._finish_reply(ev)
            elif isinstance(ev, p.ServerError):
                self._emit_error_event(
                    RuntimeError(f"{ev.code or 'error'}: {ev.message}"), context="server error"
                )
            elif isinstance(ev, p.Send):
                await self._send(ev.event)

    def _finish_reply(self, ev: p.ResponseFinished) -> None:
        tag = (ev.metadata or {}).get("vision_agents_reply")
        fut = self._replies.pop(tag, None) if tag else None
        if fut is not None and not fut.done():
            fut.set_result(ev.text)

    # -- media ------------------------------------------------------------------------

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        conn = self._conn
        if isinstance(conn, WebRTCConnection):  # the audio track resamples and paces it
            if self._ready.is_set():
                conn.audio_out.write(pcm)
            self._emit_audio_input_event(pcm)
            return
        key = participant.session_id if participant is not None else ""
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = Resampler(p.AUDIO_RATE, 1, "s16")
        out = resampler.process(pcm)
        if len(out):
            await self._send(p.audio_append(out.to_bytes()))
        self._emit_audio_input_event(pcm)

    async def _send_video_frame(self, frame: av.VideoFrame) -> None:
        side = self.max_image_side
        event = p.image_item(await asyncio.to_thread(encode_jpeg, frame, self.jpeg_quality, side))
        conn = self._conn
        if isinstance(conn, WebRTCConnection):  # a data channel message has a size limit
            while len(p.dumps(event)) > conn.max_message_size and side > 64:
                side //= 2
                jpeg = await asyncio.to_thread(encode_jpeg, frame, self.jpeg_quality, side)
                event = p.image_item(jpeg)
        if await self._send(event):
            self.frames_sent += 1

    async def _wait_ready(self, within: float = 10.0) -> None:
        """Turns wait out a reconnection instead of being lost in it (media is dropped)."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise ConnectionError(f"{self.provider_name}: not connected") from None

    async def _send_text(self, text: str) -> None:
        await self._wait_ready()
        item = p.user_text_item(text)
        self._state.remember(item)
        await self._send(p.item_create(item))
        await self._send(p.response_create())

    async def _send_tool_result(self, result: ToolResult) -> None:
        await self._wait_ready()
        for event in self._state.tool_output(result.call_id or "", result.to_json()):
            await self._send(event)

    # -- session control --------------------------------------------------------------

    async def _update_session(self) -> None:
        await self._send(p.session_update(self.settings(), include_model=False))

    async def update_instructions(self, instructions: str) -> None:
        self.instructions = instructions
        await self._update_session()

    async def update_tools(self) -> None:
        """Send the registry's current tools (call after registering or unregistering)."""
        await self._update_session()

    async def update_options(
        self,
        *,
        voice: str | None = _DEFAULT,
        turn_detection: dict[str, Any] | None = _DEFAULT,
        output_modalities: list[Literal["audio", "text"]] | None = None,
        transcription_model: str | None = _DEFAULT,
    ) -> None:
        if voice is not _DEFAULT:
            self.voice = voice
        if turn_detection is not _DEFAULT:
            self.turn_detection = turn_detection
        if output_modalities is not None:
            self.output_modalities = list(output_modalities)
        if transcription_model is not _DEFAULT:
            self.transcription_model = transcription_model
        await self._update_session()

    def generate_reply(
        self, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """Ask for a response now; the future gets its text (transcript) or TimeoutError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        tag = p.new_reply_tag()
        self._replies[tag["vision_agents_reply"]] = fut

        def expire() -> None:
            self._replies.pop(tag["vision_agents_reply"], None)
            if not fut.done():
                fut.set_exception(TimeoutError(f"no reply within {timeout} s"))

        handle = loop.call_later(timeout, expire)
        fut.add_done_callback(lambda _f: handle.cancel())
        self._tasks.spawn(self._send(p.response_create(instructions, tag)), "generate_reply")
        return fut

    async def interrupt(self) -> None:
        """Stop the model talking: cancel the response, truncate at the played position."""
        await self._dispatch(self._state.interrupt())

    async def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        """Cut an assistant item's audio at ``audio_end_ms`` (what the user really heard)."""
        await self._send(p.truncate(item_id, audio_end_ms, content_index))

    async def commit_audio(self) -> None:
        """End the user's turn (when ``turn_detection`` is None)."""
        await self._send(p.audio_commit())

    async def clear_audio(self) -> None:
        await self._send(p.audio_clear())

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The conversation items a new connection would be given."""
        return list(self._state.history)


async def _quiet_close(conn: AsyncRealtimeConnection | WebRTCConnection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2.0)
    except Exception as exc:
        logger.debug("closing an old connection: %s", exc)
