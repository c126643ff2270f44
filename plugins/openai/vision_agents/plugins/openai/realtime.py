"""OpenAI Realtime (GA) through the official ``openai`` SDK: client, transports, options.

Protocol decisions live in ``protocol.py`` (``OpenAIProtocol``); reconnection, keepalive and
close order in the core ``ConnectionRuntime``. This module builds the SDK client, opens a link
(WebSocket or WebRTC) and maps the constructor options.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, ClassVar, Literal, cast

import aiortc
import av

import openai
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.llm.image_tokens import jpeg_size, openai_image_tokens
from vision_agents.core.llm.protocol_realtime import ProtocolRealtime
from vision_agents.core.llm.runtime import (
    DEFAULT_KEEPALIVE,
    ApiKey,
    ApiKeySource,
    ConnectionRuntime,
    Keepalive,
    Link,
    RetryPolicy,
    abort_websocket,
    json_event,
    ping_websocket,
    websocket_backlog,
)
from vision_agents.core.llm.runtime import (
    check_websocket_open as _check_open,
)
from vision_agents.core.utils.video import encode_jpeg
from vision_agents.plugins.openai import protocol as p
from vision_agents.plugins.openai.messages import dumps, image_item
from vision_agents.plugins.openai.webrtc import WebRTCConnection

logger = logging.getLogger(__name__)

_DEFAULT: Any = object()

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Largest server event accepted (a 30 s audio delta is ~2 MB of base64)."""

DEFAULT_TURN_DETECTION: dict[str, Any] = {"type": "server_vad", "create_response": True}

DEFAULT_IMAGE_DETAIL: Literal["low"] = "low"
"""Frames go at ``detail: "low"``: 85 tokens each whatever their size (OpenAI's vision guide),
against 765 for a 1024x576 frame at "high" or "auto"; ``image_detail="high"`` to read small
text (docs/openai.md, "What a frame costs")."""

DEFAULT_MAX_SESSION_S = 55 * 60.0
"""A session ends at 60 minutes (``session_expired``; Realtime API docs, session lifetime):
the connection is recycled between replies after 55, with the conversation replayed. An
expiry that comes anyway is handled as a reconnect."""

DEFAULT_AUDIO_CHUNK_MS = 100
"""The user's audio goes out in 100 ms appends, not one a 20 ms frame: a fifth of the
messages (each is JSON and base64 on both sides) for at most 80 ms more before the service
hears the end of a phrase. LiveKit's plugin sends 100 ms too."""

__all__ = ["DEFAULT_TURN_DETECTION", "ApiKey", "Realtime"]


