"""Events published by LLMs and realtime speech-to-speech models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.tools import ToolResult


@dataclass(kw_only=True)
class RealtimeConnectedEvent(BaseEvent):
    """The provider session is open and ready for audio, video and text."""

    type: ClassVar[str] = "realtime.connected"

    session_config: dict[str, Any] | None = None
    capabilities: dict[str, Any] | None = None


@dataclass(kw_only=True)
class RealtimeDisconnectedEvent(BaseEvent):
    """The provider session closed; ``was_clean`` is False for drops and errors."""

    type: ClassVar[str] = "realtime.disconnected"

    reason: str | None = None
    was_clean: bool = True


@dataclass(kw_only=True)
class RealtimeAudioInputEvent(BaseEvent):
    """User audio was handed to the model."""

    type: ClassVar[str] = "realtime.audio.input"

    audio_data: PcmData
    user_metadata: dict[str, Any] | None = None


@dataclass(kw_only=True)
class RealtimeAudioOutputEvent(BaseEvent):
    """A chunk of the model's voice."""

    type: ClassVar[str] = "realtime.audio.output"

    audio_data: PcmData
    response_id: str | None = None
    user_metadata: dict[str, Any] | None = None


@dataclass(kw_only=True)
class RealtimeAudioOutputDoneEvent(BaseEvent):
    """The model finished (or was interrupted in) one spoken response."""

    type: ClassVar[str] = "realtime.audio.output.done"

    response_id: str | None = None
    user_metadata: dict[str, Any] | None = None
    interrupted: bool = False


@dataclass(kw_only=True)
class RealtimeFrameSentEvent(BaseEvent):
    """A video frame went to the model; ``reason`` says why (the frame policy's decision):
    ``"change"`` the scene changed, ``"interval"`` ``max_interval`` passed, ``"request"`` the
    first frame or one asked for (``request_fresh_frame``), ``"fixed"`` no policy."""

    type: ClassVar[str] = "realtime.video.frame_sent"

    reason: Literal["request", "change", "interval", "fixed"]
    width: int = 0
    height: int = 0


@dataclass(kw_only=True)
class RealtimeResponseEvent(BaseEvent):
    """Text from the model: a delta (``is_complete=False``) or the whole reply."""

    type: ClassVar[str] = "realtime.response"

    text: str
    response_id: str | None = None
    is_complete: bool = True
    conversation_item_id: str | None = None
    user_metadata: dict[str, Any] | None = None


@dataclass(kw_only=True)
class RealtimeUserSpeechTranscriptionEvent(BaseEvent):
    """What the provider heard the user say."""

    type: ClassVar[str] = "realtime.transcription.user"

    text: str
    original: Any = None


@dataclass(kw_only=True)
class RealtimeAgentSpeechTranscriptionEvent(BaseEvent):
    """What the model said, as text."""

    type: ClassVar[str] = "realtime.transcription.agent"

    text: str
    original: Any = None


@dataclass(kw_only=True)
class RealtimeErrorEvent(BaseEvent):
    """Something went wrong in the session; the session may or may not continue."""

    type: ClassVar[str] = "realtime.error"

    error: BaseException
    context: str = ""
    user_metadata: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        return f"{self.context}: {self.error}" if self.context else str(self.error)


@dataclass(kw_only=True)
class ToolCallStartedEvent(BaseEvent):
    """The model asked for a tool and it started running."""

    type: ClassVar[str] = "llm.tool.started"

    call_id: str | None
    name: str
    arguments: dict[str, Any] | str | None = field(default=None)


@dataclass(kw_only=True)
class ToolCallCompletedEvent(BaseEvent):
    """A tool finished; ``ok`` is False when it raised, timed out or got bad arguments."""

    type: ClassVar[str] = "llm.tool.completed"

    call_id: str | None
    name: str
    ok: bool
    result: Any = None
    error: str | None = None
    duration_s: float = 0.0

    @classmethod
    def for_result(cls, result: ToolResult) -> ToolCallCompletedEvent:
        return cls(
            call_id=result.call_id,
            name=result.name,
            ok=result.ok,
            result=result.value,
            error=result.error,
            duration_s=result.duration_s,
        )


@dataclass(frozen=True)
class Usage:
    """Tokens one response (or a whole session, summed) cost, split the way providers bill."""

    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    input_cached: int = 0
    """Input tokens served from the provider's cache (part of the input counts above)."""
    output_text: int = 0
    output_audio: int = 0
    total: int = 0
    input_image_estimated: int = 0
    """Our estimate, not the provider's: image tokens of the frames sent, each counted once by
    the provider's published rule (``vision_agents.core.llm.image_tokens``). ``input_image`` is
    what the provider reported, and counts a frame again each time a response re-reads it. Not
    part of ``input`` or ``total``."""

    @property
    def input(self) -> int:
        return self.input_text + self.input_audio + self.input_image

    @property
    def output(self) -> int:
        return self.output_text + self.output_audio

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_text + other.input_text,
            self.input_audio + other.input_audio,
            self.input_image + other.input_image,
            self.input_cached + other.input_cached,
            self.output_text + other.output_text,
            self.output_audio + other.output_audio,
            self.total + other.total,
            self.input_image_estimated + other.input_image_estimated,
        )


@dataclass(kw_only=True)
class UsageEvent(BaseEvent):
    """The provider reported token usage; ``totals`` is the session's sum so far."""

    type: ClassVar[str] = "realtime.usage"

    usage: Usage
    totals: Usage
    response_id: str | None = None


@dataclass(kw_only=True)
class RealtimeReconnectedEvent(BaseEvent):
    """The session moved to a new connection (``planned``: goAway, expiry, recycle; else the
    old one failed, ``reason`` says how). ``downtime_s``: from the old connection found dead
    to the new one in (0 when planned: the old one served until then); ``audio_replayed_s``:
    user audio sent again on the new connection (what the old one may not have delivered, and
    what came in between); ``audio_dropped_s``: user audio lost past ``audio_backlog_s``."""

    type: ClassVar[str] = "realtime.reconnected"

    reason: str
    planned: bool
    attempt: int
    downtime_s: float = 0.0
    audio_replayed_s: float = 0.0
    audio_dropped_s: float = 0.0
