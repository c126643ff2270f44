"""`ProtocolRealtime`: a `Realtime` made of a protocol object and links, run by one runtime.

Every built-in provider is one of these. The provider plugin only builds its SDK client, opens
a ``Link`` and maps its constructor options; audio resampling, JPEG encoding off the event loop,
tool calls, reply futures, reconnection and the event mapping are written once, here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from abc import abstractmethod
from typing import Any

import av

from vision_agents.core.audio import PcmData
from vision_agents.core.audio.resampler import Resampler
from vision_agents.core.errors import (
    ConfigurationError,
    NotConnectedError,
    ProviderError,
    RealtimeConnectionError,
)
from vision_agents.core.llm import protocol as ev
from vision_agents.core.llm.events import RealtimeReconnectedEvent, Usage, UsageEvent
from vision_agents.core.llm.protocol import RealtimeProtocol
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.llm.runtime import (
    DEFAULT_KEEPALIVE,
    ConnectionRuntime,
    Keepalive,
    Link,
    RetryPolicy,
)
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.types import Participant
from vision_agents.core.utils.video import encode_jpeg

logger = logging.getLogger(__name__)

MAX_FRAMES_IN_FLIGHT = 2
"""Frames sent but not yet confirmed by the provider at which new frames are skipped."""

NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006})
"""Close codes that say nothing went wrong on purpose (done, going away, no code, dropped)."""


class ProtocolRealtime(Realtime):
    """A realtime session whose protocol decisions live in a ``RealtimeProtocol``.

    Options shared by every provider (same names everywhere): ``retry`` (``RetryPolicy``),
    ``keepalive`` (``Keepalive``; None turns pings off), ``max_image_side`` and
    ``jpeg_quality`` for video frames, ``audio_backlog_s`` (user audio kept across a switch).
    """

    def __init__(
        self,
        fps: float = 1,
        *,
        retry: RetryPolicy | None = None,
        keepalive: Keepalive | None = DEFAULT_KEEPALIVE,
        max_image_side: int = 1024,
        jpeg_quality: int = 80,
        tool_timeout: float | None = 30.0,
    ) -> None:
        super().__init__(fps=fps, tool_timeout=tool_timeout)
        if not isinstance(max_image_side, int) or max_image_side < 16:
            raise ConfigurationError(f"max_image_side must be an int >= 16, got {max_image_side!r}")
        if not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
            raise ConfigurationError(f"jpeg_quality must be an int 1-100, got {jpeg_quality!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry or RetryPolicy()
        self.keepalive = keepalive
        self.max_image_side = max_image_side
        self.jpeg_quality = jpeg_quality
        self._runtime: ConnectionRuntime | None = None
        self._resamplers: dict[str, Resampler] = {}
        self._replies: dict[str, asyncio.Future[str]] = {}
        self._closed_reconnects = 0
        self._last_frame_bytes = 0
        self._audio_tail: asyncio.TimerHandle | None = None
        self.usage = Usage()
        """Tokens used by this session so far, as the provider reported them; its
        ``input_image_estimated`` is ours (``image_tokens_sent``), kept beside them."""

    # -- what a provider supplies --------------------------------------------------------

    @property
    @abstractmethod
    def protocol(self) -> RealtimeProtocol:
        """The provider's protocol object (lives as long as this session)."""

    @abstractmethod
    async def _open_link(self) -> Link:
        """Open one connection with the current settings (and resumption state)."""

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def reconnects(self) -> int:
        """Connections replaced after the first (drops, goAways, recycles, dead links)."""
        live = self._runtime.reconnects if self._runtime is not None else 0
        return self._closed_reconnects + live

    async def connect(self) -> None:
        if self._runtime is not None:
            return
        runtime = ConnectionRuntime(
            self.provider_name,
            self.protocol,
            self._open_link,
            self._dispatch,
            retry=self.retry,
            keepalive=self.keepalive,
        )
        self._runtime = runtime  # media callbacks during the first connect can flush
        try:
            await runtime.start()
        except BaseException:
            self._runtime = None
            await runtime.close()
            raise
        self._emit_connected_event(
            session_config=self._session_description(), capabilities=self._capabilities()
        )

    async def close(self) -> None:
        if self._audio_tail is not None:
            self._audio_tail.cancel()
            self._audio_tail = None
        runtime, self._runtime = self._runtime, None
        await self._close_base()
        if runtime is not None:
            await runtime.close()
            self._closed_reconnects += runtime.reconnects
        for fut in self._replies.values():
            if not fut.done():
                fut.cancel()
        self._replies.clear()
        if self._connected:
            self._emit_disconnected_event(reason="closed", was_clean=True)

    def _session_description(self) -> dict[str, Any]:
        return {"instructions": self.instructions}

    def _capabilities(self) -> dict[str, Any]:
        return {"audio": True, "video": True, "text": True, "tools": True}

    def _live_runtime(self) -> ConnectionRuntime:
        runtime = self._runtime
        if runtime is None:
            raise NotConnectedError(f"{self.provider_name}: not connected; call connect() first")
        if runtime.failed is not None:
            raise RealtimeConnectionError(
                f"{self.provider_name}: the connection was lost for good: {runtime.failed}"
            )
        return runtime

    async def _flush(self) -> None:
        runtime = self._runtime
        if runtime is not None:
            await runtime.flush()

    # -- media ---------------------------------------------------------------------------

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        """User audio (any rate or channels): resampled per participant, kept across switches."""
        key = participant.session_id if participant is not None else ""
        resampler = self._resamplers.get(key)
        if resampler is None:
            resampler = self._resamplers[key] = Resampler(self.protocol.input_rate, 1, "s16")
        out = resampler.process(pcm)
        self._emit_audio_input_event(pcm)
        if self._runtime is None or not len(out):
            return
        self.protocol.send_audio(out.to_bytes())
        if self.protocol.audio_pending:
            self._watch_audio_tail()
        await self._flush()

    def _watch_audio_tail(self) -> None:
        """User audio gathered into chunks (``audio_chunk_ms``) must not wait for more that
        never comes (a clip that ends, a muted microphone): once a whole chunk time passes
        with no chunk sent, what is gathered goes out."""
        if self._audio_tail is not None:
            return
        sent = self.protocol.audio_messages

        def check() -> None:
            self._audio_tail = None
            runtime = self._runtime
            if runtime is None or not self.protocol.audio_pending:
                return
            if self.protocol.audio_messages == sent:
                self.protocol.flush_audio()
                runtime.flush_soon()
            else:
                self._watch_audio_tail()

        delay = max(self.protocol.audio_chunk_s, 0.02)
        self._audio_tail = asyncio.get_running_loop().call_later(delay, check)

    def forget_participant(self, participant: Participant) -> None:
        """Drop per-participant state (the audio resampler) when someone leaves."""
        self._resamplers.pop(participant.session_id, None)

    @property
    def participants_with_state(self) -> int:
        return len(self._resamplers)

    async def _encode_frame(self, frame: av.VideoFrame) -> bytes:
        """JPEG for the model, encoded off the event loop."""
        return await asyncio.to_thread(encode_jpeg, frame, self.jpeg_quality, self.max_image_side)

    async def _send_video_frame(self, frame: av.VideoFrame) -> bool:
        # A frame queued behind others reaches the model stale. Skip while more than a frame's
        # worth still waits on our side of the link, or while the provider has not confirmed
        # the frames before it (where it confirms them): a backlog builds below us too.
        link = self._runtime.link if self._runtime is not None else None
        if link is not None and (
            self.protocol.frames_in_flight >= MAX_FRAMES_IN_FLIGHT
            or 0 < self._last_frame_bytes < link.backlog_bytes
        ):
            self.frames_skipped += 1
            return False
        jpeg = await self._encode_frame(frame)
        if self._runtime is None:
            return False
        was_connected = self.protocol.connected
        self.protocol.send_frame(jpeg)
        self._last_frame_bytes = len(jpeg) * 4 // 3  # as base64 on the wire
        if was_connected:
            self._count_image_tokens(self._frame_image_tokens(jpeg))
        await self._flush()
        return was_connected

    def _frame_image_tokens(self, jpeg: bytes) -> int:
        """Estimated input tokens of one frame as sent (providers with a published rule
        override this; see ``vision_agents.core.llm.image_tokens``)."""
        return 0

    def _count_image_tokens(self, tokens: int) -> None:
        self.image_tokens_sent += tokens
        estimated = self.usage.input_image_estimated + tokens
        self.usage = dataclasses.replace(self.usage, input_image_estimated=estimated)

    # -- turns and tools -----------------------------------------------------------------

    async def _send_text(self, text: str) -> None:
        self._live_runtime()
        self.protocol.send_text(text)
        await self._flush()

    async def _send_tool_result(self, result: ToolResult) -> None:
        self._live_runtime()
        self.protocol.send_tool_result(result)
        await self._flush()

    def generate_reply(
        self, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """Ask the model to respond now (after the reply in progress, if any); the future gets
        the reply's text or transcript, or ``TimeoutError``."""
        self._live_runtime()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        tag = uuid.uuid4().hex
        self._replies[tag] = fut

        def expire() -> None:
            self._replies.pop(tag, None)
            if not fut.done():
                fut.set_exception(
                    TimeoutError(f"{self.provider_name}: no reply within {timeout} s")
                )

        handle = loop.call_later(timeout, expire)
        fut.add_done_callback(lambda _f: handle.cancel())
        self.protocol.request_reply(instructions, tag)
        self._tasks.spawn(self._flush(), "generate_reply")
        return fut

    async def interrupt(self) -> None:
        """Stop the reply being spoken (the provider is told only what it needs)."""
        self._live_runtime()
        self.protocol.interrupt()
        await self._flush()

    # -- protocol events -> our typed events ---------------------------------------------

    async def _dispatch(self, events: list[ev.ProtocolEvent]) -> None:
        for event in events:
            if isinstance(event, ev.AudioOut):
                self._emit_audio_output_event(event.pcm, response_id=event.response_id)
            elif isinstance(event, ev.AudioDone):
                self._emit_audio_output_done_event(
                    response_id=event.response_id, interrupted=event.interrupted
                )
            elif isinstance(event, ev.TextOut):
                self._emit_response_event(
                    event.text,
                    response_id=event.response_id,
                    is_complete=event.is_complete,
                    conversation_item_id=event.item_id,
                )
            elif isinstance(event, ev.UserSpeechStarted):
                self.request_fresh_frame()  # what the user talks about is on screen now
            elif isinstance(event, ev.UserTranscript):
                self._emit_user_speech_transcription(event.text, original=event)
            elif isinstance(event, ev.AgentTranscript):
                self._emit_agent_speech_transcription(event.text, original=event)
            elif isinstance(event, ev.ToolCall):
                self._start_tool_call(event.call_id, event.name, event.arguments)
            elif isinstance(event, ev.ToolCancel):
                for call_id in event.call_ids:
                    await self._cancel_tool_call(call_id)
            elif isinstance(event, ev.ReplyFinished):
                self._finish_reply(event)
            elif isinstance(event, ev.ErrorReported):
                self._emit_error_event(event.error, context=event.context)
            elif isinstance(event, ev.ConnectionLost):
                self._on_connection_lost(event)
            elif isinstance(event, ev.UsageReported):
                self.usage = self.usage + event.usage
                self._emit(
                    UsageEvent(usage=event.usage, totals=self.usage, response_id=event.response_id)
                )
            elif isinstance(event, ev.Reconnected):
                # A planned switch is routine; a lost connection is news even once recovered.
                log = logger.info if event.planned else logger.warning
                log(
                    "%s: reconnected (%s; attempt %d; %.2f s without a connection; "
                    "%.2f s of user audio sent again, %.2f s dropped)",
                    self.provider_name,
                    event.reason,
                    event.attempt,
                    event.downtime_s,
                    event.audio_replayed_s,
                    event.audio_dropped_s,
                )
                self._emit(
                    RealtimeReconnectedEvent(
                        reason=event.reason,
                        planned=event.planned,
                        attempt=event.attempt,
                        downtime_s=round(event.downtime_s, 3),
                        audio_replayed_s=round(event.audio_replayed_s, 3),
                        audio_dropped_s=round(event.audio_dropped_s, 3),
                    )
                )

    def _finish_reply(self, event: ev.ReplyFinished) -> None:
        fut = self._replies.pop(event.tag, None) if event.tag else None
        if fut is not None and not fut.done():
            fut.set_result(event.text)

    def _on_connection_lost(self, event: ev.ConnectionLost) -> None:
        if not event.final:
            logger.info("%s: connection lost (%s); reconnecting", self.provider_name, event.reason)
            if event.code is not None and event.code not in NORMAL_CLOSE_CODES:
                # The provider ended the connection on purpose (a policy, a bad message, a
                # server error): say so, even though the session resumes.
                self._emit_error_event(
                    ProviderError(self.provider_name, str(event.code), event.reason),
                    context="the provider closed the connection; reconnecting",
                )
            return
        runtime = self._runtime
        cause = runtime.failed if runtime is not None and runtime.failed else None
        self._emit_error_event(
            RealtimeConnectionError(f"{self.provider_name}: {event.reason}"),
            context=f"connection lost; gave up reconnecting ({cause!r})",
        )
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(RealtimeConnectionError(event.reason))
        self._replies.clear()
        self._emit_disconnected_event(reason=event.reason, was_clean=False)
