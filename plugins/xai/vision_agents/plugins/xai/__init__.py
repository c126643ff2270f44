"""xAI Grok voice agent through the OpenAI Realtime plugin: ``vision_agents.plugins.xai.Realtime``.

The Grok Voice Agent API speaks the OpenAI Realtime event names with a session layout of its
own (xAI docs, "Voice Agent API": session parameters): ``voice`` and ``turn_detection`` at the
top level of ``session``, its own model ids and voices, and ``grok-transcribe`` for the user's
transcript (``audio.input.transcription``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import openai

from vision_agents.core.errors import ConfigurationError
from vision_agents.core.llm.runtime import ApiKey
from vision_agents.plugins.openai import protocol as openai_protocol
from vision_agents.plugins.openai.messages import AUDIO_RATE, JsonDict, SessionSettings
from vision_agents.plugins.openai.realtime import _DEFAULT
from vision_agents.plugins.openai.realtime import Realtime as OpenAIRealtime

XAI_BASE_URL = "https://api.x.ai/v1"
XAI_MODEL = "grok-voice-latest"
"""xAI's alias for its newest voice agent model (versioned ids such as
``grok-voice-think-fast-1.0`` pin one)."""
MODELS = ("grok-voice-latest", "grok-voice-think-fast-1.0")
VOICES = ("ara", "eve", "leo", "rex", "sal")
TRANSCRIPTION_MODEL = "grok-transcribe"
SERVER_VAD: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
}


@dataclass
class XAISessionSettings(SessionSettings):
    """``session.update`` in xAI's layout."""

    def to_session(self, *, include_model: bool = True) -> JsonDict:
        audio_in: JsonDict = {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}}
        if self.transcription_model:
            audio_in["transcription"] = {"model": self.transcription_model}
        session: JsonDict = {
            "instructions": self.instructions,
            "voice": self.voice,
            "turn_detection": self.turn_detection,
            "audio": {
                "input": audio_in,
                "output": {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}},
            },
            "tools": [t.to_openai() for t in self.tools],
        }
        if self.voice is None:
            del session["voice"]
        session.update(self.extra)
        return session


class Realtime(OpenAIRealtime):
    """Grok voice: xAI's base URL, model, voices and session layout; key from ``XAI_API_KEY``.

    Server VAD is on with xAI's documented defaults; ``turn_detection=None`` turns it off, as
    on the OpenAI plugin.
    """

    provider_name: ClassVar[str] = "xai_realtime"
    api_key_env: ClassVar[tuple[str, ...]] = ("XAI_API_KEY",)
    default_base_url: ClassVar[str | None] = XAI_BASE_URL
    default_turn_detection: ClassVar[dict[str, Any] | None] = SERVER_VAD

    def __init__(
        self,
        voice: Literal["ara", "eve", "leo", "rex", "sal"] | str = "ara",
        model: str = XAI_MODEL,
        fps: float = 1,
        api_key: ApiKey | None = None,
        client: openai.AsyncOpenAI | None = None,
        turn_detection: dict[str, Any] | None = _DEFAULT,
        **kwargs: Any,
    ) -> None:
        if not isinstance(voice, str) or voice.lower() not in VOICES:
            raise ConfigurationError(
                f"xAI voice must be one of {', '.join(VOICES)} (any case); got {voice!r}"
            )
        super().__init__(
            model=model,
            fps=fps,
            api_key=api_key,
            client=client,
            voice=voice.lower(),
            turn_detection=turn_detection,
            **{"transcription_model": TRANSCRIPTION_MODEL, "image_detail": None, **kwargs},
        )
        ours = self._protocol.settings
        self._protocol.settings = XAISessionSettings(**vars(ours))

    def _frame_image_tokens(self, jpeg: bytes) -> int:
        """xAI bills a frame as an item sent, not in tokens (docs/openai.md): no estimate."""
        return 0


__all__ = [
    "MODELS",
    "SERVER_VAD",
    "TRANSCRIPTION_MODEL",
    "VOICES",
    "XAI_BASE_URL",
    "XAI_MODEL",
    "Realtime",
    "XAISessionSettings",
]

_ = openai_protocol  # the protocol object is the OpenAI one: same events
