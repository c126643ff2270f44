"""Gemini Live over the official ``google-genai`` SDK: the socket, reconnects and tasks.

The protocol mapping lives in ``protocol.py``; this module owns one background task that keeps
a session open: it connects, receives, and on ``goAway`` or an unexpected close resumes with
the newest handle (bounded retries with exponential backoff).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import av
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types
from websockets.exceptions import ConnectionClosed

from vision_agents.core.audio import PcmData
from vision_agents.core.audio.resampler import Resampler
from vision_agents.core.llm.realtime import Realtime as BaseRealtime
from vision_agents.core.llm.realtime import UnsupportedFeature
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.core.utils.video import encode_jpeg
from vision_agents.plugins.gemini import protocol
from vision_agents.plugins.gemini.protocol import SessionSettings

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
_SEND_ERRORS = (ConnectionClosed, genai_errors.APIError, OSError)

Send = Callable[[genai.live.AsyncSession], Awaitable[None]]
ApiKey = str | Callable[[], str | Awaitable[str]]
"""A key, or a sync/async function returning one, called at every (re)connect (rotating keys)."""


class Realtime(BaseRealtime):
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
        max_side: int = 1024,
        jpeg_quality: int = 80,
        response_modalities: tuple[str, ...] = ("AUDIO",),
        input_transcription: bool = True,
        output_transcription: bool = True,
        compression_trigger_tokens: int | None = None,
        compression_target_tokens: int | None = None,
        max_retries: int = 5,
        retry_backoff: float = 0.25,
        connect_timeout: float = 15.0,
        go_away_drain_s: float = 0.1,
        tool_timeout: float | None = 30.0,
        config_extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(fps=fps, tool_timeout=tool_timeout)
        self._key_function = api_key if callable(api_key) else None
        self.http_options = http_options
        if client is None and self._key_function is None:
            key = (
                (api_key if isinstance(api_key, str) else None)
                or os.environ.get("GOOGLE_API_KEY")
                or os.environ.get("GEMINI_API_KEY")
            )
            if not key:
                raise ValueError(
                    "Gemini needs an API key: pass api_key=..., or set GOOGLE_API_KEY or "
                    "GEMINI_API_KEY, or pass client=genai.Client(...)"
                )
            client = genai.Client(api_key=key, http_options=http_options)
        if max_side <= 0 or not 1 <= jpeg_quality <= 100:
            raise ValueError(
                f"max_side must be > 0 and jpeg_quality 1-100, got {max_side}, {jpeg_quality}"
            )
        self.model = model
        self.client: genai.Client | None = client
        self.max_side = max_side
        self.jpeg_quality = jpeg_quality
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.connect_timeout = connect_timeout
        self.go_away_drain_s = go_away_drain_s
        self.settings = SessionSettings(
            response_modalities=response_modalities,
            voice=voice,
            input_transcription=input_transcription,
            output_transcription=output_transcription,
            compression_trigger_tokens=compression_trigger_tokens,
            compression_target_tokens=compression_target_tokens,
            extra=dict(config_extra or {}),
        )
        self.translator = protocol.LiveTranslator()
        self.reconnects = 0
        """Sessions resumed after a goAway or a lost connection."""
        self._session: genai.live.AsyncSession | None = None
        self._session_changed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._resamplers: dict[str | None, Resampler] = {}
        self._unconfirmed: list[ToolResult] = []
        self._closing = False
        self._restarting = False
        self._reply_waiters: list[asyncio.Future[str]] = []
        self._reply_text: list[str] = []

    @property
    def resumption_handle(self) -> str | None:
        return self.translator.handle

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the session; raises if the first connection fails."""
        if self._runner is not None:
            return
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(first), name=f"{self.provider_name}:session"
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await first
        except BaseException:
            await cancel_and_wait(self._runner)
            self._runner = None
            raise
        self._emit_connected_event(
            session_config={"model": self.model, "instructions": self.instructions},
            capabilities={"audio": True, "video": True, "text": True, "tools": True},
        )

    async def close(self) -> None:
        self._closing = True
        runner, self._runner = self._runner, None
        await cancel_and_wait(runner)
        await self._close_base()
        self._session = None
        if self._connected:
            self._emit_disconnected_event(reason="closed", was_clean=True)

    async def _run(self, first: asyncio.Future[None]) -> None:
        failures = 0
        while True:
            config = protocol.build_config(
                self.settings,
                instructions=self.instructions,
                tools=self.tools.schemas(),
                handle=self.translator.handle,
            )
            try:
                client = await self._client_for_connect()
                async with client.aio.live.connect(model=self.model, config=config) as session:
                    failures = 0
                    await self._set_session(session)
                    if not first.done():
                        first.set_result(None)
                    else:
                        self.reconnects += 1
                        await self._resend_unconfirmed()
                    reason = await self._receive(session)
                    logger.info("gemini: %s; resuming the session", reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not first.done():
                    first.set_exception(exc)
                    return
                if self._restarting:  # our own restart (new settings): resume at once
                    self._restarting = False
                    await self._set_session(None)
                    continue
                failures += 1
                if failures > self.max_retries:
                    self._emit_error_event(exc, context="connection lost; gave up reconnecting")
                    await self._set_session(None)
                    self._emit_disconnected_event(reason=str(exc), was_clean=False)
                    return
                if failures > 1:
                    # A handle the service refuses would fail every retry: start afresh.
                    self._emit_error_event(exc, context=f"reconnect attempt {failures} failed")
                    if failures > 2:
                        self.translator.handle = None
                logger.info("gemini: connection lost (%s); reconnecting", exc)
                await self._set_session(None)
                await asyncio.sleep(min(self.retry_backoff * 2 ** (failures - 1), 5.0))
            finally:
                if self._session is not None:
                    await self._set_session(None)

    async def _client_for_connect(self) -> genai.Client:
        """The SDK client for a new connection: a key function gives a fresh one each time."""
        if self._key_function is None:
            assert self.client is not None
            return self.client
        key = self._key_function()
        if not isinstance(key, str):
            key = await key
        if not key:
            raise ValueError(f"gemini: the api_key function returned {key!r}")
        self.client = genai.Client(api_key=key, http_options=self.http_options)
        return self.client

    async def _set_session(self, session: genai.live.AsyncSession | None) -> None:
        self._session = session
        self._session_changed.set()
        self._session_changed = asyncio.Event()

    async def _receive(self, session: genai.live.AsyncSession) -> str:
        """Handle messages until the server says goAway; a closed socket raises."""
        while True:
            async for message in session.receive():
                for event in self.translator.feed(message):
                    if isinstance(event, protocol.GoAway):
                        await self._drain(session)
                        return f"goAway (time left {event.time_left})"
                    await self._dispatch(event)

    async def _drain(self, session: genai.live.AsyncSession) -> None:
        """After goAway: send nothing more here, but take in what is still on its way
        (a newer resumption handle, a tool call) for ``go_away_drain_s``."""
        await self._set_session(None)
        try:
            async with asyncio.timeout(self.go_away_drain_s):
                while True:
                    async for message in session.receive():
                        for event in self.translator.feed(message):
                            if not isinstance(event, protocol.GoAway):
                                await self._dispatch(event)
        except (TimeoutError, *_SEND_ERRORS):
            pass

    async def _dispatch(self, event: protocol.Event) -> None:
        if self._reply_waiters and (
            isinstance(event, protocol.AgentTranscript)
            or (isinstance(event, protocol.TextOut) and not event.is_complete)
        ):
            self._reply_text.append(event.text)
        elif isinstance(event, protocol.ResponseDone) and self._reply_waiters:
            waiter = self._reply_waiters.pop(0)
            if not waiter.done():
                waiter.set_result("".join(self._reply_text))
            self._reply_text.clear()
        if isinstance(event, protocol.AudioOut):
            self._emit_audio_output_event(event.pcm, response_id=event.response_id)
        elif isinstance(event, protocol.TextOut):
            self._emit_response_event(
                event.text, response_id=event.response_id, is_complete=event.is_complete
            )
        elif isinstance(event, protocol.ResponseDone):
            self._emit_audio_output_done_event(
                response_id=event.response_id, interrupted=event.interrupted
            )
        elif isinstance(event, protocol.UserTranscript):
            self._emit_user_speech_transcription(event.text)
        elif isinstance(event, protocol.AgentTranscript):
            self._emit_agent_speech_transcription(event.text)
        elif isinstance(event, protocol.ToolCall):
            self._start_tool_call(event.call_id, event.name, event.arguments)
        elif isinstance(event, protocol.ToolCancel):
            for call_id in event.call_ids:
                await self._cancel_tool_call(call_id)
        elif isinstance(event, protocol.HandleUpdate):
            # The service has checkpointed everything it received before this handle.
            self._unconfirmed.clear()

    # -- sending ------------------------------------------------------------------------------

    async def _send_now(self, send: Send) -> bool:
        """Send on the live session if there is one; False (dropped) while reconnecting."""
        session = self._session
        if session is None:
            return False
        try:
            await send(session)
        except _SEND_ERRORS:
            return False
        return True

    async def _send_reliably(self, send: Send, what: str) -> None:
        """Send, waiting through reconnects (for text turns and tool results)."""
        while not self._closing:
            changed = self._session_changed
            if self._session is not None and await self._send_now(send):
                return
            if self._runner is None or self._runner.done():
                raise ConnectionError(f"gemini session is closed; could not send {what}")
            await changed.wait()

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        key = participant.session_id if participant is not None else None
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = Resampler(protocol.INPUT_RATE, 1, "s16")
        audio = resampler.process(pcm)
        self._emit_audio_input_event(pcm)
        if len(audio) == 0:
            return
        blob = protocol.audio_blob(audio)
        await self._send_now(lambda s: s.send_realtime_input(audio=blob))

    async def _send_video_frame(self, frame: av.VideoFrame) -> None:
        jpeg = encode_jpeg(frame, quality=self.jpeg_quality, max_side=self.max_side)
        blob = protocol.jpeg_blob(jpeg)
        await self._send_now(lambda s: s.send_realtime_input(video=blob))

    async def _send_text(self, text: str) -> None:
        turn = protocol.text_turn(text)
        await self._send_reliably(
            lambda s: s.send_client_content(turns=turn, turn_complete=True), "a text turn"
        )

    async def _send_tool_result(self, result: ToolResult) -> None:
        response = protocol.function_response(result)
        self._unconfirmed.append(result)
        await self._send_reliably(
            lambda s: s.send_tool_response(function_responses=[response]),
            f"the result of tool call {result.call_id}",
        )

    async def _resend_unconfirmed(self) -> None:
        """Results sent after the last handle may have died with the socket: send them again."""
        pending = list(self._unconfirmed)
        if not pending:
            return
        responses = [protocol.function_response(r) for r in pending]
        await self._send_now(lambda s: s.send_tool_response(function_responses=responses))

    # -- session control ----------------------------------------------------------------------
    # Gemini Live fixes instructions, tools and voice at setup, so changing them restarts the
    # session, resuming it with the newest handle: the conversation carries over.

    async def _restart(self) -> None:
        """Reconnect with the current settings (resuming); returns once the new session is up."""
        session = self._session
        if self._runner is None or self._runner.done() or session is None:
            return  # not connected: the settings apply at connect
        self._restarting = True
        try:
            async with asyncio.timeout(self.connect_timeout):
                await session.close()
                while self._session is None or self._session is session:
                    await self._session_changed.wait()
        finally:
            self._restarting = False

    async def update_instructions(self, instructions: str) -> None:
        """New system instructions: the session restarts and resumes (Gemini fixes them at setup)."""
        self.instructions = instructions
        await self._restart()

    async def update_tools(self) -> None:
        """Send the registry's tools: the session restarts and resumes with them."""
        await self._restart()

    async def update_options(
        self, *, voice: str | None = None, response_modalities: tuple[str, ...] | None = None
    ) -> None:
        """Change the voice or reply modalities: the session restarts and resumes."""
        changes: dict[str, Any] = {}
        if voice is not None:
            changes["voice"] = voice
        if response_modalities is not None:
            changes["response_modalities"] = tuple(response_modalities)
        if not changes:
            raise ValueError("update_options: pass voice=... and/or response_modalities=...")
        self.settings = dataclasses.replace(self.settings, **changes)
        await self._restart()

    def generate_reply(
        self, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """Ask for a turn now: ``instructions`` go as a user text turn (Gemini has no
        per-response instructions); the future gets the next completed turn's text or
        transcript, or TimeoutError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        self._reply_waiters.append(fut)

        def expire() -> None:
            if fut in self._reply_waiters:
                self._reply_waiters.remove(fut)
            if not fut.done():
                fut.set_exception(TimeoutError(f"gemini: no reply within {timeout} s"))

        handle = loop.call_later(timeout, expire)
        fut.add_done_callback(lambda _f: handle.cancel())
        turns = protocol.text_turn(instructions) if instructions else None
        self._tasks.spawn(
            self._send_reliably(
                lambda s: s.send_client_content(turns=turns, turn_complete=True), "a reply request"
            ),
            "generate_reply",
        )
        return fut

    async def interrupt(self) -> None:
        raise UnsupportedFeature(
            self.provider_name,
            "interrupt",
            "Gemini Live stops a reply only when its own activity detection hears the user",
        )

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


__all__ = ["DEFAULT_MODEL", "Realtime"]