class Realtime(ProtocolRealtime):
    """OpenAI Realtime (GA) speech-to-speech over the official ``openai`` SDK.

    WebSocket (default): audio goes in at 24 kHz mono PCM (resampled here). WebRTC
    (``transport="webrtc"``, aiortc): audio goes out and comes back on media tracks and events
    travel over the ``oai-events`` data channel. Video goes as JPEG ``input_image`` items at
    ``fps``. A lost link is replaced (``retry``), the session settings, tools and conversation
    are given to the new one, and the user's audio in the gap is sent there.

    ``turn_detection=None`` turns server VAD off (call ``commit_audio`` and ``generate_reply``).
    ``image_detail`` ("low" by default, "high", "auto", or None to leave the field out) is the
    ``detail`` of every frame; ``image_tokens_sent`` estimates what the frames cost by it.
    """

    provider_name: ClassVar[str] = "openai_realtime"
    api_key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    default_base_url: ClassVar[str | None] = None
    default_turn_detection: ClassVar[dict[str, Any] | None] = DEFAULT_TURN_DETECTION

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
        image_detail: Literal["low", "high", "auto"] | None = DEFAULT_IMAGE_DETAIL,
        retry: RetryPolicy | None = None,
        keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
        max_session_duration: float | None = DEFAULT_MAX_SESSION_S,
        played_ms: p.PlayedMs | None = None,
        session_extra: dict[str, Any] | None = None,
        tool_timeout: float | None = 30.0,
        ice_servers: list[aiortc.RTCIceServer] | None = None,
        audio_backlog_s: float = 10.0,
        audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS,
    ) -> None:
        super().__init__(
            fps=fps,
            retry=retry,
            keepalive=keepalive,
            max_image_side=max_image_side,
            jpeg_quality=jpeg_quality,
            tool_timeout=tool_timeout,
        )
        if transport not in ("websocket", "webrtc"):
            raise ConfigurationError(
                f"transport must be 'websocket' or 'webrtc', got {transport!r}"
            )
        if image_detail not in ("low", "high", "auto", None):
            raise ConfigurationError(
                f"image_detail must be 'low', 'high', 'auto' or None, got {image_detail!r}"
            )
        if max_session_duration is not None and max_session_duration <= 0:
            raise ConfigurationError(
                f"max_session_duration must be > 0 seconds or None, got {max_session_duration!r}"
            )
        self.transport = transport
        self.ice_servers = ice_servers
        self.model = model
        self.max_session_duration = max_session_duration
        self._client = client
        self._owns_client = False
        self._base_url = base_url
        self._keys = ApiKeySource(
            self.provider_name, api_key, self.api_key_env, required=client is None
        )
        if instructions is not None:
            self.instructions = instructions
        settings = p.SessionSettings(
            model=model,
            instructions=self.instructions,
            voice=voice,
            turn_detection=(
                dict(self.default_turn_detection or {}) or None
                if turn_detection is _DEFAULT
                else turn_detection
            ),
            transcription_model=transcription_model,
            output_modalities=list(output_modalities or ["audio"]),
            extra=dict(session_extra or {}),
        )
        self._protocol = p.OpenAIProtocol(
            settings,
            provider=self.provider_name,
            media_audio=transport == "webrtc",
            played_ms=played_ms,
            audio_backlog_s=audio_backlog_s,
            audio_chunk_ms=audio_chunk_ms,
        )
        self._protocol.image_detail = image_detail
        if played_ms is None:  # an Agent's player knows what was really played
            self._protocol.response_played_ms = self._response_played_ms
        self._recycler: asyncio.Task[None] | None = None
        self._link_opened_at = 0.0

    # -- options as attributes (read by users and by the session settings) ----------------

    @property
    def protocol(self) -> p.OpenAIProtocol:
        return self._protocol

    @property
    def voice(self) -> str | None:
        return self._protocol.settings.voice

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        return self._protocol.settings.turn_detection

    @property
    def transcription_model(self) -> str | None:
        return self._protocol.settings.transcription_model

    @property
    def output_modalities(self) -> list[Literal["audio", "text"]]:
        return list(self._protocol.settings.output_modalities)

    @property
    def session_extra(self) -> dict[str, Any]:
        return dict(self._protocol.settings.extra)

    def settings(self) -> p.SessionSettings:
        """The session settings a new connection gets (instructions and tools current)."""
        s = self._protocol.settings
        s.instructions = self.instructions
        s.tools = self.tools.schemas()
        return s

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The conversation items a new connection would be given."""
        return list(self._protocol.history)

    def _session_description(self) -> dict[str, Any]:
        return self.settings().to_session()

    def _capabilities(self) -> dict[str, Any]:
        return {"transport": self.transport}

    def _response_played_ms(self, response_id: str) -> float | None:
        position = self.playback_position
        return position(response_id) if position is not None else None

    # -- the SDK client and links ---------------------------------------------------------

    async def _client_for_connect(self) -> openai.AsyncOpenAI:
        """The SDK client: the one given, else one per key (a key function: one per connect)."""
        if self._client is not None and not self._keys.is_function:
            return self._client
        key = await self._keys.get()
        old, owned = self._client, self._owns_client
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=self._base_url or self.default_base_url
        )
        self._owns_client = True
        if old is not None and owned:
            await old.close()
        return self._client

    async def _open_link(self) -> Link:
        self.settings()  # instructions and tools as they are now
        client = await self._client_for_connect()
        link: Link
        if self.transport == "webrtc":
            conn = await WebRTCConnection.open(
                client,
                self._protocol.settings.to_session(),
                self._on_track_audio,
                ice_servers=self.ice_servers,
            )
            link = _WebRTCLink(conn)
        else:
            manager = client.realtime.connect(
                model=self.model,
                # Passed through to websockets: the runtime's keepalive pings instead of the
                # library's, and a server event's size is bounded (the SDK's default is not).
                # No permessage-deflate: a bounded size turns it on by default, and it spends
                # CPU on both sides squeezing base64 audio and JPEG that barely compress.
                websocket_connection_options=cast(
                    Any,
                    {"ping_interval": None, "max_size": MAX_MESSAGE_BYTES, "compression": None},
                ),
            )
            link = _WebSocketLink(await manager.enter())
        self._link_opened_at = time.monotonic()
        return link

    def _on_track_audio(self, pcm_24k: bytes) -> None:
        """WebRTC: the model's voice from the remote track, handed on at once."""
        self._protocol.track_audio(pcm_24k)
        if self._runtime is not None:
            self._runtime.flush_soon()

    async def connect(self) -> None:
        await super().connect()
        if self.max_session_duration and self._recycler is None:
            self._recycler = self._tasks.spawn(self._recycle_loop(), "recycle")

    async def close(self) -> None:
        await super().close()
        self._recycler = None
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.close()

    async def _recycle_loop(self) -> None:
        """Replace the connection between replies before ``max_session_duration``."""
        assert self.max_session_duration is not None
        while True:
            await asyncio.sleep(min(1.0, self.max_session_duration / 4))
            runtime = self._runtime
            age = time.monotonic() - self._link_opened_at
            if (
                runtime is not None
                and age >= self.max_session_duration
                and not self._protocol.response_active
                and runtime.connected
            ):
                self._link_opened_at = time.monotonic()
                runtime.request_switch(f"session age {age:.0f} s")

    async def _encode_frame(self, frame: av.VideoFrame) -> bytes:
        jpeg = await super()._encode_frame(frame)
        limit = _data_channel_limit(self._runtime)
        side = self.max_image_side
        detail = self._protocol.image_detail
        while limit and len(p.dumps(image_item(jpeg, detail=detail))) > limit and side > 64:
            side //= 2  # a data channel message has a size limit: send a smaller frame
            jpeg = await asyncio.to_thread(encode_jpeg, frame, self.jpeg_quality, side)
        return jpeg

    @property
    def image_detail(self) -> str | None:
        """``detail`` of the frames' ``input_image`` parts (None: left out, i.e. "auto")."""
        return self._protocol.image_detail

    def _frame_image_tokens(self, jpeg: bytes) -> int:
        """OpenAI's published vision rule at the JPEG's own size and ``image_detail``."""
        width, height = jpeg_size(jpeg)
        return openai_image_tokens(width, height, self._protocol.image_detail)

    # -- session control --------------------------------------------------------------------

    async def _update_session(self) -> None:
        self.settings()
        self._protocol.update_session()
        await self._flush()

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
        s = self._protocol.settings
        if voice is not _DEFAULT and voice != s.voice and self._protocol.audio_produced:
            # OpenAI Realtime docs (session.update): the voice cannot be changed once the
            # model has responded with audio in the session.
            raise ConfigurationError(
                f"{self.provider_name}: the voice cannot change from {s.voice!r} to {voice!r} "
                "once the session has produced audio"
            )
        if voice is not _DEFAULT:
            s.voice = voice
        if turn_detection is not _DEFAULT:
            s.turn_detection = turn_detection
        if output_modalities is not None:
            s.output_modalities = list(output_modalities)
        if transcription_model is not _DEFAULT:
            s.transcription_model = transcription_model
        await self._update_session()

    async def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        """Cut an assistant item's audio at ``audio_end_ms`` (what the user really heard)."""
        self._protocol.truncate(item_id, audio_end_ms, content_index)
        await self._flush()

    async def commit_audio(self) -> None:
        """End the user's turn (when ``turn_detection`` is None)."""
        self._protocol.commit_audio()
        await self._flush()

    async def clear_audio(self) -> None:
        self._protocol.clear_audio()
        await self._flush()


