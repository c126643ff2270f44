"""Gemini Live as a protocol object without I/O.

``GeminiProtocol`` takes our commands and ``LiveServerMessage``s and decides every message we
send (as small ``Outgoing`` values the link hands to the SDK's session methods): turns wait
while the model answers, a goAway asks the runtime for a new connection, a lost connection
closes the reply it cut (the next reply has a new id), tool results not yet covered by a
resumption handle are sent again on the next connection, and held user audio follows them.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from google.genai import types

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ProtocolViolation, UnsupportedFeature
from vision_agents.core.llm.events import Usage
from vision_agents.core.llm.protocol import (
    AgentTranscript,
    AudioDone,
    AudioOut,
    RealtimeProtocol,
    ReplyFinished,
    SwitchRequested,
    TextOut,
    ToolCall,
    ToolCancel,
    UsageReported,
    UserTranscript,
)
from vision_agents.core.llm.tools import ToolResult, ToolSchema

INPUT_RATE = 16000
OUTPUT_RATE = 24000
INPUT_AUDIO_MIME = f"audio/pcm;rate={INPUT_RATE}"


# -- session settings -----------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSettings:
    """What goes into each ``setup`` (the first one and every resumption)."""

    response_modalities: tuple[str, ...] = ("AUDIO",)
    voice: str | None = None
    input_transcription: bool = True
    output_transcription: bool = True
    context_compression: bool = True
    """Sliding-window context compression. Without it the service ends an audio+video session
    after about 2 minutes (audio only: about 15) when the 128k-token context window fills up
    (Live API docs, "Session management": session lifetime and context window compression)."""
    compression_trigger_tokens: int | None = None
    """Context size that triggers compression; None: the service's default (80% of the
    model's context window)."""
    compression_target_tokens: int | None = None
    """Context size kept after compression; None: the service's default (half the trigger)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More ``LiveConnectConfig`` fields, passed as is."""


