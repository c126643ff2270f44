"""xAI Grok voice agent through the OpenAI Realtime plugin: ``vision_agents.plugins.xai.Realtime``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import openai

from vision_agents.core.errors import ConfigurationError
from vision_agents.core.llm.runtime import ApiKey
from vision_agents.plugins.openai.realtime import _DEFAULT
from vision_agents.plugins.openai.realtime import Realtime as OpenAIRealtime

XAI_BASE_URL = "https://api.x.ai/v1"
XAI_MODEL = "grok-voice-agent"
VOICES = ("ara", "eve", "leo")
SERVER_VAD: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
}


class Realtime(OpenAIRealtime):
    """Grok voice: xAI's base URL and model, voices 'ara', 'eve', 'leo', key from ``XAI_API_KEY``.

    Server VAD is on with xAI's documented defaults; ``turn_detection=None`` turns it off, as
    on the OpenAI plugin.
    """

    provider_name: ClassVar[str] = "xai_realtime"
    api_key_env: ClassVar[tuple[str, ...]] = ("XAI_API_KEY",)
    default_base_url: ClassVar[str | None] = XAI_BASE_URL
    default_turn_detection: ClassVar[dict[str, Any] | None] = SERVER_VAD

    def __init__(
        self,
        voice: Literal["ara", "eve", "leo"] = "ara",
        model: str = XAI_MODEL,
        fps: float = 1,
        api_key: ApiKey | None = None,
        client: openai.AsyncOpenAI | None = None,
        turn_detection: dict[str, Any] | None = _DEFAULT,
        **kwargs: Any,
    ) -> None:
        if voice not in VOICES:
            raise ConfigurationError(f"xAI voice must be one of {', '.join(VOICES)}; got {voice!r}")
        super().__init__(
            model=model,
            fps=fps,
            api_key=api_key,
            client=client,
            voice=voice,
            turn_detection=turn_detection,
            **kwargs,
        )


__all__ = ["SERVER_VAD", "VOICES", "XAI_BASE_URL", "XAI_MODEL", "Realtime"]
