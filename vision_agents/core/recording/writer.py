"""Writes a call into media files as it happens: the mixed audio of every source and everyone's
video (a grid, or a file per camera). Synchronous and single-threaded: the recorder runs it in
its own thread."""

from __future__ import annotations

import fractions
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from vision_agents.core.recording.grid import VideoGrid
from vision_agents.core.recording.mixer import AudioMixer
from vision_agents.core.recording.timing import MediaClock, SenderGroup

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
# A picture at least this often, so the grid follows people leaving and the stream never stalls.
_KEEPALIVE_S = 1.0
# A source's next samples go right after its previous ones unless they are this far off.
_SNAP_SAMPLES = SAMPLE_RATE * 5 // 1000


@dataclass(frozen=True)
class ContainerFormat:
    """A file type we write: the container, its codecs and muxer options."""

    name: str
    video_codec: str
    audio_codec: str
    audio_format: str
    options: dict[str, str] = field(default_factory=dict)


FORMATS: dict[str, ContainerFormat] = {
    # Fragmented MP4: readable even if the process dies mid-call; no index grows in memory.
    ".mp4": ContainerFormat(
        "mp4", "libx264", "aac", "fltp", {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    ),
    ".webm": ContainerFormat("webm", "libvpx", "libopus", "flt"),
}


@dataclass
class WriterStats:
    audio_frames: int = 0
    video_frames: int = 0
    pictures: int = 0
    """Grid pictures encoded."""
    video_frames_dropped: int = 0
    """Frames pushed out of a source's holding queue before they could be shown."""
    late_audio_s: float = 0.0
    """Audio that arrived after its place in the file had been written (dropped)."""
    resyncs: int = 0
    """Times a source's timestamps jumped and its placement started over."""
    late_raises: int = 0
    """Times a sender's streams were moved later, together, because they came later than the
    recording waits for (``latency_s``): a short gap each, instead of their media dropped."""
    sender_dated: int = 0
    """Frames placed by their sender's wall clock (in step with that sender's other streams)."""
    video_sender_dated: int = 0
    """Of those, video frames."""


@dataclass
class _AudioSource:
    clock: MediaClock
    resampler: av.AudioResampler
    samples_seen: int = 0
    next_sample: int | None = None


@dataclass
class _VideoSource:
    clock: MediaClock
    pending: deque[tuple[float, int, av.VideoFrame]]
    current: tuple[int, av.VideoFrame] | None = None
    last_placed: float = -math.inf
    numbered: int = 0
    gone_at: float = math.inf


class _VideoOutput:
    """One video stream: a grid of its sources' newest frames, a picture whenever one of them
    has a new frame (at that frame's time), at most ``fps`` a second, at least once a second;
    each picture shows the frames due by half an interval after it."""

    def __init__(
        self,
        container: Any,
        spec: ContainerFormat,
        size: tuple[int, int],
        fps: float,
        bitrate: int,
        stats: WriterStats,
        *,
        owns_container: bool,
        start: float = 0.0,
    ) -> None:
        width, height = size
        self.grid = VideoGrid(width, height)
        stream: Any = container.add_stream(spec.video_codec, rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = VIDEO_TIME_BASE
        stream.codec_context.gop_size = max(1, round(2 * fps))
        if spec.video_codec != "libx264":  # x264 uses constant quality instead
            stream.bit_rate = bitrate
        stream.options = _video_options(spec.video_codec)
        self.container, self.stream, self.owns_container = container, stream, owns_container
        self.sources: dict[str, _VideoSource] = {}
        self.fps, self.stats, self.start = fps, stats, start
        self.last_picture: float | None = None
        self.last_pts = -1

    def compose_until(self, horizon: float) -> None:
        interval = 1.0 / self.fps
        while True:
            waiting = [s.pending[0][0] for s in self.sources.values() if s.pending]
            if self.last_picture is None:
                at = self.start
            else:
                due = max(min(waiting), self.last_picture + interval) if waiting else math.inf
                at = min(due, self.last_picture + _KEEPALIVE_S)
            if at > horizon:
                return
            self.picture(at)

    def picture(self, at: float) -> None:
        # A frame due within half a picture interval goes in this picture: with several
        # cameras, each at its own phase, a frame is shown at most that far from its time,
        # early or late, rather than up to a whole interval late (33 ms at 30 fps).
        nearest = at + 0.5 / self.fps
        shown: dict[str, tuple[int, av.VideoFrame]] = {}
        for source, state in list(self.sources.items()):
            if at >= state.gone_at:
                del self.sources[source]
                continue
            while state.pending and state.pending[0][0] <= nearest:
                _placed, number, frame = state.pending.popleft()
                state.current = (number, frame)
            if state.current is not None:
                shown[source] = state.current
        picture = self.grid.compose(shown)
        pts = max(round(at * VIDEO_TIME_BASE.denominator), self.last_pts + 1)
        picture.pts = pts
        picture.time_base = VIDEO_TIME_BASE
        self.last_pts = pts
        self.last_picture = at
        self.stats.pictures += 1
        self.container.mux(self.stream.encode(picture))

    def finish(self, end: float) -> None:
        """Pictures up to ``end``, the last one at ``end``; then flush (and close our file)."""
        try:
            self.compose_until(end)
            if self.last_picture is None or self.last_picture < end:
                self.picture(end)
            self.container.mux(self.stream.encode(None))
        finally:
            if self.owns_container:
                self.container.close()

    def abort(self) -> None:
        if self.owns_container:
            self.container.close()


class RecordingWriter:
    """Owns the output files. Media comes in with its arrival time on the recording's clock
    (seconds since the recording started); ``advance(now)`` writes everything older than
    ``now - latency_s``, the time allowed for late frames to arrive and be put in place.

    Each source is placed by its own timestamps (see ``MediaClock``) or, when its frames come
    dated on their sender's wall clock, in step with that sender's other streams (see
    ``SenderGroup``). Audio is resampled to 48 kHz mono and mixed. Video (``layout="grid"``): everyone in one grid in the same file.
    ``layout="per_track"``: the file holds the audio, and each camera gets a file of its own
    (``<stem>.video-<n>-<label><suffix>``, its own size, on the same clock).
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        video: bool = True,
        layout: str = "grid",
        latency_s: float = 1.0,
        audio_bitrate: int = 64_000,
        video_bitrate: int = 1_500_000,
        max_pending_frames: int | None = None,
    ) -> None:
        spec = FORMATS.get(path.suffix.lower())
        if spec is None:
            raise ValueError(
                f"cannot record to {path}: the name must end in {' or '.join(FORMATS)}"
            )
        if layout not in ("grid", "per_track"):
            raise ValueError(f"layout must be 'grid' or 'per_track', got {layout!r}")
        self.path = path
        self.spec = spec
        self.fps = fps
        self.layout = layout
        self.latency_s = latency_s
        self.stats = WriterStats()
        self.video_paths: list[Path] = []
        """Files of the per-track layout, in the order the cameras came."""
        self._video = video
        self._video_bitrate = video_bitrate
        # A source's frames wait up to latency_s to be shown: room for that at 30 fps, and more.
        if max_pending_frames is None:
            max_pending_frames = 32 + math.ceil(30 * latency_s)
        self._max_pending = max_pending_frames
        self._mixer = AudioMixer(SAMPLE_RATE, max_ahead_s=max(10.0, 4 * latency_s))
        self._audio_sources: dict[str, _AudioSource] = {}
        self._video_sources: dict[str, _VideoSource] = {}
        self._labels: dict[str, str] = {}
        self._gone: set[str] = set()
        self._senders: dict[str, SenderGroup] = {}  # a participant -> their streams
        self._container: Any = av.open(str(path), "w", format=spec.name, options=spec.options)
        self._grid: _VideoOutput | None = None
        self._tracks: dict[str, _VideoOutput] = {}  # per_track: source -> its own file
        try:
            audio: Any = self._container.add_stream(spec.audio_codec, rate=SAMPLE_RATE)
            audio.layout = "mono"
            audio.bit_rate = audio_bitrate
            self._audio_stream: Any = audio
            if video and layout == "grid":
                self._grid = _VideoOutput(
                    self._container,
                    spec,
                    (width, height),
                    fps,
                    video_bitrate,
                    self.stats,
                    owns_container=False,
                )
                self._grid.sources = self._video_sources
        except Exception:
            self._container.close()
            raise

    @property
    def written_s(self) -> float:
        """How much of the call is in the file (audio), in seconds."""
        return self._mixer.position / SAMPLE_RATE

    @property
    def held_frames(self) -> int:
        """Video frames waiting to be shown (bounded by ``max_pending_frames`` a source)."""
        return sum(len(s.pending) for s in self._video_sources.values())

    def add_audio(
        self,
        source: str,
        frame: av.AudioFrame,
        arrival: float,
        sender_s: float | None = None,
        sender: str | None = None,
    ) -> None:
        """``sender_s``: when the frame was captured on the clock of ``sender`` (a participant:
        all of their streams share it); their streams are then kept in step (``SenderGroup``)."""
        state = self._audio_sources.get(source)
        if state is None:
            if source in self._gone:
                return
            state = _AudioSource(
                MediaClock(), av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            )
            self._audio_sources[source] = state
        self.stats.audio_frames += 1
        if frame.pts is not None and frame.time_base is not None:
            media = float(frame.pts * frame.time_base)
        else:
            media = state.samples_seen / frame.sample_rate
        state.samples_seen += frame.samples
        resyncs = state.clock.resyncs
        placed = state.clock.place(media, arrival)
        self.stats.resyncs += state.clock.resyncs - resyncs
        if sender_s is not None and sender is not None:
            written = self._mixer.position / SAMPLE_RATE
            placed = self._sender_placed(sender, source, sender_s, arrival, written)
        start = round(placed * SAMPLE_RATE)
        if state.next_sample is not None and abs(start - state.next_sample) <= _SNAP_SAMPLES:
            start = state.next_sample
        for out in state.resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1).astype(np.float32, copy=False)
            self._mixer.add(samples, start)
            start += len(samples)
        state.next_sample = start

    def add_video_source(self, source: str, label: str = "") -> _VideoSource | None:
        """Give ``source`` its place now (else it gets one with its first frame); ``label``
        (a participant's name) goes into its file's name in the per-track layout."""
        state = self._video_sources.get(source)
        if state is None and source not in self._gone and self._video:
            state = self._video_sources[source] = _VideoSource(MediaClock(), deque())
            self._labels[source] = label
        return state

    def add_video(
        self,
        source: str,
        frame: av.VideoFrame,
        arrival: float,
        sender_s: float | None = None,
        sender: str | None = None,
    ) -> None:
        """``sender_s`` and ``sender``: as for ``add_audio``."""
        state = self.add_video_source(source)
        if state is None:
            return
        self.stats.video_frames += 1
        if frame.pts is not None and frame.time_base is not None:
            media = float(frame.pts * frame.time_base)
        else:
            media = arrival
        resyncs = state.clock.resyncs
        placed = state.clock.place(media, arrival)
        self.stats.resyncs += state.clock.resyncs - resyncs
        if sender_s is not None and sender is not None:
            output = self._grid if self._grid is not None else self._tracks.get(source)
            shown = output.last_picture if output is not None else None
            written = -math.inf if shown is None else shown
            placed = self._sender_placed(sender, source, sender_s, arrival, written)
            self.stats.video_sender_dated += 1
        placed = max(placed, state.last_placed + 1e-6)
        state.last_placed = placed
        state.numbered += 1
        if len(state.pending) >= self._max_pending:
            state.pending.popleft()
            self.stats.video_frames_dropped += 1
        state.pending.append((placed, state.numbered, frame))
        if self.layout == "per_track" and source not in self._tracks:
            self._open_track_file(source, state, frame, placed)

    def _sender_placed(
        self, sender: str, source: str, sender_s: float, arrival: float, written: float
    ) -> float:
        group = self._sender_group(sender)
        raises = group.raises
        placed = group.place(source, sender_s, arrival, not_before=written)
        self.stats.sender_dated += 1
        self.stats.late_raises += group.raises - raises
        return placed

    def _sender_group(self, sender: str) -> SenderGroup:
        group = self._senders.get(sender)
        if group is None:
            group = self._senders[sender] = SenderGroup()
        return group

    def remove_source(self, source: str, at: float) -> None:
        """The source left at ``at``: its cell goes from the grid (its file ends) from then on."""
        self._gone.add(source)
        for group in self._senders.values():
            group.remove(source)
        self._audio_sources.pop(source, None)
        state = self._video_sources.get(source)
        if state is not None:
            state.gone_at = at

    def advance(self, now: float) -> None:
        """Write everything older than ``now - latency_s``."""
        self._write_until(now - self.latency_s)

    def close(self, end: float) -> None:
        """Write the rest up to ``end`` (the stop time), finish the streams and close the files."""
        try:
            self._write_until(end)
            for output in [*self._tracks.values(), *([self._grid] if self._grid else [])]:
                output.finish(end)
            self._tracks.clear()
            self._container.mux(self._audio_stream.encode(None))
        finally:
            for output in self._tracks.values():
                output.abort()
            self._container.close()

    def abort(self) -> None:
        """Close the files without writing what is pending (after a failure)."""
        for output in self._tracks.values():
            output.abort()
        self._container.close()

    def _open_track_file(
        self, source: str, state: _VideoSource, frame: av.VideoFrame, placed: float
    ) -> None:
        label = "".join(c for c in self._labels.get(source, "") if c.isalnum() or c in "-_")
        name = f"{self.path.stem}.video-{len(self.video_paths) + 1}"
        path = self.path.with_name(
            f"{name}-{label}{self.path.suffix}" if label else f"{name}{self.path.suffix}"
        )
        container: Any = av.open(str(path), "w", format=self.spec.name, options=self.spec.options)
        try:
            size = (
                max(16, frame.width - frame.width % 2),
                max(16, frame.height - frame.height % 2),
            )
            output = _VideoOutput(
                container,
                self.spec,
                size,
                self.fps,
                self._video_bitrate,
                self.stats,
                owns_container=True,
                start=max(0.0, placed),
            )
        except Exception:
            container.close()
            raise
        output.sources = {source: state}
        self._tracks[source] = output
        self.video_paths.append(path)

    def _write_until(self, horizon: float) -> None:
        until = int(horizon * SAMPLE_RATE)
        if until > self._mixer.position:
            start = self._mixer.position
            self._encode_audio(self._mixer.take(until), start)
            self.stats.late_audio_s = self._mixer.late_samples / SAMPLE_RATE
        if self._grid is not None:
            self._grid.compose_until(horizon)
        for source, output in list(self._tracks.items()):
            gone_at = (
                self._video_sources[source].gone_at if source in self._video_sources else horizon
            )
            if gone_at <= horizon:  # that camera left: its file ends there, on its last frame
                del self._tracks[source]
                state = self._video_sources.pop(source, None)
                if state is not None:
                    state.gone_at = math.inf
                output.finish(gone_at)
            else:
                output.compose_until(horizon)

    def _encode_audio(self, samples: np.ndarray, start: int) -> None:
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format=self.spec.audio_format, layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._container.mux(self._audio_stream.encode(frame))


def _video_options(codec: str) -> dict[str, str]:
    if codec == "libx264":  # no lookahead or B-frames: nothing held back, little memory
        return {"preset": "veryfast", "tune": "zerolatency", "crf": "26"}
    if codec == "libvpx":
        return {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    return {}
