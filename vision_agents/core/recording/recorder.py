"""`CallRecorder`: writes a call the agent is in to a file while it happens (opt-in)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import av

from vision_agents.core.edge.events import (
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackRemovedEvent,
)
from vision_agents.core.edge.sender_clock import SenderClock
from vision_agents.core.errors import ConfigurationError, VisionAgentsError
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.recording.transcripts import TranscriptWriter
from vision_agents.core.recording.writer import FORMATS, RecordingWriter, WriterStats
from vision_agents.core.types import Participant

if TYPE_CHECKING:
    from vision_agents.core.agents.agent import Agent

logger = logging.getLogger(__name__)

Layout = Literal["grid", "per_track"]
LAYOUTS: tuple[str, ...] = ("grid", "per_track")
AGENT_SOURCE = "agent"
_CONSUMER = "recording"
# Queued media between the call and the writer thread; past these, frames are dropped (counted).
_AUDIO_QUEUE = 2000  # 20 ms frames: ~13 s for three voices
_VIDEO_QUEUE = 64
_POLL_S = 0.02
# The writer only writes this far past the newest media it got: if the event loop stalls (a
# busy machine), its frames come late but in time to be put in place, not dropped as late.
_STALL_S = 2.0

_F = TypeVar("_F", av.AudioFrame, av.VideoFrame)
_Item = tuple[str, _F, float, float | None, str | None]


class RecordingError(VisionAgentsError, RuntimeError):
    """Writing the recording failed (disk full, the file went away); the message says why."""


@dataclass(frozen=True)
class RecordingSummary:
    """What ``stop()`` wrote."""

    path: Path
    duration_s: float
    vtt_path: Path | None
    jsonl_path: Path | None
    video_paths: tuple[Path, ...]
    """The per-track layout's files, one a camera, in the order they came (grid: none)."""
    cameras: tuple[str, ...]
    """Whose camera each grid cell (or per-track file) shows, in the order the cameras came:
    cells fill the picture row by row in this order (while all of them are in the call)."""
    stats: WriterStats
    audio_frames_dropped: int
    """Frames dropped because the writer thread fell behind (the queue was full)."""
    video_frames_dropped: int


