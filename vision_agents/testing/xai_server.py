"""A local Grok Voice Agent server: the OpenAI Realtime server with xAI's session layout.

xAI's Voice Agent API uses the OpenAI Realtime event names but its own ``session`` shape (xAI
docs, "Voice Agent API", session parameters): ``voice`` and ``turn_detection`` at the top level,
``audio.input.format`` / ``audio.input.transcription`` / ``audio.output.format``, its own
voices (Ara, Eve, Leo, Rex, Sal; any case) and model ids. This server validates that layout
strictly, so a client sending OpenAI's nested layout (voice under ``audio.output``, turn
detection under ``audio.input``, ``type: "realtime"``) is answered with an ``error`` as an
unknown-parameter request would be; everything else behaves as ``OpenAIRealtimeServer``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic
from aiohttp import web

from vision_agents.testing.openai_server import (
    Connection,
    OpenAIRealtimeServer,
    ValidationFailed,
)

_OURS = frozenset({"id", "model", "object", "type"})
"""Fields the server adds to the session it reports (not part of a client's update)."""

VOICES = frozenset({"ara", "eve", "leo", "rex", "sal"})
MODELS = frozenset({"grok-voice-latest", "grok-voice-think-fast-1.0"})


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class _Format(_Strict):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
    rate: int | None = pydantic.Field(default=None, ge=8000, le=48000)


class _Transcription(_Strict):
    model: Literal["grok-transcribe"]
    language_hint: str | None = None


class _AudioIn(_Strict):
    format: _Format | None = None
    transcription: _Transcription | None = None


class _AudioOut(_Strict):
    format: _Format | None = None


class _Audio(_Strict):
    input: _AudioIn | None = None
    output: _AudioOut | None = None


class _ServerVad(_Strict):
    type: Literal["server_vad"]
    threshold: float | None = pydantic.Field(default=None, ge=0, le=1)
    prefix_padding_ms: int | None = pydantic.Field(default=None, ge=0)
    silence_duration_ms: int | None = pydantic.Field(default=None, ge=0)
    create_response: bool | None = None
    interrupt_response: bool | None = None


class XAISession(_Strict):
    instructions: str | None = pydantic.Field(default=None, max_length=16384)
    voice: str | None = None
    turn_detection: _ServerVad | None = None
    audio: _Audio | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | None = None

    @pydantic.field_validator("voice")
    @classmethod
    def _known_voice(cls, voice: str | None) -> str | None:
        if voice is not None and voice.lower() not in VOICES:
            raise ValueError(f"unknown voice {voice!r}; one of {sorted(VOICES)}")
        return voice


class XAIRealtimeServer(OpenAIRealtimeServer):
    """``async with XAIRealtimeServer() as server``; point ``xai.Realtime`` at ``base_url``."""

    def _event_problem(self, event: dict[str, Any]) -> str | None:
        if str(event.get("type", "")).startswith("session."):
            session = json.loads(json.dumps(event.get("session") or {}))
            # the mirror of turn_detection kept for the base server's VAD is ours, not xAI's
            ((session.get("audio") or {}).get("input") or {}).pop("turn_detection", None)
            try:  # xAI's session object, not OpenAI's
                XAISession.model_validate({k: v for k, v in session.items() if k not in _OURS})
            except pydantic.ValidationError as exc:
                return str(exc.errors()[0]["msg"])
            return None
        return super()._event_problem(event)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        model = request.query.get("model", "")
        if model not in MODELS:
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                        "message": f"unknown model {model!r}",
                    }
                },
                status=400,
            )
        return await super()._websocket(request)

    async def _handle(self, conn: Connection, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("type") != "session.update":
            await super()._handle(conn, raw)
            return
        try:
            session = XAISession.model_validate(data.get("session") or {})
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            param = "session." + ".".join(str(p) for p in first["loc"])
            await self._error(
                conn,
                ValidationFailed(f"{first['msg']} ({param})", "invalid_value", param),
                data.get("event_id"),
            )
            return
        conn.received.append(data)
        conn.session = {**conn.session, **session.model_dump(exclude_none=True)}
        # The base server reads turn detection where OpenAI keeps it; mirror it there.
        vad = conn.session.get("turn_detection")
        conn.session.setdefault("audio", {}).setdefault("input", {})["turn_detection"] = vad
        await self.send({"type": "session.updated", "session": conn.session}, conn)
