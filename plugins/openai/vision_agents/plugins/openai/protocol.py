"""OpenAI Realtime (GA) as a protocol object without I/O.

``OpenAIProtocol`` takes our commands and the server's events (dicts) and decides every client
event: when a reply may be asked for (the API refuses a second active response), what barge-in
sends (nothing to cancel when server VAD already cancels), what a new connection is given
(settings, then the conversation in order, never a tool output without its call, then held
audio, then the replies still owed), and which replies a lost link cut (closed as interrupted).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ProtocolViolation, ProviderError
from vision_agents.core.llm.events import Usage
from vision_agents.core.llm.protocol import (
    AgentTranscript,
    AudioDone,
    AudioOut,
    ErrorReported,
    RealtimeProtocol,
    ReplyFinished,
    SwitchRequested,
    TextOut,
    ToolCall,
    UsageReported,
    UserSpeechStarted,
    UserTranscript,
)
from vision_agents.core.llm.tools import ToolResult
from vision_agents.plugins.openai.messages import (
    AUDIO_RATE,
    JsonDict,
    SessionSettings,
    assistant_text_item,
    audio_append,
    audio_clear,
    audio_commit,
    dumps,
    function_call_item,
    function_output_item,
    image_item,
    item_create,
    output_audio_clear,
    response_cancel,
    response_create,
    session_update,
    truncate,
    user_text_item,
)

__all__ = [
    "AUDIO_RATE",
    "BENIGN_ERRORS",
    "MediaAudio",
    "OpenAIProtocol",
    "PlayedMs",
    "SessionSettings",
    "dumps",
    "estimate_played_ms",
]

REPLY_TAG = "vision_agents_reply"
"""Response metadata key that ties a ``response.create`` to its ``response.created``."""

BENIGN_ERRORS = frozenset({"response_cancel_not_active"})
"""Error codes that only say a race was lost harmlessly; logged, never surfaced."""

MAX_AUDIO_DELTA_BYTES = 2 * AUDIO_RATE * 30
"""One audio delta longer than 30 s is not something the service sends: refused."""

MAX_AUDIO_DELTA_CHARS = MAX_AUDIO_DELTA_BYTES * 4 // 3 + 4
"""The same bound on the delta's base64 text, checked before anything is decoded."""

PlayedMs = Callable[[str, float, float | None], float]
"""``(item_id, received_ms, first_audio_at) -> played_ms`` for barge-in truncation."""


FRAME_CONFIRM_TIMEOUT_S = 5.0
"""After this long unconfirmed, a frame no longer counts as in flight (the service lost it)."""

MIN_COMMIT_BYTES = AUDIO_RATE * 2 // 10
"""The service refuses to commit less than 100 ms of audio (``input_audio_buffer_commit_empty``)."""


def estimate_played_ms(clock: Callable[[], float]) -> PlayedMs:
    """Played position estimated as real time since the item's first audio, capped at what
    arrived (audio plays at 1x from its first chunk)."""

    def played(item_id: str, received_ms: float, first_at: float | None) -> float:
        if first_at is None:
            return 0.0
        return max(0.0, min(received_ms, (clock() - first_at) * 1000.0))

    return played


@dataclass
class _Playing:
    item_id: str
    response_id: str
    first_audio_at: float
    offset_ms: float = 0.0  # the response's audio before this item (several audio items)
    audio_ms: float = 0.0


@dataclass
class _Response:
    id: str
    tag: str | None
    text: list[str] = field(default_factory=list)
    had_audio: bool = False
    done_sent: bool = False  # its AudioDone went out (barge-in): never a second one
    audio_item: str | None = None
    call_names: dict[str, str] = field(default_factory=dict)
    call_args: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Streaming:
    """WebRTC: the response whose audio the server streams on the media track."""

    response_id: str
    item_id: str
    had_audio: bool = False


@dataclass(frozen=True)
class MediaAudio:
    """WebRTC: user audio for the link's microphone track (not a data channel message)."""

    pcm: bytes


@dataclass(frozen=True)
class _ReplyRequest:
    instructions: str | None
    tag: str