def _data_channel_limit(runtime: ConnectionRuntime | None) -> int:
    link = runtime.link if runtime is not None else None
    return link.conn.max_message_size if isinstance(link, _WebRTCLink) else 0


class _WebSocketLink(Link):
    """The SDK's WebSocket connection as a runtime link."""

    def __init__(self, conn: AsyncRealtimeConnection) -> None:
        self.conn = conn

    def _ws(self) -> Any:
        # The SDK keeps the websockets connection here; used only for ping and abort.
        return getattr(self.conn, "_connection", None)

    async def send(self, message: Any) -> None:
        _check_open(self._ws())
        # Our messages are plain JSON already in the API's own names, which the SDK's typed
        # ``send`` would walk through its transform first (~10% of a session's event loop).
        await self.conn.send_raw(dumps(message))

    async def recv(self) -> Any:
        return json_event(await self.conn.recv_bytes())

    async def ping(self) -> Awaitable[object] | None:
        return await ping_websocket(self._ws())

    async def close(self) -> None:
        await self.conn.close()

    def abort(self) -> None:
        abort_websocket(self._ws())

    @property
    def backlog_bytes(self) -> int:
        return websocket_backlog(self._ws())


class _WebRTCLink(Link):
    """A WebRTC call as a runtime link: events on the data channel, audio on tracks.

    It has no pings of its own: ICE consent checks watch the path."""

    def __init__(self, conn: WebRTCConnection) -> None:
        self.conn = conn

    async def send(self, message: Any) -> None:
        if isinstance(message, p.MediaAudio):
            self.conn.audio_out.write(PcmData.from_bytes(message.pcm, p.AUDIO_RATE, 1, "s16"))
            return
        await self.conn.send(message)

    async def recv(self) -> Any:
        return json_event(await self.conn.recv_bytes())

    @property
    def backlog_bytes(self) -> int:
        return self.conn.buffered_bytes

    async def close(self) -> None:
        await self.conn.close()
