"""Gemini Live translation without I/O: our commands to SDK messages, server messages to events.

``LiveTranslator.feed`` turns one ``LiveServerMessage`` into a list of small typed events and
keeps the session state (the newest resumption handle, the open response, its text so far).
The connection layer (``realtime.py``) only moves these between the socket and the core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from google.genai import types

from vision_agents.core.audio import PcmData
from vision_agents.core.llm.tools import ToolResult, ToolSchema

INPUT_RATE = 16000
OUTPUT_RATE = 24000
INPUT_AUDIO_MIME = f"audio/pcm;rate={INPUT_RATE}"


# -- events out of the translator ---------------------------------------------------------


@dataclass(frozen=True)
class AudioOut:
    pcm: PcmData
    response_id: str


@dataclass(frozen=True)
class TextOut:
    text: str
    response_id: str
    is_complete: bool


@dataclass(frozen=True)
class ResponseDone:
    response_id: str
    interrupted: bool


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class AgentTranscript:
    text: str


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolCancel:
    call_ids: tuple[str, ...]


@dataclass(frozen=True)
class GoAway:
    time_left: str | None


@dataclass(frozen=True)
class HandleUpdate:
    handle: str


Event = (
    AudioOut
    | TextOut
    | ResponseDone
    | UserTranscript
    | AgentTranscript
    | ToolCall
    | ToolCancel
    | GoAway
    | HandleUpdate
)


# -- session settings -----------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSettings:
    """What goes into each ``setup`` (the first one and every resumption)."""

    response_modalities: tuple[str, ...] = ("AUDIO",)
    voice: str | None = None
    input_transcription: bool = True
    output_transcription: bool = True
    compression_trigger_tokens: int | None = None
    """Context window compression: None leaves it off; a token count turns on a sliding window."""
    compression_target_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """More ``LiveConnectConfig`` fields, passed as is."""


def build_config(
    settings: SessionSettings,
    *,
    instructions: str = "",
    tools: list[ToolSchema] | None = None,
    handle: str | None = None,
) -> types.LiveConnectConfig:
    """The ``LiveConnectConfig`` for one connection; resumption is always enabled."""
    config: dict[str, Any] = {
        "response_modalities": [types.Modality(m.upper()) for m in settings.response_modalities],
        "session_resumption": types.SessionResumptionConfig(handle=handle),
    }
    if instructions:
        config["system_instruction"] = instructions
    if settings.voice:
        config["speech_config"] = types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=settings.voice)
            )
        )
    if settings.input_transcription:
        config["input_audio_transcription"] = types.AudioTranscriptionConfig()
    if settings.output_transcription:
        config["output_audio_transcription"] = types.AudioTranscriptionConfig()
    if settings.compression_trigger_tokens is not None:
        config["context_window_compression"] = types.ContextWindowCompressionConfig(
            trigger_tokens=settings.compression_trigger_tokens,
            sliding_window=types.SlidingWindow(target_tokens=settings.compression_target_tokens),
        )
    if tools:
        config["tools"] = [
            types.Tool(function_declarations=[function_declaration(t) for t in tools])
        ]
    config.update(settings.extra)
    return types.LiveConnectConfig(**config)


def function_declaration(schema: ToolSchema) -> types.FunctionDeclaration:
    return types.FunctionDeclaration(
        name=schema.name,
        description=schema.description,
        parameters_json_schema=schema.parameters,
    )


# -- our commands to SDK payloads -----------------------------------------------------------


def audio_blob(pcm: PcmData) -> types.Blob:
    """16 kHz mono s16 PCM as the ``audio`` realtime input; ``pcm`` must already be resampled."""
    if pcm.sample_rate != INPUT_RATE or pcm.channels != 1:
        raise ValueError(
            f"Gemini Live takes {INPUT_RATE} Hz mono audio, got {pcm.sample_rate} Hz "
            f"x{pcm.channels}; resample first"
        )
    return types.Blob(data=pcm.to_int16().to_bytes(), mime_type=INPUT_AUDIO_MIME)


def jpeg_blob(jpeg: bytes) -> types.Blob:
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("expected JPEG bytes")
    return types.Blob(data=jpeg, mime_type="image/jpeg")


def text_turn(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def function_response(result: ToolResult) -> types.FunctionResponse:
    """A finished tool call as Gemini wants it back: by id, ``{"result"}`` or ``{"error"}``."""
    return types.FunctionResponse(id=result.call_id, name=result.name, response=result.to_payload())


# -- server messages to events --------------------------------------------------------------


class LiveTranslator:
    """Session state plus the mapping of server messages to events."""

    def __init__(self) -> None:
        self.handle: str | None = None
        """The newest resumption handle, from wherever it arrived."""
        self._seq = 0
        self._response_id: str | None = None
        self._text: list[str] = []

    @property
    def response_id(self) -> str | None:
        """The id of the response being produced, or None between responses."""
        return self._response_id

    def feed(self, message: types.LiveServerMessage) -> list[Event]:
        events: list[Event] = []
        update = message.session_resumption_update
        if update is not None and update.new_handle and update.resumable is not False:
            self.handle = update.new_handle
            events.append(HandleUpdate(update.new_handle))
        if message.tool_call is not None:
            for call in message.tool_call.function_calls or []:
                call_id = call.id or f"{call.name}-{self._next_id()}"
                events.append(ToolCall(call_id, call.name or "", dict(call.args or {})))
        if message.tool_call_cancellation is not None:
            ids = tuple(message.tool_call_cancellation.ids or ())
            if ids:
                events.append(ToolCancel(ids))
        if message.server_content is not None:
            events.extend(self._content(message.server_content))
        if message.go_away is not None:
            events.append(GoAway(message.go_away.time_left))
        return events

    def _content(self, content: types.LiveServerContent) -> list[Event]:
        events: list[Event] = []
        if content.input_transcription is not None and content.input_transcription.text:
            events.append(UserTranscript(content.input_transcription.text))
        if content.model_turn is not None:
            for part in content.model_turn.parts or []:
                events.extend(self._part(part))
        if content.output_transcription is not None and content.output_transcription.text:
            self._open()
            events.append(AgentTranscript(content.output_transcription.text))
        if content.interrupted:
            events.extend(self._finish(interrupted=True))
        if content.turn_complete:
            events.extend(self._finish(interrupted=False))
        return events

    def _part(self, part: types.Part) -> list[Event]:
        blob = part.inline_data
        if blob is not None and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
            pcm = PcmData.from_bytes(blob.data, sample_rate=_rate(blob.mime_type), channels=1)
            return [AudioOut(pcm, self._open())]
        if part.text and not part.thought:
            response_id = self._open()
            self._text.append(part.text)
            return [TextOut(part.text, response_id, is_complete=False)]
        return []

    def _open(self) -> str:
        if self._response_id is None:
            self._response_id = f"resp-{self._next_id()}"
        return self._response_id

    def _finish(self, *, interrupted: bool) -> list[Event]:
        response_id, self._response_id = self._response_id, None
        if response_id is None:
            return []
        events: list[Event] = []
        if self._text and not interrupted:
            events.append(TextOut("".join(self._text), response_id, is_complete=True))
        self._text = []
        events.append(ResponseDone(response_id, interrupted))
        return events

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq


def _rate(mime_type: str | None) -> int:
    match = re.search(r"rate=(\d+)", mime_type or "")
    return int(match.group(1)) if match else OUTPUT_RATE
