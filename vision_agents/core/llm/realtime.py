"""`Realtime`: the base for speech-to-speech models that take live audio and video."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import aiortc
import av

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ConfigurationError, UnsupportedFeature
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioInputEvent,
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
    RealtimeConnectedEvent,
    RealtimeDisconnectedEvent,
    RealtimeErrorEvent,
    RealtimeFrameSentEvent,
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
    ToolCallCompletedEvent,
    ToolCallStartedEvent,
)
from vision_agents.core.llm.llm import OmniLLM
from vision_agents.core.llm.tools import ToolResult
from vision_agents.core.types import Participant
from vision_agents.core.utils.frame_selection import FrameSelector, SceneChange
from vision_agents.core.utils.video_forwarder import VideoForwarder

logger = logging.getLogger(__name__)

__all__ = ["Realtime", "UnsupportedFeature"]


class Realtime(OmniLLM, ABC):
    """A live session with a speech-to-speech model.

    Providers implement ``connect``, ``simple_audio_response`` and ``close``, and override the
    ``_send_*`` hooks for what they support (text, video frames, tool results). The base
    throttles video to ``fps``, runs tool calls in the background and emits typed events.
    """

    provider_name: ClassVar[str] = "realtime"

    def __init__(self, fps: float = 1, *, tool_timeout: float | None = 30.0) -> None:
        super().__init__(tool_timeout=tool_timeout)
        self._fps = _check_fps(fps)
        self._connected = False
        self._forwarder: VideoForwarder | None = None
        self._owns_forwarder = False
        self._tool_calls: dict[str, asyncio.Task[None]] = {}
        self._tool_outputs: dict[str, asyncio.Future[Any]] = {}
        self.playback_position: Callable[[str], float | None] | None = None
        """``response_id -> ms played`` (or None when unknown), set by whoever plays the audio
        (the Agent: its ``AudioOutputTrack.played_ms``); providers truncate barge-ins by it."""
        self.frames_sent = 0
        """Video frames handed to the model so far (what ``fps`` let through and it took)."""
        self.image_tokens_sent = 0
        """Estimated input tokens of those frames, each counted once at its encoded size by the
        provider's published rule (0 where a provider has none); the provider's own figure,
        which counts re-reads too, is ``usage.input_image`` where it reports usage."""
        # Content-aware by default: the thresholds sit in the middle of the range that meets
        # every target of benchmarks/video_cost.py --sweep (photos through VP8).
        self._frames = FrameSelector(SceneChange())
        self._change_unsent = False  # a change the link did not take: the next frame shows it
        self.frames_unchanged = 0
        """Frames ``fps`` let through that the ``frame_policy`` kept back (no change shown)."""
        self.frames_skipped = 0
        """Frames ``fps`` let through but not sent: the link still held the ones before them
        (a slow uplink or a busy provider), and a queued frame reaches the model stale."""

    # -- what every provider implements -------------------------------------------------

    @abstractmethod
    async def connect(self) -> None:
        """Open the provider session, then call ``_emit_connected_event``."""

    @abstractmethod
    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        """Forward user audio (any rate or channels) and call ``_emit_audio_input_event``."""

    @abstractmethod
    async def close(self) -> None:
        """Close the session, cancel background work, call ``_emit_disconnected_event``."""

    # -- provided by the base -------------------------------------------------------------

    @property
    def fps(self) -> float:
        """The most video frames a second sent to the model (every one of them with
        ``frame_policy = None``)."""
        return self._fps

    @property
    def frame_policy(self) -> SceneChange | None:
        """Which of the frames offered at ``fps`` are sent: a ``SceneChange`` (the default,
        ``SceneChange()``) only those that show a change, one every ``max_interval`` s anyway
        and the next one after ``request_fresh_frame()``; ``None`` each of them (fixed rate).
        ``fps`` stays the ceiling either way."""
        return self._frames.policy

    @frame_policy.setter
    def frame_policy(self, policy: SceneChange | None) -> None:
        if policy is not None and not isinstance(policy, SceneChange):
            raise ConfigurationError(
                f"frame_policy must be a SceneChange or None, got {type(policy).__name__}"
            )
        self._frames = FrameSelector(policy, self._frames.clock, detail=self._frames.detail)

    @property
    def frame_clock(self) -> Callable[[], float]:
        """What the frame policy reads the time from (its ``max_interval``);
        ``time.monotonic`` unless set (tests set a fake one)."""
        return self._frames.clock

    @frame_clock.setter
    def frame_clock(self, clock: Callable[[], float]) -> None:
        self._frames = FrameSelector(self._frames.policy, clock, detail=self._frames.detail)

    def request_fresh_frame(self) -> None:
        """Send the next frame whatever it shows (call it when the user starts speaking:
        what they talk about is likely on screen now)."""
        self._frames.request_fresh()

    @property
    def is_connected(self) -> bool:
        return self._connected

    def set_playback_position(self, played_ms: Callable[[str], float | None] | None) -> None:
        """Give the model the player's clock: ms of a response's audio really played."""
        self.playback_position = played_ms

    def forget_participant(self, participant: Participant) -> None:
        """Someone left: drop per-participant state (providers with such state override)."""

    async def simple_response(self, text: str, participant: Participant | None = None) -> None:
        """Send a user text turn; the reply arrives as audio, transcript and response events."""
        await self._send_text(text)

    async def watch_video_track(
        self,
        track: aiortc.MediaStreamTrack,
        shared_forwarder: VideoForwarder | None = None,
        *,
        screen: bool = False,
    ) -> None:
        """Start sending frames of ``track`` at ``fps``; replaces any track watched before.
        Its first frame goes whatever the frame policy says (a new picture is news).

        With ``shared_forwarder`` the track is read once for every consumer (processors too).
        ``screen``: the track is a shared screen, so the frame policy looks closer (scrolling
        a line of text is a change).
        """
        await self.stop_watching_video_track()
        self._frames.detail = screen
        self._frames.request_fresh()
        forwarder = shared_forwarder or VideoForwarder(
            track, fps=self.fps, name=f"{self.provider_name}.video"
        )
        # Added first: a forwarder that refuses (its track ended) leaves nothing half-watched.
        forwarder.add_frame_handler(self._on_video_frame, fps=self.fps, name=self.provider_name)
        self._forwarder, self._owns_forwarder = forwarder, shared_forwarder is None

    async def stop_watching_video_track(self) -> None:
        """Stop sending video; no frame is sent after this returns."""
        forwarder, owned = self._forwarder, self._owns_forwarder
        self._forwarder, self._owns_forwarder = None, False
        if forwarder is None:
            return
        if owned:
            await forwarder.stop()
        else:
            await forwarder.remove_frame_handler(self._on_video_frame)

    async def _on_video_frame(self, frame: av.VideoFrame) -> None:
        if not self._connected:
            return
        try:
            if not self._frames.offer(frame):
                self.frames_unchanged += 1
                return
            reason = self._frames.last_reason or "request"
            taken = await self._send_video_frame(frame)
            if taken is not False:
                self.frames_sent += 1
                if self._change_unsent and reason == "request":
                    reason = "change"  # the change a skipped frame showed reaches the model now
                self._change_unsent = False
                self._emit(
                    RealtimeFrameSentEvent(reason=reason, width=frame.width, height=frame.height)
                )
            else:
                self._change_unsent = self._change_unsent or reason == "change"
                self._frames.request_fresh()  # not sent after all: the next frame shows it
        except Exception as exc:  # a bad frame must not stop the feed
            self._emit_error_event(exc, context="sending a video frame")

    # -- tool calls ---------------------------------------------------------------------------

    def _start_tool_call(
        self, call_id: str, name: str, arguments: dict[str, Any] | str | None
    ) -> None:
        """Run a tool the model asked for in the background; the result goes to
        ``_send_tool_result``. The receive loop is never blocked by a tool."""
        if call_id in self._tool_calls:
            logger.warning("%s: tool call %s is already running", self.provider_name, call_id)
            return
        task = self._tasks.spawn(self._run_tool_call(call_id, name, arguments), f"tool:{name}")
        self._tool_calls[call_id] = task
        task.add_done_callback(lambda _t: self._tool_calls.pop(call_id, None))

    async def _run_tool_call(
        self, call_id: str, name: str, arguments: dict[str, Any] | str | None
    ) -> None:
        tool = self.tools.get(name)
        if tool is not None and tool.answered_by_caller:
            result = await self._await_tool_output(call_id, name, arguments)
        else:
            result = await self._execute_tool(name, arguments, call_id=call_id)
        try:
            await self._send_tool_result(result)
        except Exception as exc:
            self._emit_error_event(exc, context=f"sending the result of tool {name!r}")

    async def _await_tool_output(
        self, call_id: str, name: str, arguments: dict[str, Any] | str | None
    ) -> ToolResult:
        """A declared tool (``ToolRegistry.declare``): announce the call, wait for its output."""
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                pass
        started = time.perf_counter()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._tool_outputs[call_id] = fut
        self._emit(ToolCallStartedEvent(call_id=call_id, name=name, arguments=arguments))
        try:
            async with asyncio.timeout(self.tool_timeout):
                output = await fut
            result = ToolResult(call_id, name, True, output, None, time.perf_counter() - started)
        except TimeoutError:
            error = f"no output for tool call {call_id} ({name}) within {self.tool_timeout:g}s"
            result = ToolResult(call_id, name, False, None, error, time.perf_counter() - started)
        finally:
            self._tool_outputs.pop(call_id, None)
        self._emit(ToolCallCompletedEvent.for_result(result))
        return result

    async def send_tool_output(self, call_id: str, output: Any) -> None:
        """Answer a call of a declared tool; returns once the output went to the provider."""
        fut = self._tool_outputs.get(call_id)
        if fut is None or fut.done():
            waiting = ", ".join(self._tool_outputs) or "none"
            raise KeyError(f"no tool call {call_id!r} is waiting for output; waiting: {waiting}")
        fut.set_result(output)
        task = self._tool_calls.get(call_id)
        if task is not None:
            await asyncio.wait([task])

    async def _cancel_tool_call(self, call_id: str) -> bool:
        """Cancel a running tool call (the model withdrew it); True if one was running."""
        task = self._tool_calls.pop(call_id, None)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    @property
    def pending_tool_calls(self) -> list[str]:
        return list(self._tool_calls)

    async def _close_base(self) -> None:
        """Stop video and background work; providers call this from ``close``."""
        await self.stop_watching_video_track()
        await self._tasks.close()
        self._tool_calls.clear()

    # -- session control a provider may support (default: a clear UnsupportedFeature) ----

    async def update_instructions(self, instructions: str) -> None:
        """Replace the system instructions of the live session."""
        raise UnsupportedFeature(self.provider_name, "update_instructions")

    async def update_tools(self) -> None:
        """Send the registry's current tools to the live session."""
        raise UnsupportedFeature(self.provider_name, "update_tools")

    def generate_reply(
        self, instructions: str | None = None, timeout: float = 30.0
    ) -> asyncio.Future[str]:
        """Ask the model to respond now; the future gets the reply's text or TimeoutError."""
        raise UnsupportedFeature(self.provider_name, "generate_reply")

    async def interrupt(self) -> None:
        """Stop the reply being spoken."""
        raise UnsupportedFeature(self.provider_name, "interrupt")

    async def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        """Cut an assistant item's audio (and transcript) at ``audio_end_ms``."""
        raise UnsupportedFeature(self.provider_name, "truncate")

    async def commit_audio(self) -> None:
        """End the user's audio turn (client-side turn detection)."""
        raise UnsupportedFeature(self.provider_name, "commit_audio")

    async def clear_audio(self) -> None:
        """Drop user audio not yet committed (client-side turn detection)."""
        raise UnsupportedFeature(self.provider_name, "clear_audio")

    # -- hooks a provider overrides for what it supports ---------------------------------

    async def _send_text(self, text: str) -> None:
        raise NotImplementedError(f"{self.provider_name} does not accept text turns")

    async def _send_video_frame(self, frame: av.VideoFrame) -> bool | None:
        """Send one frame; return False when it was not sent (e.g. no connection yet)."""
        raise NotImplementedError(f"{self.provider_name} does not accept video")

    async def _send_tool_result(self, result: ToolResult) -> None:
        raise NotImplementedError(f"{self.provider_name} does not support tools")

    # -- typed emitters ---------------------------------------------------------------------

    def _emit_connected_event(
        self,
        session_config: dict[str, Any] | None = None,
        capabilities: dict[str, Any] | None = None,
    ) -> None:
        self._connected = True
        self._emit(RealtimeConnectedEvent(session_config=session_config, capabilities=capabilities))

    def _emit_disconnected_event(self, reason: str | None = None, was_clean: bool = True) -> None:
        self._connected = False
        self._emit(RealtimeDisconnectedEvent(reason=reason, was_clean=was_clean))

    def _emit_audio_input_event(
        self, audio_data: PcmData, user_metadata: dict[str, Any] | None = None
    ) -> None:
        self._emit(RealtimeAudioInputEvent(audio_data=audio_data, user_metadata=user_metadata))

    def _emit_audio_output_event(
        self,
        audio_data: PcmData,
        response_id: str | None = None,
        user_metadata: dict[str, Any] | None = None,
    ) -> None:
        self._emit(
            RealtimeAudioOutputEvent(
                audio_data=audio_data, response_id=response_id, user_metadata=user_metadata
            )
        )

    def _emit_audio_output_done_event(
        self,
        response_id: str | None = None,
        user_metadata: dict[str, Any] | None = None,
        interrupted: bool = False,
    ) -> None:
        self._emit(
            RealtimeAudioOutputDoneEvent(
                response_id=response_id, user_metadata=user_metadata, interrupted=interrupted
            )
        )

    def _emit_response_event(
        self,
        text: str,
        response_id: str | None = None,
        is_complete: bool = True,
        conversation_item_id: str | None = None,
        user_metadata: dict[str, Any] | None = None,
    ) -> None:
        self._emit(
            RealtimeResponseEvent(
                text=text,
                response_id=response_id,
                is_complete=is_complete,
                conversation_item_id=conversation_item_id,
                user_metadata=user_metadata,
            )
        )

    def _emit_user_speech_transcription(self, text: str, original: Any = None) -> None:
        self._emit(RealtimeUserSpeechTranscriptionEvent(text=text, original=original))

    def _emit_agent_speech_transcription(self, text: str, original: Any = None) -> None:
        self._emit(RealtimeAgentSpeechTranscriptionEvent(text=text, original=original))

    def _emit_error_event(
        self,
        error: BaseException,
        context: str = "",
        user_metadata: dict[str, Any] | None = None,
    ) -> None:
        logger.warning("%s error (%s): %s", self.provider_name, context or "-", error)
        self._emit(RealtimeErrorEvent(error=error, context=context, user_metadata=user_metadata))


def _check_fps(fps: float) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"fps must be a positive number of frames a second, got {fps!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"fps must be a positive number of frames a second, got {fps!r}")
    return value