class OpenAIProtocol(RealtimeProtocol):
    """Session state and every decision of the OpenAI Realtime protocol."""

    input_rate = AUDIO_RATE
    provider = "openai_realtime"

    def __init__(
        self,
        settings: SessionSettings | None = None,
        *,
        provider: str = "openai_realtime",
        media_audio: bool = False,
        clock: Callable[[], float] = time.monotonic,
        played_ms: PlayedMs | None = None,
        max_history: int = 200,
        audio_backlog_s: float = 10.0,
        audio_chunk_ms: int = 0,
    ) -> None:
        # Over WebRTC the user's audio is a media track: 20 ms frames, never gathered.
        super().__init__(
            audio_backlog_s=audio_backlog_s, audio_chunk_ms=0 if media_audio else audio_chunk_ms
        )
        self.provider = provider
        self.settings = settings or SessionSettings()
        self.media_audio = media_audio
        self.image_detail: str | None = None
        """``detail`` of the frames' ``input_image`` parts (None: left out, i.e. "auto")."""
        """WebRTC: the model's audio comes on a media track (``track_audio``), not as deltas."""
        self._clock = clock
        self._played_ms = played_ms or estimate_played_ms(clock)
        self.response_played_ms: Callable[[str], float | None] | None = None
        """``response_id -> ms played`` from the real player; wins over ``played_ms``."""
        self.history: list[JsonDict] = []
        self.max_history = max_history
        self.truncations: list[tuple[str, int]] = []
        self._response: _Response | None = None
        self._requested: _ReplyRequest | None = None  # sent, its response.created not seen yet
        self._queue: deque[_ReplyRequest] = deque()
        self._open_calls: set[str] = set()
        self._reply_after_calls = False
        self._cancelled: set[str] = set()
        self._unconfirmed_frames: dict[str, float] = {}  # frame item id -> sent at
        self._frames_confirmed = False
        self._playing: _Playing | None = None
        self._streaming: _Streaming | None = None
        self._expired = False
        # Commit points: link byte positions of the user audio the service takes into the
        # conversation. A manual commit or clear takes everything sent before it; server VAD
        # reports where speech stopped (``audio_end_ms``) before its commit.
        self._commits: deque[int] = deque()
        self._clears: deque[int] = deque()
        self._vad_end: int | None = None
        self._committed_to = 0
        self.audio_produced = False
        """The session spoke: the service then refuses a change of voice."""

    # -- state -------------------------------------------------------------------------------

    @property
    def response_active(self) -> bool:
        return self._response is not None or self._requested is not None

    @property
    def server_interrupts(self) -> bool:
        """Server VAD cancels the reply itself when the user speaks (``interrupt_response``
        defaults to true), so barge-in must not send ``response.cancel`` again."""
        td = self.settings.turn_detection
        return td is not None and td.get("interrupt_response", True) is not False

    @property
    def pending_replies(self) -> int:
        return len(self._queue) + (self._requested is not None)

    def remember(self, item: JsonDict) -> None:
        self.history.append(item)
        if len(self.history) > self.max_history:
            del self.history[: len(self.history) - self.max_history]

    def replay_items(self) -> list[JsonDict]:
        """The conversation for a new connection, in order; a tool output whose call was
        trimmed away is left out (the API refuses an output without its call)."""
        calls = {i["call_id"] for i in self.history if i.get("type") == "function_call"}
        return [
            i
            for i in self.history
            if i.get("type") != "function_call_output" or i.get("call_id") in calls
        ]

    # -- commands ------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        item = user_text_item(text)
        self.remember(item)
        if self.connected:
            self._send(item_create(item))
        self.request_reply()

    def send_tool_result(self, result: ToolResult) -> None:
        call_id = result.call_id or ""
        item = function_output_item(call_id, result.to_json())
        self.remember(item)
        self._open_calls.discard(call_id)
        if self.connected:
            self._send(item_create(item))
        if self._open_calls or self._response is not None:
            # One reply once every call of the turn is answered and the response that made
            # the calls is done (it may still announce more calls).
            self._reply_after_calls = True
            return
        self._reply_after_calls = False
        self.request_reply()

    def request_reply(self, instructions: str | None = None, tag: str | None = None) -> None:
        self._queue.append(_ReplyRequest(instructions, tag or uuid.uuid4().hex))
        self._next_reply()

    def _next_reply(self) -> None:
        """Send the next queued ``response.create`` if nothing is active (else after done)."""
        if not self.connected or self.response_active or not self._queue or self._open_calls:
            return
        request = self._queue.popleft()
        self._requested = request
        if (
            self.settings.turn_detection is None
            and not self.media_audio
            and self._uncommitted_bytes >= MIN_COMMIT_BYTES
        ):
            # Without turn detection what the user said since the last commit is their
            # turn: it becomes an item before the reply (the service answers only from
            # items; an uncommitted buffer is not part of the conversation).
            self.commit_audio()
        self._send(response_create(request.instructions, {REPLY_TAG: request.tag}))

    def update_session(self) -> None:
        if self.connected:
            self._send(session_update(self.settings, include_model=False))

    def commit_audio(self) -> None:
        if self.connected:
            self.flush_audio()
            self._commits.append(self.audio.link_bytes)
            self._committed_to = self.audio.link_bytes
            self._send(audio_commit())

    def clear_audio(self) -> None:
        self._pending_audio.clear()  # gathered audio is part of what is cleared
        if self.connected:
            self._clears.append(self.audio.link_bytes)
            self._committed_to = self.audio.link_bytes
            self._send(audio_clear())

    @property
    def _uncommitted_bytes(self) -> int:
        return self.audio.link_bytes + len(self._pending_audio) - self._committed_to

    def audio_acknowledged(self, mark: int) -> None:
        # A pong proves the socket, not the model: audio counts as taken only at a commit
        # point (a new session never holds the old one's uncommitted buffer). Over WebRTC
        # the audio is a media track and is never replayed.
        if self.media_audio:
            super().audio_acknowledged(mark)

    def connection_lost(self, *, delivered: bool) -> None:
        # Even a session closed in order took only its committed audio with it.
        super().connection_lost(delivered=delivered if self.media_audio else False)

    def truncate(self, item_id: str, audio_end_ms: int, content_index: int = 0) -> None:
        if self.connected:
            self._send(truncate(item_id, audio_end_ms, content_index))

    def interrupt(self) -> None:
        """Stop the reply: cancel it if one is active, truncate what still plays."""
        self._barge_in(cancel=True)

    def _barge_in(self, *, cancel: bool) -> None:
        resp, playing, streaming = self._response, self._playing, self._streaming
        if resp is not None:
            self._cancelled.add(resp.id)
            if cancel and self.connected:
                self._send(response_cancel())
        still_playing = False
        # Over WebRTC the server plays the audio and cuts it itself on a VAD barge-in.
        if playing is not None and (cancel or not self.media_audio):
            played = self._played_of(playing)
            if played < playing.audio_ms - 1:
                still_playing = True
                end = int(played)
                self.truncations.append((playing.item_id, end))
                if self.connected:
                    self._send(truncate(playing.item_id, end))
        self._playing = None
        if streaming is not None:
            self._streaming = None
            if cancel and self.connected:
                self._send(output_audio_clear())
            if streaming.had_audio:
                self._close_audio(streaming.response_id)
            return
        if resp is not None and resp.had_audio:
            self._close_audio(resp.id)
        elif still_playing and playing is not None:
            self._close_audio(playing.response_id)

    def _close_audio(self, response_id: str) -> None:
        resp = self._response
        if resp is not None and resp.id == response_id:
            if resp.done_sent:
                return
            resp.done_sent = True
        self._event(AudioDone(response_id, interrupted=True))

    def track_audio(self, pcm_24k_s16: bytes) -> None:
        """WebRTC: audio from the media track, kept only while a response streams."""
        streaming = self._streaming
        if streaming is None or not pcm_24k_s16:
            return
        self._advance_playing(streaming.item_id, streaming.response_id, len(pcm_24k_s16))
        streaming.had_audio = self.audio_produced = True
        pcm = PcmData.from_bytes(pcm_24k_s16, AUDIO_RATE, 1, "s16")
        self._event(AudioOut(pcm, streaming.response_id))

    # -- connection switches -------------------------------------------------------------------

    def _audio_message(self, pcm: bytes) -> JsonDict | MediaAudio:
        return MediaAudio(pcm) if self.media_audio else audio_append(pcm)

    def _frame_message(self, jpeg: bytes) -> JsonDict:
        item_id = "va_frame_" + uuid.uuid4().hex[:20]  # item ids are at most 32 characters
        self._unconfirmed_frames[item_id] = self._clock()
        return image_item(jpeg, item_id, self.image_detail)

    @property
    def frames_in_flight(self) -> int:
        """Frames whose ``conversation.item.added`` has not come back. Counted only once the
        service has confirmed a frame on this link (one that never does is not held back),
        and a confirmation missing for ``FRAME_CONFIRM_TIMEOUT_S`` no longer counts."""
        if not self._frames_confirmed:
            return 0
        now = self._clock()
        for item_id, sent_at in list(self._unconfirmed_frames.items()):
            if now - sent_at > FRAME_CONFIRM_TIMEOUT_S:
                del self._unconfirmed_frames[item_id]
        return len(self._unconfirmed_frames)

    def _on_conversation_item_added(self, e: JsonDict) -> None:
        item_id = str((e.get("item") or {}).get("id", ""))
        if self._unconfirmed_frames.pop(item_id, None) is not None:
            self._frames_confirmed = True

    def _replay_session(self) -> None:
        self._expired = False
        self._send(session_update(self.settings))
        for item in self.replay_items():
            self._send(item_create(dict(item)))

    def _resume_turns(self) -> None:
        if self._reply_after_calls and not self._open_calls:
            self._reply_after_calls = False
            self._queue.append(_ReplyRequest(None, uuid.uuid4().hex))
        self._next_reply()

    def _on_connection_lost(self) -> None:
        self._commits.clear()
        self._clears.clear()
        self._vad_end = None
        self._committed_to = 0
        self._playing = None
        self._unconfirmed_frames.clear()
        self._frames_confirmed = False
        streaming, self._streaming = self._streaming, None
        if streaming is not None and streaming.had_audio:
            self._close_audio(streaming.response_id)
        resp, self._response = self._response, None
        requested, self._requested = self._requested, None
        if resp is not None:
            if resp.had_audio and not resp.done_sent:
                self._event(AudioDone(resp.id, interrupted=True))
            self._event(ReplyFinished(resp.id, "interrupted", "", None))
            # The turn it answered is still owed a reply: ask again on the next link.
            if resp.id not in self._cancelled:
                self._queue.appendleft(_ReplyRequest(None, resp.tag or uuid.uuid4().hex))
        if requested is not None and (resp is None or resp.tag != requested.tag):
            self._queue.appendleft(requested)
        self._cancelled.clear()

    # -- server events -------------------------------------------------------------------------

    def receive(self, message: Any) -> None:
        if not isinstance(message, dict):
            raise ProtocolViolation(f"expected a JSON object, got {type(message).__name__}")
        kind = str(message.get("type", ""))
        handler = _HANDLERS.get(kind)
        if handler is None:
            return
        try:
            handler(self, message)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # A field of the wrong type (a dict where text belongs, ...): refuse the event,
            # keep the session.
            raise ProtocolViolation(f"a malformed {kind!r} event: {exc!r}") from None

    def _current(self, e: JsonDict) -> _Response:
        """The active response an output event is for. The API sends ``response.created``
        before any output of a response, so output for another id is refused without state
        (a placeholder would block every later reply and be owed one after a drop)."""
        rid = str(e.get("response_id", ""))
        if self._response is None or self._response.id != rid:
            raise ProtocolViolation(
                f"a {e.get('type')!r} event for response {rid!r}, which no response.created opened"
            )
        return self._response

    def _on_speech_started(self, e: JsonDict) -> None:
        # Server VAD cancels the active response itself: sending response.cancel as well
        # only earns a response_cancel_not_active error. We still cut what plays locally.
        self._barge_in(cancel=not self.server_interrupts)
        self._event(UserSpeechStarted())

    def _on_speech_stopped(self, e: JsonDict) -> None:
        end = int(e.get("audio_end_ms", 0))
        self._vad_end = end * AUDIO_RATE * 2 // 1000

    def _on_committed(self, e: JsonDict) -> None:
        if self._vad_end is not None:
            position, self._vad_end = self._vad_end, None
        elif self._commits:
            position = self._commits.popleft()
        else:
            return  # a commit we cannot place (nothing of ours to confirm)
        self._committed_to = max(self._committed_to, position)
        self.audio.acknowledged_to(position)

    def _on_cleared(self, e: JsonDict) -> None:
        if self._clears:
            self.audio.acknowledged_to(self._clears.popleft())

    def _on_user_transcript(self, e: JsonDict) -> None:
        text = str(e.get("transcript") or "")
        if text:
            self.remember(user_text_item(text))
        self._event(UserTranscript(text))

    def _on_transcription_failed(self, e: JsonDict) -> None:
        err = e.get("error") or {}
        error = ProviderError(self.provider, err.get("code"), str(err.get("message", "")))
        self._event(ErrorReported(error, "input audio transcription failed"))

    def _on_response_created(self, e: JsonDict) -> None:
        r = e.get("response") or {}
        tag = (r.get("metadata") or {}).get(REPLY_TAG)
        if self._requested is not None and tag == self._requested.tag:
            self._requested = None
        self._response = _Response(id=str(r.get("id", "")), tag=tag)

    def _on_item_added(self, e: JsonDict) -> None:
        resp = self._current(e)
        item = e.get("item") or {}
        if item.get("type") == "message" and resp.audio_item is None:
            resp.audio_item = str(item.get("id", ""))
        if item.get("type") == "function_call":
            resp.call_names[str(item.get("id"))] = str(item.get("name", ""))
            resp.call_args[str(item.get("id"))] = []

    def _on_audio_delta(self, e: JsonDict) -> None:
        resp = self._current(e)
        if resp.id in self._cancelled:
            return  # in flight when the user barged in: never played
        data = e.get("delta") or ""
        if len(data) > MAX_AUDIO_DELTA_CHARS:
            raise ProtocolViolation(
                f"an audio delta of {len(data)} base64 chars, over the limit of "
                f"{MAX_AUDIO_DELTA_CHARS} (30 s of {AUDIO_RATE} Hz audio)"
            )
        try:
            pcm = base64.b64decode(data, validate=True)
        except ValueError:
            raise ProtocolViolation("an audio delta that is not base64") from None
        if len(pcm) % 2:
            raise ProtocolViolation("an audio delta with an odd byte count (not 16-bit PCM)")
        item_id = str(e.get("item_id", ""))
        self._advance_playing(item_id, resp.id, len(pcm))
        resp.had_audio = self.audio_produced = True
        self._event(AudioOut(PcmData.from_bytes(pcm, AUDIO_RATE, 1, "s16"), resp.id))

    def _on_buffer_started(self, e: JsonDict) -> None:
        rid = str(e.get("response_id", ""))
        resp = self._response if self._response and self._response.id == rid else None
        item = resp.audio_item if resp and resp.audio_item else rid
        self._streaming = _Streaming(rid, item)

    def _on_buffer_stopped(self, e: JsonDict) -> None:
        streaming = self._streaming
        if streaming is None or streaming.response_id != str(e.get("response_id", "")):
            return
        self._streaming = None
        if streaming.had_audio:
            interrupted = e.get("type") == "output_audio_buffer.cleared"
            self._event(AudioDone(streaming.response_id, interrupted))

    def _on_transcript_done(self, e: JsonDict) -> None:
        resp = self._current(e)
        text = str(e.get("transcript") or "")
        resp.text.append(text)
        self._event(AgentTranscript(text, resp.id))

    def _on_text_delta(self, e: JsonDict) -> None:
        resp = self._current(e)
        self._event(TextOut(str(e.get("delta", "")), resp.id, False, e.get("item_id")))

    def _on_text_done(self, e: JsonDict) -> None:
        resp = self._current(e)
        text = str(e.get("text") or "")
        resp.text.append(text)
        self._event(TextOut(text, resp.id, True, e.get("item_id")))

    def _on_args_delta(self, e: JsonDict) -> None:
        resp = self._current(e)
        resp.call_args.setdefault(str(e.get("item_id")), []).append(str(e.get("delta", "")))

    def _on_args_done(self, e: JsonDict) -> None:
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
        self._event(ToolCall(call_id, name, arguments))

    def _on_response_done(self, e: JsonDict) -> None:
        r = e.get("response") or {}
        rid = str(r.get("id", ""))
        resp = self._response if self._response and self._response.id == rid else None
        self._response = None
        self._cancelled.discard(rid)
        text = " ".join(t for t in (resp.text if resp else []) if t)
        status = str(r.get("status", "completed"))
        if text and status == "completed":
            self.remember(assistant_text_item(text))
        if resp is not None and resp.had_audio and not resp.done_sent:
            self._event(AudioDone(rid, interrupted=status != "completed"))
        if status == "failed":
            err = (r.get("status_details") or {}).get("error") or {}
            error = ProviderError(
                self.provider, err.get("code") or err.get("type"), str(err.get("message", ""))
            )
            self._event(ErrorReported(error, "the response failed"))
        usage = r.get("usage")
        if isinstance(usage, dict):
            self._event(UsageReported(usage_from_openai(usage), rid))
        tag = (r.get("metadata") or {}).get(REPLY_TAG) or (resp.tag if resp else None)
        self._event(ReplyFinished(rid, status, text, tag))
        if self._reply_after_calls and not self._open_calls:
            self._reply_after_calls = False
            self._queue.append(_ReplyRequest(None, uuid.uuid4().hex))
        self._next_reply()

    def _on_error(self, e: JsonDict) -> None:
        err = e.get("error") or {}
        code = err.get("code")
        if code == "conversation_already_has_active_response" and self._requested is not None:
            # Our request raced a response the server started itself: ask again after it.
            self._queue.appendleft(self._requested)
            self._requested = None
            return
        if code == "session_expired":
            # The service ends a session at its time limit and answers everything after
            # with this error while the socket stays open: move to a new connection once.
            if not self._expired:
                self._expired = True
                self._event(SwitchRequested("the session expired", usable=False))
            return
        if code in BENIGN_ERRORS:
            return
        error = ProviderError(self.provider, code, str(err.get("message", "")), err.get("event_id"))
        self._event(ErrorReported(error, "server error"))

    # -- barge-in position ---------------------------------------------------------------------

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


