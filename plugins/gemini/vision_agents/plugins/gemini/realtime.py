"""Gemini Live through the official ``google-genai`` SDK: client, link and options.

Protocol decisions live in ``protocol.py`` (``GeminiProtocol``); reconnection (a goAway or a
lost socket resumes with the newest handle, make-before-break), keepalive and close order in
the core ``ConnectionRuntime``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar

from google import genai
from google.genai import types as genai_types

from vision_agents.core.errors import ConfigurationError, ProtocolViolation, UnsupportedFeature
from vision_agents.core.llm.image_tokens import gemini_frame_tokens
from vision_agents.core.llm.protocol_realtime import ProtocolRealtime
from vision_agents.core.llm.runtime import (
    DEFAULT_KEEPALIVE,
    ApiKey,
    ApiKeySource,
    Keepalive,
    Link,
    LinkClosed,
    RetryPolicy,
    abort_websocket,
    ping_websocket,
    websocket_backlog,
)
from vision_agents.core.llm.runtime import (
    check_websocket_open as _check_open,
)
from vision_agents.plugins.gemini import protocol
from vision_agents.plugins.gemini.protocol import SessionSettings

logger = logging.getLogger(__name__)

DEFAULT_AUDIO_CHUNK_MS = 100
"""The user's audio goes out in 100 ms ``realtimeInput`` messages, not one a 20 ms frame: a
fifth of the messages (each is JSON and base64 on both sides). Google's own web console sends
2048 samples at 16 kHz (128 ms) a message; a phrase's end is heard at most 80 ms later (a
chunk not filled within its time goes out as it is)."""

DEFAULT_MODEL = "gemini-3.8-live"
"""The current GA Live model with no shutdown date announced (Gemini API docs, "Gemini
deprecations"); the 2.5 native-audio previews it replaces are scheduled for shutdown."""
API_KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")

__all__ = ["API_KEY_ENV", "DEFAULT_AUDIO_CHUNK_MS", "DEFAULT_MODEL", "ApiKey", "Realtime"]


class Realtime(ProtocolRealtime):
    """A Gemini Live session that takes audio, video and text and speaks back."""

    provider_name: ClassVar[str] = "gemini_realtime"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        fps: float = 1,
        api_key: ApiKey | None = None,
        client: genai.Client | None = None,
        *,
        http_options: genai_types.HttpOptions | None = None,
        voice: str | None = None,
        max_image_side: int = 1024,
        jpeg_quality: int = 80,
        response_modalities: tuple[str, ...] = ("AUDIO",),
        input_transcription: bool = True,
        output_transcription: bool = True,
        context_compression: bool = True,
        compression_trigger_tokens: int | None = None,
        compression_target_tokens: int | None = None,
        retry: RetryPolicy | None = None,
        keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
        tool_timeout: float | None = 30.0,
        session_extra: dict[str, Any] | None = None,
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
        self._keys = ApiKeySource(self.provider_name, api_key, API_KEY_ENV, required=client is None)
        self.http_options = http_options
        self.model = model
        self.client: genai.Client | None = client
        modalities = tuple(m.upper() for m in response_modalities)
        unknown = [m for m in modalities if m not in ("AUDIO", "TEXT")]
        if unknown or not modalities:
            raise ConfigurationError(
                f"response_modalities must be 'AUDIO' and/or 'TEXT', got {response_modalities!r}"
            )
        self.settings = SessionSettings(
            response_modalities=modalities,
            voice=voice,
            input_transcription=input_transcription,
            output_transcription=output_transcription,
            context_compression=context_compression,
            compression_trigger_tokens=compression_trigger_tokens,
            compression_target_tokens=compression_target_tokens,
            extra=dict(session_extra or {}),
        )
        try:
            gemini_frame_tokens(self.media_resolution)
        except ValueError as exc:
            raise ConfigurationError(f"session_extra: {exc}") from None
        try:
            self._protocol = protocol.GeminiProtocol(
                audio_backlog_s=audio_backlog_s, audio_chunk_ms=audio_chunk_ms
            )
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    @property
    def protocol(self) -> protocol.GeminiProtocol:
        return self._protocol

    @property
    def resumption_handle(self) -> str | None:
        return self._protocol.handle

    def _session_description(self) -> dict[str, Any]:
        return {"model": self.model, "instructions": self.instructions}

    @property
    def media_resolution(self) -> str | None:
        """``session_extra["media_resolution"]`` as a name (None: the service's default)."""
        value = self.settings.extra.get("media_resolution")
        if value is None:
            return None
        return str(getattr(value, "value", value))

    def _frame_image_tokens(self, jpeg: bytes) -> int:
        """Google's per-frame count at the session's media resolution (not by pixel size)."""
        return gemini_frame_tokens(self.media_resolution)

    # -- the SDK client and links -------------------------------------------------------------

    async def _client_for_connect(self) -> genai.Client:
        """The SDK client: the one given, else one per key (a key function: one per connect)."""
        if self.client is not None and not self._keys.is_function:
            return self.client
        key = await self._keys.get()
        self.client = genai.Client(api_key=key, http_options=self.http_options)
        return self.client

    async def _open_link(self) -> Link:
        client = await self._client_for_connect()
        config = self._protocol.connect_config(
            self.settings,
            instructions=self.instructions,
            tools=self.tools.schemas(),
            # Vertex AI resumes transparently: each handle names the last message its state
            # holds, so exactly the audio after it is sent again.
            transparent=bool(client.vertexai),
        )
        stack = contextlib.AsyncExitStack()
        try:
            session = await stack.enter_async_context(
                client.aio.live.connect(model=self.model, config=config)
            )
        except BaseException:
            self._protocol.connect_failed()
            await stack.aclose()
            raise
        return _LiveLink(session, stack)

    # -- session control ----------------------------------------------------------------------
    # Gemini Live fixes instructions, tools and voice at setup, so changing them opens a new
    # connection with the new settings, resuming with the newest handle (make-before-break).

    async def _restart(self, reason: str) -> None:
        runtime = self._runtime
        if runtime is None:
            return  # not connected: the settings apply at connect
        # Wait (bounded) for a resumable point so the new connection resumes with everything.
        await runtime.switch(reason, within_s=self.retry.connect_timeout)

    async def update_instructions(self, instructions: str) -> None:
        """New system instructions: a new connection resumes the session with them."""
        self.instructions = instructions
        await self._restart("new instructions")

    async def update_tools(self) -> None:
        """Send the registry's tools: a new connection resumes the session with them."""
        await self._restart("new tools")

    async def update_options(
        self, *, voice: str | None = None, response_modalities: tuple[str, ...] | None = None
    ) -> None:
        """Change the voice or reply modalities: a new connection resumes with them."""
        changes: dict[str, Any] = {}
        if voice is not None:
            changes["voice"] = voice
        if response_modalities is not None:
            changes["response_modalities"] = tuple(response_modalities)
        if not changes:
            raise ConfigurationError(
                "update_options: pass voice=... and/or response_modalities=..."
            )
        self.settings = dataclasses.replace(self.settings, **changes)
        await self._restart("new options")

    async def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        raise UnsupportedFeature(
            self.provider_name,
            "truncate",
            "Gemini Live has no conversation items to cut; an interruption ends the turn",
        )

    async def commit_audio(self) -> None:
        raise UnsupportedFeature(
            self.provider_name, "commit_audio", "turns are detected by the service"
        )

    async def clear_audio(self) -> None:
        raise UnsupportedFeature(
            self.provider_name, "clear_audio", "audio sent is consumed as it arrives"
        )


class _LiveLink(Link):
    """One ``client.aio.live.connect`` session as a runtime link."""

    def __init__(self, session: genai.live.AsyncSession, stack: contextlib.AsyncExitStack) -> None:
        self.session = session
        self._stack = stack
        self._messages: AsyncIterator[genai_types.LiveServerMessage] | None = None

    async def send(self, message: Any) -> None:
        _check_open(self._ws())
        s = self.session
        if isinstance(message, protocol.RealtimeInput):
            if message.audio is not None:
                await s.send_realtime_input(audio=message.audio)
            if message.video is not None:
                await s.send_realtime_input(video=message.video)
        elif isinstance(message, protocol.ClientContent):
            await s.send_client_content(turns=message.turns, turn_complete=message.turn_complete)
        elif isinstance(message, protocol.ToolResponse):
            await s.send_tool_response(function_responses=list(message.responses))
        else:
            raise TypeError(f"not a Gemini message: {message!r}")

    async def _stream(self) -> AsyncIterator[genai_types.LiveServerMessage]:
        while True:  # the SDK's receive() ends after each turnComplete
            async for message in self.session.receive():
                yield message

    async def recv(self) -> Any:
        if self._messages is None:
            self._messages = self._stream()
        try:
            return await anext(self._messages)
        except StopAsyncIteration:
            raise LinkClosed("the session ended") from None
        except ValueError as exc:  # one message the SDK could not parse; the socket is fine
            self._messages = None
            raise ProtocolViolation(f"a server message the SDK could not parse: {exc}") from exc

    def _ws(self) -> Any:
        # The SDK keeps the websockets connection here; used only for ping and abort.
        return getattr(self.session, "_ws", None)

    async def ping(self) -> Awaitable[object] | None:
        return await ping_websocket(self._ws())

    async def close(self) -> None:
        messages, self._messages = self._messages, None
        if messages is not None:
            with contextlib.suppress(Exception):
                await messages.aclose()  # type: ignore[attr-defined]
        await self._stack.aclose()

    def abort(self) -> None:
        abort_websocket(self._ws())

    @property
    def backlog_bytes(self) -> int:
        return websocket_backlog(self._ws())
