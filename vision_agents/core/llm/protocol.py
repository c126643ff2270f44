"""The pure side of a realtime provider: a protocol object with no I/O.

In the style of python-websockets' ``Protocol``: our commands go in (``send_text``,
``send_audio``, ``send_frame``, ``send_tool_result``, ``request_reply``, ``interrupt``,
``connection_made``, ``connection_lost``), provider messages go in (``receive``), and two
lists come out: provider messages to send (``data_to_send``) and our typed events
(``events_received``). Every protocol decision lives in the provider's subclass, so it is
tested by feeding messages, without a network. ``ConnectionRuntime`` does the I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ProtocolViolation
from vision_agents.core.llm.events import Usage
from vision_agents.core.llm.tools import ToolResult

# -- events a protocol object produces (provider neutral) --------------------------------


@dataclass(frozen=True)
class AudioOut:
    pcm: PcmData
    response_id: str


@dataclass(frozen=True)
class AudioDone:
    response_id: str
    interrupted: bool


@dataclass(frozen=True)
class TextOut:
    text: str
    response_id: str
    is_complete: bool
    item_id: str | None = None


@dataclass(frozen=True)
class UserTranscript:
    text: str


@dataclass(frozen=True)
class UserSpeechStarted:
    """The provider heard the user start speaking (its voice activity detection)."""


@dataclass(frozen=True)
class AgentTranscript:
    text: str
    response_id: str | None = None


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any] | str


@dataclass(frozen=True)
class ToolCancel:
    call_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReplyFinished:
    """A response ended; ``tag`` ties it to the ``request_reply`` that asked for it."""

    response_id: str
    status: str
    text: str
    tag: str | None = None


@dataclass(frozen=True)
class UsageReported:
    usage: Usage
    response_id: str | None = None


@dataclass(frozen=True)
class ErrorReported:
    error: BaseException
    context: str


@dataclass(frozen=True)
class SwitchRequested:
    """The provider asked us to move to a new connection (goAway, session age).

    ``usable``: the old connection still works until the new one is up (make-before-break);
    False when it already refuses everything (an expired session), so it is treated as lost.
    """

    reason: str
    usable: bool = True
    within_s: float | None = None
    """Time left before the provider ends the old connection (goAway's ``timeLeft``)."""


@dataclass(frozen=True)
class ConnectionLost:
    """Emitted by the runtime: the link is gone; ``final`` when it gave up reconnecting.
    ``code``: the WebSocket close code when the provider closed it."""

    reason: str
    final: bool = False
    code: int | None = None


@dataclass(frozen=True)
class Reconnected:
    """Emitted by the runtime: a new link replaced the old one. ``downtime_s``: from the old
    link found dead to the new one in (0 for a planned switch); ``audio_replayed_s`` and
    ``audio_dropped_s``: user audio sent again on the new link, and dropped past the backlog's
    bound, since the old one went."""

    reason: str
    planned: bool
    attempt: int
    downtime_s: float = 0.0
    audio_replayed_s: float = 0.0
    audio_dropped_s: float = 0.0


ProtocolEvent = (
    AudioOut
    | AudioDone
    | TextOut
    | UserSpeechStarted
    | UserTranscript
    | AgentTranscript
    | ToolCall
    | ToolCancel
    | ReplyFinished
    | UsageReported
    | ErrorReported
    | SwitchRequested
    | ConnectionLost
    | Reconnected
)


# -- user audio across a connection switch ------------------------------------------------


@dataclass
class _SentChunk:
    seq: int
    data: bytes
    start: int
    """Byte offset on its link: where this chunk begins in the audio the link carried."""
    message: int
    """Index of the message that carried it among the link's client messages."""


class AudioBacklog:
    """User audio that may not be part of the provider's state yet, bounded in seconds.

    ``sent`` holds chunks sent on the live link and not yet confirmed; ``held`` holds chunks
    that came while no link was up. What confirms audio is the protocol's choice: a pong
    (``acknowledged``: it arrived), a commit point (``acknowledged_to``: the provider took the
    audio up to that byte of the link into the conversation), or a resumption handle
    (``acknowledged_through_message``: the resumable state holds those messages). After a
    link is lost both deques are sent again on the next link, oldest first, so nothing the
    user said is lost and nothing confirmed is heard twice. Past ``max_seconds`` the oldest
    audio goes; it is counted as dropped once it is known to be lost (held audio at once,
    sent audio when its link dies unconfirmed).
    """

    def __init__(self, bytes_per_second: int, max_seconds: float) -> None:
        self.max_bytes = int(bytes_per_second * max_seconds)
        self._sent: deque[_SentChunk] = deque()
        self._held: deque[bytes] = deque()
        self._seq = 0
        self._bytes = 0
        self._link_bytes = 0  # audio bytes the current link has carried
        self._confirmed_to = 0  # link bytes confirmed so far
        self.dropped_bytes = 0
        self.replayed_bytes = 0

    def mark(self) -> int:
        return self._seq

    def start_link(self) -> None:
        """A new link: byte offsets and message indexes count from its start."""
        self._link_bytes = self._confirmed_to = 0

    @property
    def link_bytes(self) -> int:
        """Audio bytes sent on the current link so far (the position of the next byte)."""
        return self._link_bytes

    def acknowledged(self, mark: int) -> None:
        """Chunks recorded up to ``mark`` arrived."""
        while self._sent and self._sent[0].seq <= mark:
            self._release_first()

    def acknowledged_through_message(self, index: int) -> None:
        """Chunks carried by the link's messages up to ``index`` are in the provider's state."""
        while self._sent and self._sent[0].message <= index:
            self._release_first()

    def acknowledged_to(self, position: int) -> None:
        """The link's audio up to byte ``position`` is in the provider's state; a chunk the
        position falls inside keeps only its unconfirmed tail."""
        if position <= self._confirmed_to:
            return
        self._confirmed_to = min(position, self._link_bytes)
        while self._sent and self._sent[0].start + len(self._sent[0].data) <= position:
            self._release_first()
        if self._sent and self._sent[0].start < position:
            first = self._sent[0]
            cut = position - first.start
            cut -= cut % 2  # whole 16-bit samples
            self._bytes -= cut
            self._sent[0] = _SentChunk(
                first.seq, first.data[cut:], first.start + cut, first.message
            )

    def record_sent(self, chunk: bytes, message: int = 0) -> None:
        self._seq += 1
        self._sent.append(_SentChunk(self._seq, chunk, self._link_bytes, message))
        self._link_bytes += len(chunk)
        self._bytes += len(chunk)
        self._trim()

    def hold(self, chunk: bytes) -> None:
        self._held.append(chunk)
        self._bytes += len(chunk)
        self._trim()

    def requeue_unacknowledged(self) -> None:
        """The link died: what it may have swallowed goes back in front of the held audio."""
        self._held.extendleft(c.data for c in reversed(self._sent))
        self.dropped_bytes += self._trimmed_unconfirmed
        self._sent.clear()
        self._confirmed_to = self._link_bytes

    def forget_unacknowledged(self) -> None:
        """The link was closed in order: what was sent on it arrived."""
        self._bytes -= sum(len(c.data) for c in self._sent)
        self._sent.clear()
        self._confirmed_to = self._link_bytes

    def take_held(self, max_chunk_bytes: int) -> list[bytes]:
        """The held audio, joined into chunks of at most ``max_chunk_bytes``."""
        out: list[bytes] = []
        current = bytearray()
        while self._held:
            chunk = self._held.popleft()
            self._bytes -= len(chunk)
            if current and len(current) + len(chunk) > max_chunk_bytes:
                out.append(bytes(current))
                current = bytearray()
            current += chunk
        if current:
            out.append(bytes(current))
        self.replayed_bytes += sum(len(c) for c in out)
        return out

    @property
    def held_bytes(self) -> int:
        return sum(len(c) for c in self._held)

    @property
    def unconfirmed_bytes(self) -> int:
        """Audio sent on the current link that nothing has confirmed yet."""
        return sum(len(c.data) for c in self._sent)

    @property
    def _trimmed_unconfirmed(self) -> int:
        """Sent audio trimmed for space before anything confirmed it: the oldest bytes of the
        link after the confirmed point, in front of the first chunk still kept."""
        front = self._sent[0].start if self._sent else self._link_bytes
        return max(0, front - self._confirmed_to)

    def _release_first(self) -> None:
        first = self._sent.popleft()
        self._bytes -= len(first.data)
        self._confirmed_to = max(self._confirmed_to, first.start + len(first.data))

    def _trim(self) -> None:
        while self._bytes > self.max_bytes and (self._sent or self._held):
            if self._sent:
                chunk = self._sent.popleft().data
            else:
                chunk = self._held.popleft()
                self.dropped_bytes += len(chunk)
            self._bytes -= len(chunk)


# -- the protocol object --------------------------------------------------------------------


class RealtimeProtocol(ABC):
    """Base of every provider protocol object: buffers outgoing messages and events, keeps the
    user's audio across connection switches. Subclasses decide everything else."""

    input_rate: int = 16000
    """PCM rate (mono, s16le) the provider takes; ``send_audio`` gets bytes at this rate."""
    provider: str = "realtime"

    def __init__(
        self,
        *,
        audio_backlog_s: float = 10.0,
        replay_chunk_ms: int = 200,
        audio_chunk_ms: int = 0,
    ) -> None:
        if not 0 <= audio_chunk_ms <= 1000:
            raise ValueError(f"audio_chunk_ms must be 0-1000 ms, got {audio_chunk_ms!r}")
        self.connected = False
        self._outgoing: list[Any] = []
        self._events: list[ProtocolEvent] = []
        self.audio = AudioBacklog(self.input_rate * 2, audio_backlog_s)
        self._replay_chunk_bytes = self.input_rate * 2 * replay_chunk_ms // 1000
        self._audio_chunk_bytes = self.input_rate * 2 * audio_chunk_ms // 1000
        self.audio_chunk_s = audio_chunk_ms / 1000
        self.audio_messages = 0
        """User audio messages sent so far."""
        self._pending_audio = bytearray()
        """User audio gathered into one message of ``audio_chunk_ms`` (0: each sent alone):
        a message a frame costs both sides per-message work (JSON, base64, framing) 50 times
        a second. Any other message first sends what is gathered, so the order holds."""
        self.frames_dropped = 0
        """Video frames given while no link was up (stale video is never sent later)."""
        self.link_messages = 0
        """Client messages queued for the current link so far (the first after the link's
        own opening, a Gemini ``setup``, is 1): the index a provider confirms messages by."""

    # -- the I/O side ------------------------------------------------------------------------

    def data_to_send(self) -> list[Any]:
        """Provider messages to send, in order; the list is handed over and cleared."""
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[ProtocolEvent]:
        """Our events since the last call, in order."""
        out, self._events = self._events, []
        return out

    def _send(self, message: Any) -> None:
        self.flush_audio()
        self._enqueue(message)

    def _enqueue(self, message: Any) -> int:
        """Append one message for the link; returns its index among the link's messages."""
        self._outgoing.append(message)
        self.link_messages += 1
        return self.link_messages

    def flush_audio(self) -> None:
        """Send the user audio gathered so far (less than ``audio_chunk_ms``) now."""
        if not self._pending_audio:
            return
        chunk = bytes(self._pending_audio)
        self._pending_audio.clear()
        if self.connected:
            self.audio.record_sent(chunk, self._enqueue(self._audio_message(chunk)))
            self.audio_messages += 1
        else:
            self.audio.hold(chunk)

    @property
    def audio_pending(self) -> bool:
        """Whether user audio is gathered and not yet sent (see ``flush_audio``)."""
        return bool(self._pending_audio)

    def _event(self, event: ProtocolEvent) -> None:
        self._events.append(event)

    def connection_made(self) -> None:
        """A new link is up: replay the session, then held audio, then pending turns."""
        self.connected = True
        self._outgoing.clear()  # anything queued for the old link is rebuilt below
        self.link_messages = 0
        self.audio.start_link()
        self._replay_session()
        for chunk in self.audio.take_held(self._replay_chunk_bytes):
            self.flush_audio()
            self.audio.record_sent(chunk, self._enqueue(self._audio_message(chunk)))
        self._resume_turns()

    def connection_lost(self, *, delivered: bool) -> None:
        """The link is gone. ``delivered``: it was closed in order by us (a planned switch),
        so what was sent on it arrived; otherwise unacknowledged audio is sent again."""
        pending = bytes(self._pending_audio)  # never sent: it goes after what is requeued
        self._pending_audio.clear()
        self.connected = False
        if delivered:
            self.audio.forget_unacknowledged()
        else:
            self.audio.requeue_unacknowledged()
        if pending:
            self.audio.hold(pending)
        self._outgoing.clear()
        self._on_connection_lost()

    def audio_mark(self) -> int:
        return self.audio.mark()

    def audio_acknowledged(self, mark: int) -> None:
        self.audio.acknowledged(mark)

    @property
    def frames_in_flight(self) -> int:
        """Frames sent whose arrival the provider has not confirmed yet; 0 where it confirms
        none. The session skips new frames while this is at ``MAX_FRAMES_IN_FLIGHT``."""
        return 0

    @property
    def ready_to_switch(self) -> bool:
        """Whether a planned switch may happen now (providers with resumption points wait)."""
        return True

    def report_violation(self, error: ProtocolViolation) -> None:
        self._event(ErrorReported(error, "a malformed or unexpected provider message"))

    # -- our commands ------------------------------------------------------------------------

    def send_audio(self, pcm: bytes) -> None:
        """User audio at ``input_rate`` (mono s16le); held while no link is up."""
        if not pcm:
            return
        if not self.connected:
            self.audio.hold(pcm)
            return
        self._pending_audio += pcm
        if len(self._pending_audio) >= self._audio_chunk_bytes:
            self.flush_audio()

    def send_frame(self, jpeg: bytes) -> None:
        """A video frame as JPEG; dropped (and counted) while no link is up."""
        if not self.connected:
            self.frames_dropped += 1
            return
        self._send(self._frame_message(jpeg))

    @abstractmethod
    def send_text(self, text: str) -> None:
        """A user text turn that gets a reply."""

    @abstractmethod
    def send_tool_result(self, result: ToolResult) -> None:
        """The result of a tool call the model made."""

    @abstractmethod
    def request_reply(self, instructions: str | None = None, tag: str | None = None) -> None:
        """Ask the model to respond (deferred while it is still answering)."""

    @abstractmethod
    def interrupt(self) -> None:
        """Stop the reply being spoken."""

    @abstractmethod
    def receive(self, message: Any) -> None:
        """One provider message in; raises ``ProtocolViolation`` for one it cannot accept."""

    # -- what subclasses fill in ---------------------------------------------------------------

    @abstractmethod
    def _audio_message(self, pcm: bytes) -> Any: ...

    @abstractmethod
    def _frame_message(self, jpeg: bytes) -> Any: ...

    @abstractmethod
    def _replay_session(self) -> None:
        """What a new link needs before any audio (settings, the conversation so far)."""

    @abstractmethod
    def _resume_turns(self) -> None:
        """After the replay: turns and tool results that are still owed an answer."""

    @abstractmethod
    def _on_connection_lost(self) -> None:
        """Close replies cut by the loss (as interrupted) and forget per-link state."""