def usage_from_openai(usage: JsonDict) -> Usage:
    """``response.done.response.usage`` as our ``Usage`` (missing details count as 0)."""
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}

    def n(d: JsonDict, key: str) -> int:
        value = d.get(key)
        return int(value) if isinstance(value, int | float) else 0

    return Usage(
        input_text=n(inp, "text_tokens"),
        input_audio=n(inp, "audio_tokens"),
        input_image=n(inp, "image_tokens"),
        input_cached=n(inp, "cached_tokens"),
        output_text=n(out, "text_tokens"),
        output_audio=n(out, "audio_tokens"),
        total=n(usage, "total_tokens"),
    )


_HANDLERS: dict[str, Callable[[OpenAIProtocol, JsonDict], None]] = {
    "input_audio_buffer.speech_started": OpenAIProtocol._on_speech_started,
    "input_audio_buffer.speech_stopped": OpenAIProtocol._on_speech_stopped,
    "input_audio_buffer.committed": OpenAIProtocol._on_committed,
    "input_audio_buffer.cleared": OpenAIProtocol._on_cleared,
    "conversation.item.input_audio_transcription.completed": OpenAIProtocol._on_user_transcript,
    "conversation.item.input_audio_transcription.failed": OpenAIProtocol._on_transcription_failed,
    "conversation.item.added": OpenAIProtocol._on_conversation_item_added,
    "response.created": OpenAIProtocol._on_response_created,
    "response.output_item.added": OpenAIProtocol._on_item_added,
    "response.output_audio.delta": OpenAIProtocol._on_audio_delta,
    "response.output_audio_transcript.done": OpenAIProtocol._on_transcript_done,
    "output_audio_buffer.started": OpenAIProtocol._on_buffer_started,
    "output_audio_buffer.stopped": OpenAIProtocol._on_buffer_stopped,
    "output_audio_buffer.cleared": OpenAIProtocol._on_buffer_stopped,
    "response.output_text.delta": OpenAIProtocol._on_text_delta,
    "response.output_text.done": OpenAIProtocol._on_text_done,
    "response.function_call_arguments.delta": OpenAIProtocol._on_args_delta,
    "response.function_call_arguments.done": OpenAIProtocol._on_args_done,
    "response.done": OpenAIProtocol._on_response_done,
    "error": OpenAIProtocol._on_error,
}