class CallRecorder:
    """Records a call: everyone's audio and the agent's voice mixed in time, everyone's video
    as a grid (``layout="per_track"``: a file per camera, ``<stem>.video-<n>-<name><suffix>``),
    and the transcript next to it (``<stem>.vtt`` and ``<stem>.jsonl``).

    ``.mp4`` gives H.264 and AAC (fragmented, so a file cut short by a crash still plays);
    ``.webm`` gives VP8 and Opus. Media is streamed to disk through bounded queues by one writer
    thread, so memory stays flat for calls of hours. While it records, the call's pages show a
    "Recording" badge (``indicator=False`` turns that off; think twice: people should know).

    Use ``await agent.start_recording(path)`` / ``await agent.stop_recording()``, or
    ``await recorder.start(agent)`` / ``await recorder.stop()``; stop and start again at any
    time, into a new file each time.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        layout: Layout = "grid",
        transcripts: bool = True,
        video: bool = True,
        size: tuple[int, int] = (1280, 720),
        fps: float = 30.0,
        overwrite: bool = False,
        indicator: bool = True,
        latency_s: float = 1.0,
    ) -> None:
        self.path = Path(path)
        _check_path(self.path, overwrite)
        if transcripts and not overwrite:
            for said in (self.path.with_suffix(".vtt"), self.path.with_suffix(".jsonl")):
                if said.exists():
                    raise ConfigurationError(
                        f"{said} (the transcript) already exists; pass overwrite=True to replace it"
                    )
        if layout not in LAYOUTS:
            raise ConfigurationError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        width, height = _check_size(size)
        if isinstance(fps, bool) or not isinstance(fps, int | float) or not 1 <= fps <= 60:
            raise ConfigurationError(f"fps must be a number from 1 to 60, got {fps!r}")
        if not 0.05 <= latency_s <= 5:
            raise ConfigurationError(f"latency_s must be from 0.05 to 5 seconds, got {latency_s!r}")
        spec = FORMATS[self.path.suffix.lower()]
        for codec in (spec.audio_codec, spec.video_codec if video else None):
            if codec is not None and codec not in av.codecs_available:
                other = [s for s, f in FORMATS.items() if f.video_codec in av.codecs_available]
                raise ConfigurationError(
                    f"this PyAV build cannot encode {codec} for {self.path.suffix} files; "
                    f"try {' or '.join(other) or 'another PyAV build'}"
                )
        self.layout = layout
        self.transcripts = transcripts
        self.video = video
        self.size = (width, height)
        self.fps = float(fps)
        self.indicator = indicator
        self.latency_s = latency_s
        self._agent: Agent | None = None
        self._writer: RecordingWriter | None = None
        self._transcript: TranscriptWriter | None = None
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[BaseException | None] | None = None
        # (source, frame, arrival, sender time or None, sender or None): see RecordingWriter.
        self._audio_q: queue.Queue[_Item[av.AudioFrame]] = queue.Queue(_AUDIO_QUEUE)
        self._video_q: queue.Queue[_Item[av.VideoFrame]] = queue.Queue(_VIDEO_QUEUE)
        self._clocks: dict[str, SenderClock | None] = {}  # track id -> its sender's clock
        self._gone: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        # (track id, name) of each camera in the order they came; appended on the loop before
        # the track's first frame is queued, read by the writer after it dequeues that frame.
        self._video_order: list[tuple[str, str]] = []
        self._registered = 0
        self._newest = 0.0  # the newest arrival the writer has seen (its thread only)
        self._stopping = threading.Event()
        self._t0 = 0.0
        self._stop_at = 0.0
        self._sources_of: dict[str, set[str]] = {}  # participant session -> their track ids
        self._summary: RecordingSummary | None = None
        self.audio_frames_dropped = 0
        self.video_frames_dropped = 0

    @property
    def recording(self) -> bool:
        return self._agent is not None

    @property
    def elapsed_s(self) -> float:
        """Seconds recorded so far (the duration once stopped)."""
        if self._agent is None:
            return self._summary.duration_s if self._summary else 0.0
        return time.monotonic() - self._t0

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats if self._writer is not None else WriterStats()

    @property
    def error(self) -> BaseException | None:
        """Why writing failed, once the writer thread has stopped on it; ``stop()`` raises it as
        a ``RecordingError``. The call goes on either way. (FFmpeg's muxers buffer their
        writes, so a full disk may only show when the file is finished.)"""
        done = self._done
        return done.result() if done is not None and done.done() else None

    @property
    def vtt_path(self) -> Path:
        return self.path.with_suffix(".vtt")

    @property
    def jsonl_path(self) -> Path:
        return self.path.with_suffix(".jsonl")

    async def start(self, agent: Agent) -> None:
        """Start recording the call ``agent`` is in (it must have joined)."""
        if self._agent is not None or self._summary is not None:
            raise RuntimeError(f"this recorder already recorded {self.path}; make a new one")
        width, height = self.size
        # Opening the file is quick; no executor thread is left behind.
        self._writer = RecordingWriter(
            self.path,
            width=width,
            height=height,
            fps=self.fps,
            video=self.video,
            layout=self.layout,
            latency_s=self.latency_s,
        )
        if self.transcripts:
            try:
                self._transcript = TranscriptWriter(self.vtt_path, self.jsonl_path)
            except Exception:
                self._writer.abort()
                raise
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._t0 = time.monotonic()
        self._agent = agent
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name=f"recording:{self.path.name}", daemon=True
        )
        self._thread.start()
        agent.audio_input.add_listener(self._on_participant_audio)
        agent.audio_track.add_frame_listener(self._on_agent_audio)
        if self.video:
            agent.video_input.add_consumer(_CONSUMER, self._video_handler)
        agent.events.subscribe(self._on_call_event)
        if self._transcript is not None:
            agent.llm.events.subscribe(self._on_transcript)
        logger.info("recording the call to %s", self.path)
        await self._announce(True)

    async def stop(self) -> RecordingSummary:
        """Finish the file (everything received so far is in it) and return what was written."""
        agent = self._agent
        if agent is None:
            if self._summary is not None:
                return self._summary
            raise RuntimeError("this recorder was never started")
        agent.audio_input.remove_listener(self._on_participant_audio)
        agent.audio_track.remove_frame_listener(self._on_agent_audio)
        if self.video:
            await agent.video_input.remove_consumer(_CONSUMER)
        agent.events.unsubscribe(self._on_call_event)
        if self._transcript is not None:
            agent.llm.events.unsubscribe(self._on_transcript)
        self._stop_at = time.monotonic() - self._t0
        self._stopping.set()
        assert self._done is not None and self._writer is not None
        error = await asyncio.shield(self._done)
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # it has finished: it resolved _done as its last act
        if self._transcript is not None:
            self._transcript.close()
        self._agent = None
        self._summary = RecordingSummary(
            path=self.path,
            duration_s=self._stop_at,
            vtt_path=self.vtt_path if self._transcript else None,
            jsonl_path=self.jsonl_path if self._transcript else None,
            video_paths=tuple(self._writer.video_paths),
            cameras=tuple(name for _, name in self._video_order),
            stats=self._writer.stats,
            audio_frames_dropped=self.audio_frames_dropped,
            video_frames_dropped=self.video_frames_dropped,
        )
        await self._announce(False, agent)
        if error is not None:
            raise RecordingError(f"recording to {self.path} failed: {error}") from error
        logger.info("recorded %.1f s of the call to %s", self._stop_at, self.path)
        return self._summary

    # -- on the event loop: taps, cheap; the writer thread does the work -------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    def _on_participant_audio(
        self, frame: av.AudioFrame, participant: Participant, track_id: str
    ) -> None:
        self._sources_of.setdefault(participant.session_id, set()).add(track_id)
        # A microphone's frame is handed over once its last sample is captured.
        age = frame.samples / frame.sample_rate
        sender_s = self._sender_time(track_id, frame)
        self._put_audio(track_id, frame, age, sender_s, participant.session_id)

    def _on_agent_audio(self, frame: av.AudioFrame) -> None:
        self._put_audio(AGENT_SOURCE, frame)  # handed over as it starts to play

    def _put_audio(
        self,
        source: str,
        frame: av.AudioFrame,
        age: float = 0.0,
        sender_s: float | None = None,
        sender: str | None = None,
    ) -> None:
        try:
            self._audio_q.put_nowait((source, frame, self._now() - age, sender_s, sender))
        except queue.Full:
            self.audio_frames_dropped += 1

    def _sender_time(self, track_id: str, frame: av.AudioFrame | av.VideoFrame) -> float | None:
        """When ``frame`` was captured on its sender's clock, where the edge knows it."""
        if track_id not in self._clocks:
            agent = self._agent
            self._clocks[track_id] = agent.edge.sender_clock(track_id) if agent else None
        clock = self._clocks[track_id]
        return clock.sender_time(frame.pts, frame.time_base) if clock is not None else None

    def _video_handler(
        self, participant: Participant, track_id: str
    ) -> Callable[[av.VideoFrame], Awaitable[None]]:
        self._sources_of.setdefault(participant.session_id, set()).add(track_id)
        self._video_order.append((track_id, participant.name or participant.user_id))

        sender = participant.session_id

        async def on_frame(frame: av.VideoFrame) -> None:
            sender_s = self._sender_time(track_id, frame)
            try:
                self._video_q.put_nowait((track_id, frame, self._now(), sender_s, sender))
            except queue.Full:
                self.video_frames_dropped += 1

        return on_frame

    async def _on_call_event(
        self, event: TrackRemovedEvent | ParticipantLeftEvent | ParticipantJoinedEvent
    ) -> None:
        if isinstance(event, TrackRemovedEvent):
            self._gone.put((event.track_id, self._now()))
        elif isinstance(event, ParticipantLeftEvent):
            for track_id in self._sources_of.pop(event.participant.session_id, set()):
                self._gone.put((track_id, self._now()))
        elif self._agent is not None:  # someone joined: their page learns we are recording
            await self._announce(True)

    async def _on_transcript(
        self, event: RealtimeAgentSpeechTranscriptionEvent | RealtimeUserSpeechTranscriptionEvent
    ) -> None:
        if self._transcript is None or self._agent is None:
            return
        if isinstance(event, RealtimeAgentSpeechTranscriptionEvent):
            self._transcript.add(
                self._now(), "agent", event.text, self._agent.agent_user.name or None
            )
        else:
            speaker = event.original.name if isinstance(event.original, Participant) else None
            self._transcript.add(self._now(), "user", event.text, speaker or None)

    async def _announce(self, active: bool, agent: Agent | None = None) -> None:
        agent = agent or self._agent
        if not self.indicator or agent is None:
            return
        try:
            await agent.edge.send_message({"type": "recording", "active": active})
        except Exception:
            logger.exception("could not tell the call's pages about the recording")

    # -- the writer thread ----------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        writer = self._writer
        assert writer is not None
        error: BaseException | None = None
        try:
            while not self._stopping.is_set():
                self._drain(writer, wait=True)
                writer.advance(min(self._now(), self._newest + _STALL_S))
            self._drain(writer, wait=False)
            writer.close(self._stop_at)
        except BaseException as exc:  # reported to stop(), which raises it
            error = exc
            logger.exception("recording to %s failed", self.path)
            try:
                writer.abort()
            except Exception:
                logger.exception("closing %s after the failure failed", self.path)
        try:
            loop.call_soon_threadsafe(self._finish, error)
        except RuntimeError:  # the loop is gone: nobody waits
            pass

    def _finish(self, error: BaseException | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(error)

    def _drain(self, writer: RecordingWriter, *, wait: bool) -> None:
        removed: list[tuple[str, float]] = []
        while True:  # read first, applied after the media: a source's last frames go in
            try:
                removed.append(self._gone.get_nowait())
            except queue.Empty:
                break
        audio: list[_Item[av.AudioFrame]] = []
        try:
            audio.append(self._audio_q.get(timeout=_POLL_S) if wait else self._audio_q.get_nowait())
        except queue.Empty:
            pass
        audio += [self._audio_q.get_nowait() for _ in range(self._audio_q.qsize())]
        video = [self._video_q.get_nowait() for _ in range(self._video_q.qsize())]
        while self._registered < len(self._video_order):  # cells in the order cameras came
            writer.add_video_source(*self._video_order[self._registered])
            self._registered += 1
        for item in [*audio[-1:], *video[-1:]]:
            self._newest = max(self._newest, item[2])
        for item in audio:
            writer.add_audio(*item)
        for frame_item in video:
            writer.add_video(*frame_item)
        for source, at in removed:
            writer.remove_source(source, at)


def _check_path(path: Path, overwrite: bool) -> None:
    if path.suffix.lower() not in FORMATS:
        raise ConfigurationError(
            f"cannot record to {path}: the file name must end in {' or '.join(FORMATS)}"
        )
    if not path.parent.is_dir():
        raise ConfigurationError(
            f"cannot record to {path}: the folder {path.parent} does not exist"
        )
    if path.exists() and not overwrite:
        raise ConfigurationError(f"{path} already exists; pass overwrite=True to replace it")


def _check_size(size: Any) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigurationError(f"size must be (width, height), got {size!r}") from None
    if (
        width != size[0]
        or height != size[1]
        or width < 16
        or height < 16
        or width % 2
        or height % 2
    ):
        raise ConfigurationError(
            f"size must be two even whole numbers of at least 16, got {size!r}"
        )
    return width, height
