"""OpenAI Realtime (GA) client events and session settings as plain dicts (no I/O, no state)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from vision_agents.core.llm.tools import ToolSchema

AUDIO_RATE = 24000
"""The only PCM rate the Realtime API takes and gives: 24 kHz, mono, 16-bit little endian."""

JsonDict = dict[str, Any]


@dataclass
class SessionSettings:
    """What ``session.update`` carries; re-sent on every (re)connect."""

    model: str = "gpt-realtime"
    instructions: str = ""
    voice: str | None = "marin"
    turn_detection: JsonDict | None = field(
        default_factory=lambda: {"type": "server_vad", "create_response": True}
    )
    """``None`` turns detection off: call ``commit_audio`` and ``generate_reply`` yourself."""
    transcription_model: str | None = "whisper-1"
    output_modalities: list[Literal["audio", "text"]] = field(default_factory=lambda: ["audio"])
    tools: list[ToolSchema] = field(default_factory=list)
    extra: JsonDict = field(default_factory=dict)
    """More ``session`` fields, passed through as given (validated by the server)."""

    def to_session(self, *, include_model: bool = True) -> JsonDict:
        audio_in: JsonDict = {
            "format": {"type": "audio/pcm", "rate": AUDIO_RATE},
            "turn_detection": self.turn_detection,
        }
        if self.transcription_model:
            audio_in["transcription"] = {"model": self.transcription_model}
        audio_out: JsonDict = {"format": {"type": "audio/pcm", "rate": AUDIO_RATE}}
        if self.voice:
            audio_out["voice"] = self.voice
        session: JsonDict = {
            "type": "realtime",
            "instructions": self.instructions,
            "output_modalities": list(self.output_modalities),
            "audio": {"input": audio_in, "output": audio_out},
            "tools": [t.to_openai() for t in self.tools],
            "tool_choice": "auto",
        }
        if include_model:
            session["model"] = self.model
        session.update(self.extra)
        return session


# -- client events (our commands -> provider JSON) ---------------------------------------


def session_update(settings: SessionSettings, *, include_model: bool = True) -> JsonDict:
    return {"type": "session.update", "session": settings.to_session(include_model=include_model)}


def audio_append(pcm_24k_s16: bytes) -> JsonDict:
    return {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(pcm_24k_s16).decode("ascii"),
    }


def audio_commit() -> JsonDict:
    return {"type": "input_audio_buffer.commit"}


def audio_clear() -> JsonDict:
    return {"type": "input_audio_buffer.clear"}


def image_item(jpeg: bytes, item_id: str | None = None, detail: str | None = None) -> JsonDict:
    """A user message holding one JPEG; ``detail`` ("low", "high", "auto") is left out when
    None (the service then uses "auto")."""
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    part: JsonDict = {"type": "input_image", "image_url": url}
    if detail is not None:
        part["detail"] = detail
    item: JsonDict = {"type": "message", "role": "user", "content": [part]}
    if item_id is not None:
        item = {"id": item_id, **item}  # the service confirms it by id (conversation.item.added)
    return {"type": "conversation.item.create", "item": item}


def item_create(item: JsonDict) -> JsonDict:
    return {"type": "conversation.item.create", "item": item}


def user_text_item(text: str) -> JsonDict:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant_text_item(text: str) -> JsonDict:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def function_call_item(call_id: str, name: str, arguments: str) -> JsonDict:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}


def function_output_item(call_id: str, output: str) -> JsonDict:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def response_create(
    instructions: str | None = None, metadata: dict[str, str] | None = None
) -> JsonDict:
    response: JsonDict = {}
    if instructions is not None:
        response["instructions"] = instructions
    if metadata:
        response["metadata"] = metadata
    return (
        {"type": "response.create", "response": response}
        if response
        else {"type": "response.create"}
    )


def response_cancel() -> JsonDict:
    return {"type": "response.cancel"}


def output_audio_clear() -> JsonDict:
    """WebRTC only: stop the server streaming the rest of the response's audio."""
    return {"type": "output_audio_buffer.clear"}


def truncate(item_id: str, audio_end_ms: int, content_index: int = 0) -> JsonDict:
    return {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": max(0, int(audio_end_ms)),
    }


def dumps(event: JsonDict) -> str:
    return json.dumps(event, separators=(",", ":"))
