"""OpenAI Realtime (GA) protocol without I/O: our commands to client events, server events to ours.

Everything here is plain data in, plain data out, so every edge case is tested by feeding
dicts. The connection layer (``realtime.py``) owns the socket, retries and tasks.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
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


def image_item(jpeg: bytes) -> JsonDict:
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_image", "image_url": url}],
        },
    }


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


# -- our events (provider JSON -> typed) -------------------------------------------------


@dataclass(frozen=True)
class SessionReady:
    session: JsonDict


@dataclass(frozen=True)
class AudioDelta:
    pcm: bytes  # 24 kHz mono s16le
    response_id: str
    item_id: str


@dataclass(frozen=True)
class AudioDone:
    response_id: str | None
    interrupted: bool


@dataclass(frozen=True)
class UserTranscript:
    text: str
    item_id: str


@dataclass(frozen=True)
class AgentTranscript:
    text: str
    response_id: str
    item_id: str


@dataclass(frozen=True)
class TextResponse:
    text: str
    response_id: str
    item_id: str | None
    is_complete: bool


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class SpeechStarted:
    item_id: str | None


@dataclass(frozen=True)
class ResponseFinished:
    response_id: str
    status: str
    text: str
    metadata: dict[str, str] | None


@dataclass(frozen=True)
class ServerError:
    message: str
    code: str | None
    event_id: str | None


@dataclass(frozen=True)
class Send:
    """A client event the state machine wants sent (barge-in, deferred ``response.create``)."""

    event: JsonDict


ProtocolEvent = (
    SessionReady
    | AudioDelta
    | AudioDone
    | UserTranscript
    | AgentTranscript
    | TextResponse
    | ToolCall
    | SpeechStarted
    | ResponseFinished
    | ServerError
    | Send
)


@dataclass
class _Playing:
    item_id: str
    response_id: str
    first_audio_at: float
    audio_ms: float = 0.0
    offset_ms: float = 0.0  # the response's audio before this item (several audio items)


@dataclass
class _Response:
    id: str
    metadata: dict[str, str] | None
    text: list[str] = field(default_factory=list)
    had_audio: bool = False
    audio_item: str | None = None  # the assistant message item that carries the audio
    call_names: dict[str, str] = field(default_factory=dict)  # item_id -> tool name
    call_args: dict[str, list[str]] = field(default_factory=dict)  # item_id -> deltas


PlayedMs = Callable[[str, float, float | None], float]
"""``(item_id, received_ms, first_audio_at) -> played_ms`` for barge-in truncation."""


@dataclass
class _Streaming:
    """WebRTC: the response whose audio the server is streaming on the media track."""

    response_id: str
    item_id: str
    had_audio: bool = False


def estimate_played_ms(clock: Callable[[], float]) -> PlayedMs:
    """Played position estimated as real time since the item's first audio, capped at what
    arrived (audio plays at 1x from its first chunk)."""

    def played(item_id: str, received_ms: float, first_at: float | None) -> float:
        if first_at is None:
            return 0.0
        return max(0.0, min(received_ms, (clock() - first_at) * 1000.0))

    return played


class ProtocolState:
    """Session state: current response, assistant audio item, tool calls, conversation so far.

    ``feed(server_event) -> [our events]``. The conversation (user and assistant text, tool
    calls and their outputs) is kept so a new connection can be given it again.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        played_ms: PlayedMs | None = None,
        max_history: int = 200,
        media_audio: bool = False,
    ) -> None:
        self._clock = clock
        self.media_audio = media_audio
        """WebRTC: audio comes on a media track between ``output_audio_buffer.started`` and
        ``.stopped`` (fed through ``track_audio``), not as ``response.output_audio.delta``."""
        self._streaming: _Streaming | None = None
        self.response_played_ms: Callable[[str], float | None] | None = None
        """``response_id -> ms played`` from the real player (the Agent's audio track); when
        it knows the response, it wins over ``played_ms``."""
        self._played_ms = played_ms or estimate_played_ms(clock)
        self._response: _Response | None = None
        self._pending_response_create = False
        self._playing: _Playing | None = None
        self._open_calls: set[str] = set()
        self.history: list[JsonDict] = []
        self.max_history = max_history
        self.truncations: list[tuple[str, int]] = []

    # -- what the connection layer tells us about the client side -----------------------

    @property
    def response_active(self) -> bool:
        return self._response is not None

    def remember(self, item: JsonDict) -> None:
        self.history.append(item)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]

    def tool_output(self, call_id: str, output: str) -> list[JsonDict]:
        """Client events for a finished tool: its output, then a response (now, or after
        the active one is done: the API refuses a second active response)."""
        item = function_output_item(call_id, output)
        self.remember(item)
        self._open_calls.discard(call_id)
        events = [item_create(item)]
        if self._open_calls:  # one response.create once every call of the turn is answered
            self._pending_response_create = True
        elif self._response is None:
            self._pending_response_create = False
            events.append(response_create())
        else:
            self._pending_response_create = True
        return events

    def replay(self, settings: SessionSettings) -> list[JsonDict]:
        """What a fresh connection needs: settings and tools, then the conversation so far."""
        return [session_update(settings)] + [item_create(dict(i)) for i in self.history]

    def reset_connection(self) -> list[ProtocolEvent]:
        """The socket dropped: an unfinished response is gone; close its audio."""
        out: list[ProtocolEvent] = []
        self._playing = None
        streaming, self._streaming = self._streaming, None
        if streaming is not None and streaming.had_audio:
            out.append(AudioDone(streaming.response_id, interrupted=True))
        if self._response is not None:
            if self._response.had_audio:
                out.append(AudioDone(self._response.id, interrupted=True))
            self._response = None
        return out

    def interrupt(self) -> list[ProtocolEvent]:
        """Barge-in: cancel the active response and truncate the assistant audio still playing
        (it may outlive its ``response.done``: audio arrives faster than it plays)."""
        resp, playing = self._response, self._playing
        out: list[ProtocolEvent] = []
        if resp is not None:
            out.append(Send(response_cancel()))
        still_playing = False
        if playing is not None:
            played = self._played_of(playing)
            if played < playing.audio_ms - 1:
                still_playing = True
                end = int(played)
                self.truncations.append((playing.item_id, end))
                out.append(Send(truncate(playing.item_id, end)))
        self._playing = None
        streaming, self._streaming = self._streaming, None
        if streaming is not None:
            out.append(Send(output_audio_clear()))
            if streaming.had_audio:
                out.append(AudioDone(streaming.response_id, interrupted=True))
            still_playing = False
        if resp is not None and resp.had_audio:
            out.append(AudioDone(resp.id, interrupted=True))
            resp.had_audio = False  # one done event per response
        elif still_playing and playing is not None:
            out.append(AudioDone(playing.response_id, interrupted=True))
        return out

    def track_audio(self, pcm_24k_s16: bytes) -> list[ProtocolEvent]:
        """WebRTC: audio from the media track; kept only while a response is streaming
        (between ``output_audio_buffer.started`` and ``.stopped``), silence otherwise."""
        streaming = self._streaming
        if streaming is None or not pcm_24k_s16:
            return []
        self._advance_playing(streaming.item_id, streaming.response_id, len(pcm_24k_s16))
        streaming.had_audio = True
        return [AudioDelta(pcm_24k_s16, streaming.response_id, streaming.item_id)]

    def _played_of(self, playing: _Playing) -> float:
        whole = self.response_played_ms(playing.response_id) if self.response_played_ms else None
        if whole is not None:
            return max(0.0, min(playing.audio_ms, whole - playing.offset_ms))
        return self._played_ms(playing.item_id, playing.audio_ms, playing.first_audio_at)

    def _advance_playing(self, item_id: str, response_id: str, nbytes: int) -> None:
        prev = self._playing
        if prev is None or prev.item_id != item_id:
            offset = (
                prev.offset_ms + prev.audio_ms if prev and prev.response_id == response_id else 0.0
            )
            prev = self._playing = _Playing(item_id, response_id, self._clock(), offset)
        prev.audio_ms += nbytes / 2 / AUDIO_RATE * 1000.0

    # -- server events ------------------------------------------------------------------

    def feed(self, event: JsonDict) -> list[ProtocolEvent]:
        kind = event.get("type", "")
        handler = _HANDLERS.get(kind)
        return handler(self, event) if handler is not None else []

    def _session(self, e: JsonDict) -> list[ProtocolEvent]:
        return [SessionReady(dict(e.get("session") or {}))]

    def _speech_started(self, e: JsonDict) -> list[ProtocolEvent]:
        return [SpeechStarted(e.get("item_id")), *self.interrupt()]

    def _user_transcript(self, e: JsonDict) -> list[ProtocolEvent]:
        text = str(e.get("transcript") or "")
        if text:
            self.remember(user_text_item(text))
        return [UserTranscript(text, str(e.get("item_id", "")))]

    def _response_created(self, e: JsonDict) -> list[ProtocolEvent]:
        r = e.get("response") or {}
        self._response = _Response(id=str(r.get("id", "")), metadata=r.get("metadata"))
        return []

    def _current(self, e: JsonDict) -> _Response:
        rid = str(e.get("response_id", ""))
        if self._response is None or self._response.id != rid:
            self._response = _Response(id=rid, metadata=None)
        return self._response

    def _item_added(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        item = e.get("item") or {}
        if item.get("type") == "message" and resp.audio_item is None:
            resp.audio_item = str(item.get("id", ""))
        if item.get("type") == "function_call":
            resp.call_names[str(item.get("id"))] = str(item.get("name", ""))
            resp.call_args[str(item.get("id"))] = []
        return []

    def _audio_delta(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        pcm = base64.b64decode(e.get("delta") or "")
        item_id = str(e.get("item_id", ""))
        self._advance_playing(item_id, resp.id, len(pcm))
        resp.had_audio = True
        return [AudioDelta(pcm, resp.id, item_id)]

    def _buffer_started(self, e: JsonDict) -> list[ProtocolEvent]:
        rid = str(e.get("response_id", ""))
        resp = self._response if self._response and self._response.id == rid else None
        item = resp.audio_item if resp and resp.audio_item else rid
        self._streaming = _Streaming(rid, item)
        return []

    def _buffer_stopped(self, e: JsonDict) -> list[ProtocolEvent]:
        streaming = self._streaming
        if streaming is None or streaming.response_id != str(e.get("response_id", "")):
            return []
        self._streaming = None
        interrupted = e.get("type") == "output_audio_buffer.cleared"
        return [AudioDone(streaming.response_id, interrupted)] if streaming.had_audio else []

    def _transcript_done(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        text = str(e.get("transcript") or "")
        resp.text.append(text)
        return [AgentTranscript(text, resp.id, str(e.get("item_id", "")))]

    def _text_delta(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        return [TextResponse(str(e.get("delta", "")), resp.id, e.get("item_id"), False)]

    def _text_done(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        text = str(e.get("text") or "")
        resp.text.append(text)
        return [TextResponse(text, resp.id, e.get("item_id"), True)]

    def _args_delta(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        resp.call_args.setdefault(str(e.get("item_id")), []).append(str(e.get("delta", "")))
        return []

    def _args_done(self, e: JsonDict) -> list[ProtocolEvent]:
        resp = self._current(e)
        item_id = str(e.get("item_id"))
        deltas = resp.call_args.pop(item_id, [])
        arguments = e.get("arguments")
        if not isinstance(arguments, str):
            arguments = "".join(deltas)
        name = str(e.get("name") or resp.call_names.get(item_id, ""))
        call_id = str(e.get("call_id", ""))
        self.remember(function_call_item(call_id, name, arguments))
        self._open_calls.add(call_id)
        return [ToolCall(call_id, name, arguments)]

    def _response_done(self, e: JsonDict) -> list[ProtocolEvent]:
        r = e.get("response") or {}
        rid = str(r.get("id", ""))
        resp = self._response if self._response and self._response.id == rid else None
        self._response = None
        text = " ".join(t for t in (resp.text if resp else []) if t)
        status = str(r.get("status", "completed"))
        if text and status == "completed":
            self.remember(assistant_text_item(text))
        out: list[ProtocolEvent] = []
        if resp is not None and resp.had_audio:
            out.append(AudioDone(rid, interrupted=status != "completed"))
        out.append(ResponseFinished(rid, status, text, r.get("metadata")))
        if self._pending_response_create and not self._open_calls:
            self._pending_response_create = False
            out.append(Send(response_create()))
        return out

    def _error(self, e: JsonDict) -> list[ProtocolEvent]:
        err = e.get("error") or {}
        return [ServerError(str(err.get("message", "")), err.get("code"), err.get("event_id"))]


_HANDLERS: dict[str, Callable[[ProtocolState, JsonDict], list[ProtocolEvent]]] = {
    "session.created": ProtocolState._session,
    "session.updated": ProtocolState._session,
    "input_audio_buffer.speech_started": ProtocolState._speech_started,
    "conversation.item.input_audio_transcription.completed": ProtocolState._user_transcript,
    "response.created": ProtocolState._response_created,
    "response.output_item.added": ProtocolState._item_added,
    "response.output_audio.delta": ProtocolState._audio_delta,
    "response.output_audio_transcript.done": ProtocolState._transcript_done,
    "output_audio_buffer.started": ProtocolState._buffer_started,
    "output_audio_buffer.stopped": ProtocolState._buffer_stopped,
    "output_audio_buffer.cleared": ProtocolState._buffer_stopped,
    "response.output_text.delta": ProtocolState._text_delta,
    "response.output_text.done": ProtocolState._text_done,
    "response.function_call_arguments.delta": ProtocolState._args_delta,
    "response.function_call_arguments.done": ProtocolState._args_done,
    "response.done": ProtocolState._response_done,
    "error": ProtocolState._error,
}


def new_reply_tag() -> dict[str, str]:
    """Metadata that ties a ``generate_reply`` to its ``response.created``."""
    return {"vision_agents_reply": uuid.uuid4().hex}


def dumps(event: JsonDict) -> str:
    return json.dumps(event, separators=(",", ":"))
