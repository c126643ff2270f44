"""Events of the voice pipeline (VAD, STT, TTS) that have no realtime equivalent.

Final transcripts are NOT here: the pipeline emits the realtime ones
(``RealtimeUserSpeechTranscriptionEvent`` / ``RealtimeAgentSpeechTranscriptionEvent`` from
``vision_agents.core.llm.events``), so code listening to a realtime model works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant


@dataclass(kw_only=True)
class UserSpeechStartedEvent(BaseEvent):
    """The VAD heard a participant start speaking (``barge_in``: the agent was talking)."""

    type: ClassVar[str] = "voice.user.speech_started"

    participant: Participant | None = None
    barge_in: bool = False


@dataclass(kw_only=True)
class UserSpeechEndedEvent(BaseEvent):
    """The VAD heard the end of a participant's turn (``duration_s`` of speech)."""

    type: ClassVar[str] = "voice.user.speech_ended"

    participant: Participant | None = None
    duration_s: float = 0.0


@dataclass(kw_only=True)
class PartialTranscriptEvent(BaseEvent):
    """Part of what a participant said, before the final transcript of the turn."""

    type: ClassVar[str] = "voice.transcript.partial"

    text: str
    participant: Participant | None = None


@dataclass(kw_only=True)
class AgentSpeechInterruptedEvent(BaseEvent):
    """A participant spoke over the agent: its audio was cleared and the reply cancelled."""

    type: ClassVar[str] = "voice.agent.interrupted"

    participant: Participant | None = None


@dataclass(kw_only=True)
class TurnTimingEvent(BaseEvent):
    """Where the time went in one turn, in ms from the end of the user's speech."""

    type: ClassVar[str] = "voice.turn.timing"

    vad_ms: float
    stt_ms: float
    llm_first_token_ms: float | None
    tts_first_audio_ms: float | None
