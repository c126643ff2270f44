"""Voice without a realtime model: VAD, speech-to-text, text-to-speech and the offline responder.

The Agent runs them as a ``VoicePipeline`` when its LLM is a ``ChatLLM``
(``Agent(..., llm=openai.LLM(...), vad=silero.VAD(), stt=faster_whisper.STT(), tts=...)``).
"""

from vision_agents.core.llm.chat import ChatLLM, ChatMessage, ChatRequest
from vision_agents.core.voice.events import (
    AgentSpeechInterruptedEvent,
    PartialTranscriptEvent,
    TurnTimingEvent,
    UserSpeechEndedEvent,
    UserSpeechStartedEvent,
)
from vision_agents.core.voice.offline import OFFLINE_LABEL, OfflineResponder
from vision_agents.core.voice.sentences import SentenceSplitter
from vision_agents.core.voice.stt import STT
from vision_agents.core.voice.tts import TTS
from vision_agents.core.voice.vad import VAD, LevelVAD, SpeechEnd, SpeechStart, VADStream

__all__ = [
    "OFFLINE_LABEL",
    "STT",
    "TTS",
    "VAD",
    "AgentSpeechInterruptedEvent",
    "ChatLLM",
    "ChatMessage",
    "ChatRequest",
    "LevelVAD",
    "OfflineResponder",
    "PartialTranscriptEvent",
    "SentenceSplitter",
    "SpeechEnd",
    "SpeechStart",
    "TurnTimingEvent",
    "UserSpeechEndedEvent",
    "UserSpeechStartedEvent",
    "VADStream",
]