def build_config(
    settings: SessionSettings,
    *,
    instructions: str = "",
    tools: list[ToolSchema] | None = None,
    handle: str | None = None,
    transparent: bool = False,
) -> types.LiveConnectConfig:
    """The ``LiveConnectConfig`` for one connection; resumption is always enabled.
    ``transparent``: each handle says which of our messages its state holds (Vertex AI only:
    the SDK refuses it for the Gemini Developer API)."""
    config: dict[str, Any] = {
        "response_modalities": [types.Modality(m.upper()) for m in settings.response_modalities],
        "session_resumption": types.SessionResumptionConfig(
            handle=handle, transparent=True if transparent else None
        ),
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
    if settings.context_compression:
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


# -- outgoing messages (the link maps each to one SDK session call) ------------------------


@dataclass(frozen=True)
class RealtimeInput:
    """``send_realtime_input(audio=...)`` or ``(video=...)``."""

    audio: types.Blob | None = None
    video: types.Blob | None = None


@dataclass(frozen=True)
class ClientContent:
    """``send_client_content(turns=..., turn_complete=True)``."""

    turns: types.Content | None
    turn_complete: bool = True


@dataclass(frozen=True)
class ToolResponse:
    """``send_tool_response(function_responses=...)``."""

    responses: tuple[types.FunctionResponse, ...]


Outgoing = RealtimeInput | ClientContent | ToolResponse

MAX_AUDIO_PART_BYTES = 2 * OUTPUT_RATE * 30
"""One audio part longer than 30 s at the negotiated rate is refused (the service streams
short chunks; a huge one would cost memory far beyond its size once decoded)."""


@dataclass(frozen=True)
class _Turn:
    content: types.Content | None
    tag: str | None


class GeminiProtocol(RealtimeProtocol):
    """Session state and every decision of the Gemini Live protocol."""

    input_rate = INPUT_RATE
    provider = "gemini_realtime"

    def __init__(self, *, audio_backlog_s: float = 10.0, audio_chunk_ms: int = 0) -> None:
        super().__init__(audio_backlog_s=audio_backlog_s, audio_chunk_ms=audio_chunk_ms)
        self.handle: str | None = None
        """The newest resumable handle, from wherever it arrived."""
        self._seq = 0
        self._response_id: str | None = None
        self._text: list[str] = []
        self._transcript: list[str] = []
        self._turns: deque[_Turn] = deque()  # waiting for the reply in progress to end
        self._awaiting: deque[str | None] = deque()  # tags of turns sent, oldest first
        self._checkpoint = 0  # resumption handles received so far
        self._resumed_at = 0  # the checkpoint the newest connection resumed from
        self._results: list[tuple[int, ToolResult]] = []  # (checkpoint when sent, result)
        self._opening_at = 0
        self._sent_turns: list[tuple[int, _Turn]] = []  # (checkpoint when sent, turn)
        self._call_at: dict[str, int] = {}  # call id -> checkpoint when the model made it
        self._open_calls: set[str] = set()
        self._pong_mark = 0  # audio proven to have reached the server (a pong)
        self._opening = False  # a new connection is opening from the handle of that time
        self._deferred_ack: tuple[int | None, int] | None = None  # (message index, pong mark)
        self.lost_calls: list[str] = []
        """Calls made after the handle a new connection resumed from: that session never
        made them, so their results cannot be given to it (the service refuses them)."""
        self.go_aways = 0

    @property
    def response_id(self) -> str | None:
        """The id of the response being produced, or None between responses."""
        return self._response_id

    def connect_config(
        self,
        settings: SessionSettings,
        *,
        instructions: str,
        tools: list[ToolSchema],
        transparent: bool = False,
    ) -> types.LiveConnectConfig:
        """The config for the next connection: resumes with the newest handle."""
        self._opening_at = self._checkpoint
        self._opening = True
        self._apply_deferred_ack()  # the link it came on is still the current one
        return build_config(
            settings,
            instructions=instructions,
            tools=tools,
            handle=self.handle,
            transparent=transparent,
        )

    def connect_failed(self) -> None:
        """The connection ``connect_config`` was for never opened: handles confirm again."""
        self._opening = False
        self._apply_deferred_ack()

    def _apply_deferred_ack(self) -> None:
        deferred, self._deferred_ack = self._deferred_ack, None
        if deferred is not None:
            self._acknowledge(*deferred)

    def _acknowledge(self, consumed: int | None, pong_mark: int) -> None:
        if consumed is not None:
            # Transparent resumption: the state holds our messages up to this index.
            self.audio.acknowledged_through_message(consumed)
        else:
            self.audio.acknowledged(pong_mark)

    # -- commands --------------------------------------------------------------------------

    def _audio_message(self, pcm: bytes) -> RealtimeInput:
        return RealtimeInput(audio=types.Blob(data=pcm, mime_type=INPUT_AUDIO_MIME))

    def _frame_message(self, jpeg: bytes) -> RealtimeInput:
        return RealtimeInput(video=jpeg_blob(jpeg))

    def send_text(self, text: str) -> None:
        self._queue_turn(_Turn(text_turn(text), None))

    def request_reply(self, instructions: str | None = None, tag: str | None = None) -> None:
        """Gemini has no per-reply instructions: they go as a user text turn."""
        self._queue_turn(_Turn(text_turn(instructions) if instructions else None, tag))

    def _queue_turn(self, turn: _Turn) -> None:
        self._turns.append(turn)
        self._next_turn()

    def _next_turn(self) -> None:
        """A turn is sent when no reply is being produced, so it never cuts one short."""
        while self.connected and self._response_id is None and self._turns:
            turn = self._turns.popleft()
            self._awaiting.append(turn.tag)
            self._sent_turns.append((self._checkpoint, turn))
            self._send(ClientContent(turn.content, turn_complete=True))

    def send_tool_result(self, result: ToolResult) -> None:
        self._open_calls.discard(result.call_id or "")
        if (result.call_id or "") in self.lost_calls:
            return
        self._results.append((self._checkpoint, result))
        if self.connected:
            self._send(ToolResponse((function_response(result),)))

    def interrupt(self) -> None:
        raise UnsupportedFeature(
            self.provider,
            "interrupt",
            "Gemini Live stops a reply only when its own activity detection hears the user",
        )

    # -- connection switches ---------------------------------------------------------------

    def _replay_session(self) -> None:
        """The setup (with the handle) goes in the connect config: nothing to send here."""

    def _resume_turns(self) -> None:
        # Results sent after the handle this connection resumed from are not in its state
        # (a newer handle may have arrived on the old connection while this one opened).
        self._resumed_at = self._opening_at
        self._opening = False
        self._deferred_ack = None  # for the old link, whose unconfirmed audio was requeued
        self._results = [(at, r) for at, r in self._results if at >= self._resumed_at]
        gone = {
            cid
            for cid, at in self._call_at.items()
            if at >= self._resumed_at and cid not in self.lost_calls
        }
        if gone:
            self.lost_calls.extend(sorted(gone))
            self._open_calls -= gone
            self._results = [(at, r) for at, r in self._results if r.call_id not in gone]
            self.report_violation(
                ProtocolViolation(
                    f"tool calls {sorted(gone)} were made after the last resumable point and "
                    "are not part of the resumed session; their results are dropped"
                )
            )
        self._call_at = {c: at for c, at in self._call_at.items() if at >= self._resumed_at}
        # Turns sent after the resumed handle are not in the session either: send them again.
        again = [t for at, t in self._sent_turns if at >= self._resumed_at]
        self._sent_turns = []
        for turn in again:
            if turn.tag in self._awaiting:
                self._awaiting.remove(turn.tag)
        self._turns.extendleft(reversed(again))
        if self._results:
            self._send(ToolResponse(tuple(function_response(r) for _at, r in self._results)))
        self._next_turn()

    @property
    def ready_to_switch(self) -> bool:
        """An idle point: no reply being produced, no tool call or result waiting for a
        handle. The service marks handles non-resumable otherwise, so a planned switch waits
        for this (within the goAway's time left)."""
        return self._response_id is None and not self._open_calls and not self._results_pending

    @property
    def _results_pending(self) -> bool:
        return any(at >= self._checkpoint for at, _r in self._results) or any(
            at >= self._checkpoint for at, _t in self._sent_turns
        )

    def audio_acknowledged(self, mark: int) -> None:
        # A pong only proves arrival; a resumed session holds what came before its handle,
        # so audio is released when a handle follows the pong (see ``receive``).
        self._pong_mark = mark

    def connection_lost(self, *, delivered: bool) -> None:
        # Even a connection closed in order delivered its audio to a session that the next
        # connection does not resume past its handle: send what came after the handle again.
        super().connection_lost(delivered=False)

    def _on_connection_lost(self) -> None:
        self._finish(interrupted=True)
        self._transcript = []

    # -- server messages ---------------------------------------------------------------------

    def receive(self, message: Any) -> None:
        if not isinstance(message, types.LiveServerMessage):
            raise ProtocolViolation(f"expected a LiveServerMessage, got {type(message).__name__}")
        update = message.session_resumption_update
        if update is not None and update.new_handle and update.resumable is not False:
            # The service has checkpointed everything it received before this handle: the
            # audio a pong proved delivered before this message came is part of it.
            self.handle = update.new_handle
            self._checkpoint += 1
            consumed = update.last_consumed_client_message_index
            ack = (None if consumed is None else int(consumed), self._pong_mark)
            if self._opening:
                # The connection opening now resumes from an older handle: audio past that
                # stays unconfirmed (sent again there) unless that connection is dropped.
                self._deferred_ack = ack
            else:
                self._acknowledge(*ack)
            # Older than the handle before this one: no connection can resume before them.
            keep = min(self._checkpoint - 1, self._opening_at)
            self._sent_turns = [(a, t) for a, t in self._sent_turns if a >= keep]
            self._results = [(a, r) for a, r in self._results if a >= keep]
            self._call_at = {c: a for c, a in self._call_at.items() if a >= keep}
        if message.tool_call is not None:
            for call in message.tool_call.function_calls or []:
                call_id = call.id or f"{call.name}-{self._next_id()}"
                self._call_at[call_id] = self._checkpoint
                self._open_calls.add(call_id)
                self._event(ToolCall(call_id, call.name or "", dict(call.args or {})))
        if message.tool_call_cancellation is not None:
            ids = tuple(message.tool_call_cancellation.ids or ())
            if ids:
                self._event(ToolCancel(ids))
        if message.usage_metadata is not None:
            self._event(UsageReported(usage_from_gemini(message.usage_metadata), self._response_id))
        if message.server_content is not None:
            self._content(message.server_content)
        if message.go_away is not None:
            self.go_aways += 1
            left = message.go_away.time_left
            self._event(SwitchRequested(f"goAway (time left {left})", within_s=_seconds(left)))

    def _content(self, content: types.LiveServerContent) -> None:
        if content.input_transcription is not None and content.input_transcription.text:
            self._event(UserTranscript(content.input_transcription.text))
        if content.model_turn is not None:
            for part in content.model_turn.parts or []:
                self._part(part)
        if content.output_transcription is not None and content.output_transcription.text:
            response_id = self._open()
            self._transcript.append(content.output_transcription.text)
            self._event(AgentTranscript(content.output_transcription.text, response_id))
        if content.interrupted:
            self._finish(interrupted=True)
        if content.turn_complete:
            self._finish(interrupted=False)

    def _part(self, part: types.Part) -> None:
        blob = part.inline_data
        if blob is not None and blob.data and (blob.mime_type or "").startswith("audio/pcm"):
            rate = _rate(blob.mime_type)
            if rate != OUTPUT_RATE:
                self.report_violation(
                    ProtocolViolation(
                        f"audio at {rate} Hz; the session negotiated {OUTPUT_RATE} Hz (dropped)"
                    )
                )
                return
            if len(blob.data) > MAX_AUDIO_PART_BYTES or len(blob.data) % 2:
                self.report_violation(
                    ProtocolViolation(
                        f"an audio part of {len(blob.data)} bytes (dropped; limit "
                        f"{MAX_AUDIO_PART_BYTES}, 16-bit samples)"
                    )
                )
                return
            pcm = PcmData.from_bytes(blob.data, sample_rate=rate, channels=1)
            self._event(AudioOut(pcm, self._open()))
        elif part.text and not part.thought:
            response_id = self._open()
            self._text.append(part.text)
            self._event(TextOut(part.text, response_id, is_complete=False))

    def _open(self) -> str:
        if self._response_id is None:
            self._response_id = f"resp-{self._next_id()}"
        return self._response_id

    def _finish(self, *, interrupted: bool) -> None:
        response_id, self._response_id = self._response_id, None
        if response_id is not None:
            text = "".join(self._text) or "".join(self._transcript)
            if self._text and not interrupted:
                self._event(TextOut("".join(self._text), response_id, is_complete=True))
            self._text, self._transcript = [], []
            self._event(AudioDone(response_id, interrupted))
            tag = self._awaiting.popleft() if self._awaiting and not interrupted else None
            status = "interrupted" if interrupted else "completed"
            self._event(ReplyFinished(response_id, status, text, tag))
        elif not interrupted and self._awaiting:
            self._awaiting.popleft()  # a turn answered with nothing
        self._next_turn()

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq


def usage_from_gemini(meta: types.UsageMetadata) -> Usage:
    """``usageMetadata`` as our ``Usage``: per-modality counts (VIDEO counts as image)."""

    def by(details: list[types.ModalityTokenCount] | None, *names: str) -> int:
        total = 0
        for d in details or []:
            modality = d.modality.name if d.modality is not None else ""
            if modality in names:
                total += d.token_count or 0
        return total

    prompt, response = meta.prompt_tokens_details, meta.response_tokens_details
    return Usage(
        input_text=by(prompt, "TEXT"),
        input_audio=by(prompt, "AUDIO"),
        input_image=by(prompt, "IMAGE", "VIDEO"),
        input_cached=meta.cached_content_token_count or 0,
        output_text=by(response, "TEXT"),
        output_audio=by(response, "AUDIO"),
        total=meta.total_token_count or 0,
    )


def _seconds(duration: str | None) -> float | None:
    """A protobuf duration such as ``"59.5s"`` in seconds."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)s\s*", duration or "")
    return float(match.group(1)) if match else None


def _rate(mime_type: str | None) -> int:
    match = re.search(r"rate=(\d+)", mime_type or "")
    return int(match.group(1)) if match else OUTPUT_RATE
