"""Call recording: a real Agent on the in-memory edge, fed by synthetic camera and microphone
tracks that share one source clock, records to a file that is then decoded with PyAV.

The synthetic sources make a flash (white video frames) and a beep (1 kHz) at the same source
time, so the test can measure where each landed in the file. The browser test at the end
records a real call: two Chromium participants and the agent, 20 s.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamError, MediaStreamTrack

from tests.conftest import no_leaks, wait_until
from vision_agents.core import Agent, User
from vision_agents.core.edge.events import TrackAddedEvent
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.llm.events import RealtimeUserSpeechTranscriptionEvent
from vision_agents.core.recording import CallRecorder, RecordingError, RecordingWriter
from vision_agents.core.recording.grid import grid_cells
from vision_agents.core.recording.mixer import AudioMixer
from vision_agents.core.recording.timing import MediaClock
from vision_agents.testing import FakeRealtime, InMemoryEdge, dominant_hz, tone

SYNC_LIMIT_S = 0.040
RECORDER_LIMIT_S = 0.5 / 30 + 0.013  # half a 30 fps picture, and placement
CLAIM_LIMIT_S = 0.010
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "recording" / "main.py"


class SourceClock:
    """The capture clock one participant's camera and microphone share."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def since(self) -> float:
        return time.monotonic() - self.t0

    async def until(self, source_s: float) -> None:
        await asyncio.sleep(max(0.0, self.t0 + source_s - time.monotonic()))


class Microphone(MediaStreamTrack):
    """20 ms frames of 48 kHz stereo, each handed out when its last sample has been 'captured'.
    A steady ``hum_hz`` tone (0: silence) and a loud 1 kHz beep in [beep_at, beep_at + 0.1)."""

    kind = "audio"

    def __init__(
        self, clock: SourceClock, *, hum_hz: float = 0, beep_at: float | None = None
    ) -> None:
        super().__init__()
        self.clock, self.hum_hz, self.beep_at = clock, hum_hz, beep_at
        self._n = 0
        self._pts_base = 123_456  # RTP-like: timestamps do not start at zero

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        start = self._n * 0.02
        await self.clock.until(start + 0.02)
        t = start + np.arange(960) / 48000
        wave = 0.1 * np.sin(2 * np.pi * self.hum_hz * t) if self.hum_hz else np.zeros(960)
        if self.beep_at is not None:
            on = (t >= self.beep_at) & (t < self.beep_at + 0.1)
            wave[on] = 0.6 * np.sin(2 * np.pi * 1000 * t[on])
        samples = np.repeat((wave * 32767).astype(np.int16), 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self._pts_base + self._n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._n += 1
        return frame


class Camera(MediaStreamTrack):
    """30 fps frames of one colour (320x240 unless told), white in [flash_at, flash_at + 0.1)."""

    kind = "video"

    def __init__(
        self,
        clock: SourceClock,
        *,
        rgb: tuple[int, int, int] = (60, 60, 60),
        flash_at: float | None = None,
        size: tuple[int, int] = (320, 240),
    ) -> None:
        super().__init__()
        self.clock, self.rgb, self.flash_at, self.size = clock, rgb, flash_at, size
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        at = self._n / 30
        await self.clock.until(at)
        flash = self.flash_at is not None and self.flash_at <= at < self.flash_at + 0.1
        width, height = self.size
        image = np.full((height, width, 3), 255 if flash else self.rgb, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 7_000 + self._n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        self._n += 1
        return frame


@dataclass
class Decoded:
    streams: list[tuple[str, str]]
    duration_s: float
    audio: np.ndarray  # mono float32 at 48 kHz, from the file's start
    audio_start: float
    pictures: list[tuple[float, np.ndarray]]  # (time, rgb)


def decode(path: Path) -> Decoded:
    """The file's streams, duration, mono audio and every picture."""
    with av.open(str(path)) as container:
        streams: list[tuple[str, str]] = [(s.type, s.codec_context.name) for s in container.streams]
        duration = container.duration / 1_000_000 if container.duration else 0.0
        chunks: list[np.ndarray] = []
        start: float | None = None
        for sound in container.decode(audio=0) if container.streams.audio else []:
            if start is None:
                start = float(sound.time or 0.0)
            chunks.append(sound.to_ndarray().reshape(-1))  # we record mono
    pictures: list[tuple[float, np.ndarray]] = []
    if any(kind == "video" for kind, _ in streams):
        with av.open(str(path)) as container:
            for picture in container.decode(video=0):
                pictures.append((float(picture.time or 0.0), picture.to_ndarray(format="rgb24")))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return Decoded(streams, duration, audio, start or 0.0, pictures)


def _centre(rgb: np.ndarray) -> float:
    h, w = rgb.shape[0] // 2, rgb.shape[1] // 2
    return float(rgb[h - 20 : h + 20, w - 20 : w + 20].mean())


def _lit_width(rgb: np.ndarray) -> float:
    """The share of the picture's columns that are not black."""
    return float((rgb.mean(axis=(0, 2)) > 20).mean())


@asynccontextmanager
async def agent_in_call(
    model: FakeRealtime | None = None,
) -> AsyncIterator[tuple[Agent, InMemoryEdge]]:
    edge = InMemoryEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model or FakeRealtime(fps=2))
    call = await agent.create_call("default", "recorded")
    async with agent.join(call):
        yield agent, edge


@pytest.mark.timing
@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
async def test_a_flash_and_a_beep_made_together_land_together(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"call{suffix}"
    async with no_leaks():
        async with agent_in_call() as (agent, edge):
            clock = SourceClock()
            recorder = await agent.start_recording(path)
            flash_at = math.ceil((clock.since() + 1.5) * 30) / 30  # on a camera frame
            await edge.add_participant(
                "ann",
                tracks=[Microphone(clock, beep_at=flash_at), Camera(clock, flash_at=flash_at)],
            )
            await wait_until(lambda: clock.since() > flash_at + 1.0, 10, "the flash and beep")
            summary = await agent.stop_recording()
            assert summary is not None and not recorder.recording
    got = decode(path)
    flash = next(t for t, rgb in got.pictures if _centre(rgb) > 200)
    loud = np.flatnonzero(np.abs(got.audio) > 0.3)
    assert loud.size, f"no beep in the recording: {summary.stats}"
    beep = got.audio_start + loud[0] / 48000
    print(
        f"{suffix}: flash at {flash:.3f} s, beep at {beep:.3f} s: {1000 * (flash - beep):+.1f} ms"
    )
    assert abs(flash - beep) <= SYNC_LIMIT_S
    assert abs(dominant_hz(got.audio[loud[0] : loud[0] + 4000], 48000) - 1000) < 20


async def test_everyone_is_in_the_file_mixed_in_time_with_the_transcript(tmp_path: Path) -> None:
    path = tmp_path / "call.mp4"
    model = FakeRealtime(fps=2)
    async with agent_in_call(model) as (agent, edge):
        clock = SourceClock()
        ann = await edge.add_participant(
            "ann", tracks=[Microphone(clock, hum_hz=300), Camera(clock, rgb=(200, 30, 30))]
        )
        await edge.add_participant(
            "bob", tracks=[Microphone(clock, hum_hz=700), Camera(clock, rgb=(30, 30, 200))]
        )
        await wait_until(lambda: model.audio_received > 0.5, 10, "both microphones at the agent")
        started = time.monotonic()
        recorder = await agent.start_recording(path, size=(640, 360))
        await wait_until(lambda: recorder.elapsed_s > 1.0, 5, "a second of recording")
        model.events.send(RealtimeUserSpeechTranscriptionEvent(text="Hello Ada", original=ann))
        model.respond("Hello Ann, nice red shirt.", tone(1200, 1.0, sample_rate=24000))
        await wait_until(lambda: recorder.elapsed_s > 3.5, 5, "the reply to be played")
        stopping = time.monotonic()
        summary = await agent.stop_recording()
        stopped = time.monotonic()
    assert summary is not None
    got = decode(path)
    assert got.streams == [("audio", "aac"), ("video", "h264")]
    assert abs(got.duration_s - summary.duration_s) <= 0.5, (got.duration_s, summary.duration_s)
    # As long as the recording ran: from start_recording to stop_recording.
    assert stopping - started - 0.5 <= summary.duration_s <= stopped - started
    assert abs(len(got.audio) / 48000 - summary.duration_s) <= 0.5

    # Both participants throughout, the agent's voice while it spoke (1.0 s, from ~1 s).
    spectrum = np.abs(np.fft.rfft(got.audio[48000 // 2 :]))
    freqs = np.fft.rfftfreq(len(got.audio) - 48000 // 2, 1 / 48000)

    def level(hz: float) -> float:
        return float(spectrum[(freqs > hz - 10) & (freqs < hz + 10)].max())

    noise = float(np.median(spectrum))
    for hz in (300, 700, 1200):
        assert level(hz) > 50 * noise, f"{hz} Hz missing from the mix"
    envelope = np.abs(
        np.fft.irfft(
            np.where((freqs > 1150) & (freqs < 1250), np.fft.rfft(got.audio[48000 // 2 :]), 0),
            n=len(got.audio) - 48000 // 2,
        )
    )
    voiced = np.flatnonzero(envelope > 0.5 * envelope.max())
    assert 0.8 < (voiced[-1] - voiced[0]) / 48000 < 1.2, "the agent's reply is not 1 s long"

    # The grid: Ann's red cell on the left, Bob's blue one on the right.
    _, last = got.pictures[-1]
    left, right = last[:, : last.shape[1] // 2], last[:, last.shape[1] // 2 :]
    assert left[..., 0].mean() > 2 * left[..., 2].mean(), "Ann's red cell is missing"
    assert right[..., 2].mean() > 2 * right[..., 0].mean(), "Bob's blue cell is missing"

    # The transcript, on the recording's clock.
    assert summary.jsonl_path is not None and summary.vtt_path is not None
    lines = [json.loads(line) for line in summary.jsonl_path.read_text().splitlines()]
    assert [(r["who"], r["speaker"], r["text"]) for r in lines] == [
        ("user", "ann", "Hello Ada"),
        ("agent", "Ada", "Hello Ann, nice red shirt."),
    ]
    assert all(0.9 < r["t"] < 2.5 for r in lines), lines
    vtt = summary.vtt_path.read_text()
    assert vtt.startswith("WEBVTT\n\n1\n00:00:01.")
    assert "<v Ada>Hello Ann, nice red shirt." in vtt


async def test_start_and_stop_at_any_time_into_new_files(tmp_path: Path) -> None:
    async with no_leaks():
        async with agent_in_call() as (agent, edge):
            clock = SourceClock()
            ann = await edge.add_participant(
                "ann", tracks=[Microphone(clock, hum_hz=300), Camera(clock)]
            )
            await edge.add_participant("bob", tracks=[Microphone(clock, hum_hz=700), Camera(clock)])
            first = await agent.start_recording(tmp_path / "first.webm", size=(320, 180))
            with pytest.raises(RuntimeError, match="already recording"):
                await agent.start_recording(tmp_path / "other.webm")
            await wait_until(lambda: first.elapsed_s > 1.5, 5, "the first recording")
            await edge.remove_participant(ann)  # Ann leaves mid-recording
            await wait_until(lambda: first.elapsed_s > 3.0, 5, "the first recording")
            one = await agent.stop_recording()
            assert await agent.stop_recording() is None
            await wait_until(
                lambda: clock.since() > one.duration_s + 1.0, 5, "a gap"
            ) if one else None
            second = await agent.start_recording(tmp_path / "second.webm", size=(320, 180))
            await wait_until(lambda: second.elapsed_s > 1.0, 5, "the second recording")
        # Leaving the call finishes the recording under way.
        assert not second.recording
    assert one is not None
    first_file, second_file = decode(one.path), decode(second.path)
    assert abs(first_file.duration_s - one.duration_s) <= 0.5
    assert abs(second_file.duration_s - second.elapsed_s) <= 0.5
    # Two 4:3 cells side by side fill the 16:9 width; Bob's one cell alone, after Ann left, 3/4.
    early = next(rgb for t, rgb in first_file.pictures if t > 1.0)
    late = first_file.pictures[-1][1]
    assert _lit_width(early) > 0.95
    assert 0.7 < _lit_width(late) < 0.8, "the grid did not close up when Ann left"


async def test_per_track_layout_writes_a_file_per_camera(tmp_path: Path) -> None:
    path = tmp_path / "call.mp4"
    model = FakeRealtime(fps=5)
    model.frame_policy = None  # fixed rate: the model's frames tell when the cameras flow
    async with agent_in_call(model) as (agent, edge):
        clock = SourceClock()
        await edge.add_participant(
            "ann", tracks=[Microphone(clock, hum_hz=300), Camera(clock, rgb=(200, 30, 30))]
        )
        bob = await edge.add_participant(
            "bob",
            tracks=[
                Microphone(clock, hum_hz=700),
                Camera(clock, rgb=(30, 30, 200), size=(160, 120)),
            ],
        )
        recorder = await agent.start_recording(path, layout="per_track")
        seen = len(model.frames)
        await wait_until(lambda: recorder.elapsed_s > 1.5, 5, "a second and a half")
        await edge.remove_participant(bob)
        await wait_until(lambda: recorder.elapsed_s > 3.0, 5, "three seconds")
        summary = await agent.stop_recording()
    assert summary is not None
    # The model kept getting its frames while the recorder took every frame too.
    assert len(model.frames) - seen >= 10
    assert decode(path).streams == [("audio", "aac")]
    assert [p.name for p in summary.video_paths] == ["call.video-1-ann.mp4", "call.video-2-bob.mp4"]
    assert summary.cameras == ("ann", "bob")
    ann, bob_file = (decode(p) for p in summary.video_paths)
    assert ann.streams == bob_file.streams == [("video", "h264")]
    assert ann.pictures[-1][1].shape == (240, 320, 3)
    assert bob_file.pictures[-1][1].shape == (120, 160, 3)
    assert (
        ann.pictures[-1][1][..., 0].mean() > 150 and bob_file.pictures[-1][1][..., 2].mean() > 150
    )
    # Ann's file runs to the end; Bob's ends when he left, on the same clock.
    assert abs(ann.pictures[-1][0] - summary.duration_s) < 0.2
    assert 1.4 < bob_file.pictures[-1][0] < 2.0


async def test_a_full_disk_is_reported_by_stop_and_the_call_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "full.webm"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC
    model = FakeRealtime(fps=5)
    async with no_leaks():
        async with agent_in_call(model) as (agent, edge):
            clock = SourceClock()
            await edge.add_participant("ann", tracks=[Microphone(clock), Camera(clock)])
            recorder = await agent.start_recording(path, overwrite=True)
            heard = model.audio_received
            await wait_until(lambda: model.audio_received > heard + 1.0, 10, "the call going on")
            with pytest.raises(RecordingError, match=r"recording to .*full\.webm failed"):
                await agent.stop_recording()
            assert agent.recorder is None
            assert recorder.error is not None and not recorder.recording


def test_bad_settings_are_refused_naming_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"call\.avi.*\.mp4 or \.webm"):
        CallRecorder(tmp_path / "call.avi")
    with pytest.raises(ConfigurationError, match=r"folder .*nowhere does not exist"):
        CallRecorder(tmp_path / "nowhere" / "call.mp4")
    (tmp_path / "taken.mp4").write_bytes(b"")
    with pytest.raises(ConfigurationError, match=r"taken\.mp4 already exists; pass overwrite=True"):
        CallRecorder(tmp_path / "taken.mp4")
    CallRecorder(tmp_path / "taken.mp4", overwrite=True)
    (tmp_path / "said.jsonl").write_text("")
    with pytest.raises(ConfigurationError, match=r"said\.jsonl \(the transcript\) already exists"):
        CallRecorder(tmp_path / "said.webm")
    CallRecorder(tmp_path / "said.webm", transcripts=False)
    with pytest.raises(
        ConfigurationError, match="layout must be one of grid, per_track, got 'mosaic'"
    ):
        CallRecorder(tmp_path / "call.mp4", layout="mosaic")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigurationError, match=r"size must be two even whole numbers.*\(641, 480\)"
    ):
        CallRecorder(tmp_path / "call.mp4", size=(641, 480))
    with pytest.raises(ConfigurationError, match=r"fps must be a number from 1 to 60, got 0"):
        CallRecorder(tmp_path / "call.mp4", fps=0)


async def test_recording_needs_a_call(tmp_path: Path) -> None:
    agent = Agent(edge=InMemoryEdge(), llm=FakeRealtime())
    with pytest.raises(RuntimeError, match="inside join"):
        await agent.start_recording(tmp_path / "call.mp4")


def test_the_writer_holds_a_bounded_amount_whatever_comes_in(tmp_path: Path) -> None:
    writer = RecordingWriter(tmp_path / "flood.webm", width=320, height=180, max_pending_frames=8)
    frame = av.VideoFrame(320, 240, "yuv420p")
    for i in range(200):  # a flood of frames, none yet due to be written
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        writer.add_video("cam", frame, arrival=10.0 + i / 30)
    assert writer.held_frames == 8
    assert writer.stats.video_frames_dropped == 192
    writer.close(1.0)

    mixer = AudioMixer(48000, max_ahead_s=2.0)
    mixer.add(np.ones(48000 * 5, dtype=np.float32), start=0)  # 5 s at once: 2 s kept
    assert mixer.early_samples == 48000 * 3 and mixer.held_blocks == 100
    assert mixer.take(48000).size == 48000 and mixer.held_blocks == 50
    mixer.add(np.ones(960, dtype=np.float32), start=0)  # too late: that part is written
    assert mixer.late_samples == 960


def test_a_sender_whose_media_falls_behind_is_moved_later_not_dropped(tmp_path: Path) -> None:
    # A participant's audio, dated on their clock, comes 30 ms after capture; from 2 s on it
    # comes 0.9 s after (a backlog on the way), more than the writer waits (0.5 s).
    writer = RecordingWriter(tmp_path / "behind.webm", video=False, latency_s=0.5)
    for k in range(250):
        captured = k * 0.02
        arrival = captured + (0.03 if captured < 2.0 else 0.9)
        hum = 8000 * np.sin(2 * np.pi * 440 * (k * 960 + np.arange(960)) / 48000)
        frame = av.AudioFrame.from_ndarray(
            hum.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, k * 960
        frame.time_base = fractions.Fraction(1, 48000)
        writer.add_audio("mic", frame, arrival, 3000.0 + captured, "ann")
        writer.advance(arrival)
    writer.close(6.0)
    # Moved once, with its other streams, not dropped frame by frame.
    assert writer.stats.late_audio_s == 0.0 and writer.stats.late_raises == 1, writer.stats
    got = decode(tmp_path / "behind.webm")
    loud = np.convolve(np.abs(got.audio), np.ones(480) / 480, mode="same") > 0.05
    edges = np.flatnonzero(np.diff(loud.astype(int))) / 48000  # on, off, on, off
    assert len(edges) == 4, edges
    assert edges[1] - edges[0] == pytest.approx(2.0, abs=0.05)  # all before the backlog...
    assert edges[2] - edges[1] == pytest.approx(0.87, abs=0.05)  # ...one gap...
    assert edges[3] - edges[2] > 2.7  # ...and the rest (the codec's last 0.1 s aside)


def test_each_camera_is_shown_at_the_picture_nearest_its_frame(tmp_path: Path) -> None:
    # Two cameras at 30 fps, 5 ms out of phase; the grid makes at most 30 pictures a second, on
    # the first camera's frames. The second camera's white frame (1.005 s, arriving 5 ms later)
    # must show at the picture nearest to it, not at the next one, 28 ms later.
    writer = RecordingWriter(tmp_path / "phase.webm", width=640, height=240, latency_s=0.5)
    for k in range(60):
        for source, phase in (("ann", 0.0), ("bob", 0.005)):
            at = k / 30 + phase
            white = source == "bob" and k >= 30
            picture = np.full((240, 320, 3), 255 if white else 60, np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = round(at * 90000), fractions.Fraction(1, 90000)
            writer.add_video(source, frame, at + 0.005)
        writer.advance(k / 30 + 0.005)
    writer.close(2.0)
    got = decode(tmp_path / "phase.webm")
    flash = next(t for t, rgb in got.pictures if rgb[:, 320:].mean() > 200)
    assert abs(flash - 1.010) <= 0.5 / 30 + 0.002, flash


def test_media_clock_ignores_jitter_and_follows_jumps() -> None:
    clock = MediaClock()
    rng = np.random.default_rng(7)
    placed = [clock.place(i * 0.02, 5.0 + i * 0.02 + rng.uniform(0, 0.05)) for i in range(500)]
    errors = np.array(placed) - (5.0 + np.arange(500) * 0.02)
    assert errors[50:].max() - errors[50:].min() < 0.005  # jitter of 50 ms does not move frames
    # A 1.5 s stall: the late frames keep their places (the last one came at 10.0 + 0.02).
    burst = [clock.place(10.0 + 0.02 * (k + 1), 16.5 + 0.001 * k) for k in range(75)]
    assert max(abs(b - (15.0 + 0.02 * (k + 1))) for k, b in enumerate(burst)) < 0.06
    assert clock.resyncs == 0
    # The timestamps jump back (a wrap): once that has lasted a second, placement starts over.
    after = [clock.place(0.02 * k, 17.0 + 0.02 * k) for k in range(80)]
    assert clock.resyncs == 1
    assert after[-1] == pytest.approx(17.0 + 0.02 * 79, abs=0.01)


def test_grid_cells_fill_the_picture() -> None:
    assert grid_cells(1, 1280, 720) == [grid_cells(1, 1280, 720)[0]]
    two = grid_cells(2, 1280, 720)
    assert [(c.x, c.width) for c in two] == [(0, 640), (640, 640)]
    five = grid_cells(5, 1280, 720)
    assert len({(c.x, c.y) for c in five}) == 5 and all(c.width == 426 for c in five)


# -- a real call: two Chromium participants and the agent ------------------------------------

# Replaces the page's camera and microphone with a canvas and a WebAudio graph on one clock:
# a steady hum and, every 4 s from 2 s on, a 500 ms white flash and a 200 ms beep, started
# together by one timer callback keyed to the AudioContext's time. The hum's and the beep's
# pitch (from the link) tell participants apart.
#
# Each picture goes out as a VideoFrame stamped with the moment it was drawn (a
# MediaStreamTrackGenerator), the way a camera stamps its frames. canvas.captureStream()
# stamps them itself, and measured against the moment of drawing (the sender's RTCP clock on
# this machine, same wall clock) it put the white frame 17-78 ms early, a constant per browser
# instance; stamped at the draw, the same frames were dated 1-7 ms early. The AudioContext asks
# for the least latency it can have: with the default ("interactive") Chromium dated the beep
# 0-45 ms after the draw, a different amount in each browser; now 3-18 ms. The flash is long
# because on a loaded machine Chromium's encoder skips stretches of frames (a 200 ms flash went
# missing in three of five pairs under load while the beep, scheduled in the same step, came).
FLASH_AND_BEEP_SOURCE = """
(() => {
  const link = new URLSearchParams(location.hash.slice(1));
  const hum = Number(link.get("hum") || 0);
  const pitch = Number(link.get("beep") || 1000);
  window.__drawn = [];  // when each flash was drawn, in Unix seconds
  navigator.mediaDevices.getUserMedia = async () => {
    const ctx = new AudioContext({ sampleRate: 48000, latencyHint: 0 });
    await ctx.resume();
    const out = ctx.createMediaStreamDestination();
    const humOsc = ctx.createOscillator();
    const humGain = ctx.createGain();
    humOsc.frequency.value = hum;
    humGain.gain.value = 0.08;
    humOsc.connect(humGain).connect(out);
    const beep = ctx.createOscillator();
    const beepGain = ctx.createGain();
    beep.frequency.value = pitch;
    beepGain.gain.value = 0;
    beep.connect(beepGain).connect(out);
    const first = ctx.currentTime + 2;
    humOsc.start();
    beep.start();
    window.__audioLatency = [ctx.baseLatency, ctx.outputLatency];
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const g = canvas.getContext("2d");
    const video = new MediaStreamTrackGenerator({ kind: "video" });
    const frames = video.writable.getWriter();
    let lit = false;
    const draw = () => {
      const t = ctx.currentTime - first;
      const phase = t - 4 * Math.floor(t / 4);
      const white = t >= 0 && phase < 0.5;
      if (white && !lit) {
        // The beep starts in the same step as the white frame is drawn: on a starved machine
        // this timer fires late, and then both are late together.
        beepGain.gain.setValueAtTime(0.6, ctx.currentTime);
        beepGain.gain.setValueAtTime(0, ctx.currentTime + 0.2);
        window.__drawn.push((performance.timeOrigin + performance.now()) / 1000);
      }
      lit = white;
      g.fillStyle = white ? "#ffffff" : "#3050a0";
      g.fillRect(0, 0, canvas.width, canvas.height);
      const frame = new VideoFrame(canvas, { timestamp: Math.round(performance.now() * 1000) });
      frames.write(frame).finally(() => frame.close());
    };
    setInterval(draw, 1000 / 30);
    draw();
    return new MediaStream([video, ...out.stream.getAudioTracks()]);
  };
})();
"""


def _flashes(pictures: list[tuple[float, np.ndarray]], cell: slice) -> list[float]:
    """When a cell (a column range of the picture) turns from the page's blue to white (not a
    cell white from the start, or from black before its first picture)."""
    out, blue = [], False
    for t, rgb in pictures:
        level = float(rgb[:, cell].mean())  # white ~255, the page's blue ~96, no picture 0
        if level > 180 and blue:
            out.append(t)
        blue = 40 < level < 180
    return out


def _beeps(audio: np.ndarray, start: float, hz: float) -> list[float]:
    """When a beep of ``hz`` starts, from its band's envelope."""
    n = len(audio)
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(n, 1 / 48000)
    band = np.fft.irfft(np.where((freqs > hz - 40) & (freqs < hz + 40), spectrum, 0), n=n)
    env = np.convolve(np.abs(band), np.ones(96) / 96, mode="same")
    on = env > 0.5 * env.max()
    edges = np.flatnonzero(on[1:] & ~on[:-1]) + 1
    times: list[float] = []
    for i in edges:
        if not times or start + i / 48000 - times[-1] > 1.0:
            times.append(start + i / 48000)
    return times


class SaidBySender:
    """When each browser said its flashes and beeps were captured: the sender-clock time (RTCP
    sender reports, as the recorder reads them) of every video and audio frame the agent got."""

    NTP_TO_UNIX = 2_208_988_800

    def __init__(self, edge: Any) -> None:
        self.edge = edge
        self.video: dict[str, list[tuple[float, float]]] = {}  # name -> (when, brightness)
        self.audio: dict[str, list[tuple[float, np.ndarray]]] = {}  # name -> (when, samples)

    def _when(self, track_id: str, frame: av.AudioFrame | av.VideoFrame) -> float | None:
        clock = self.edge.sender_clock(track_id)
        said = clock.sender_time(frame.pts, frame.time_base) if clock is not None else None
        return None if said is None else float(said) - self.NTP_TO_UNIX

    def on_audio(self, frame: av.AudioFrame, participant: Any, track_id: str) -> None:
        when = self._when(track_id, frame)
        if when is not None and frame.sample_rate == 48000:
            x = frame.to_ndarray()
            x = x.reshape(-1, len(frame.layout.channels))[:, 0] if frame.format.is_packed else x[0]
            scale = 32768.0 if x.dtype == np.int16 else 1.0
            self.audio.setdefault(participant.name, []).append((when, x / scale))

    def on_camera(self, participant: Any, track_id: str) -> Any:
        async def on_frame(frame: av.VideoFrame) -> None:
            when = self._when(track_id, frame)
            if when is not None:
                # Luma straight from the decoded frame (no conversion: this runs on the loop).
                level = float(np.frombuffer(memoryview(frame.planes[0]), np.uint8)[::97].mean())
                self.video.setdefault(participant.name, []).append((when, level))

        return on_frame

    def flashes(self, name: str) -> list[float]:
        out, dark = [], False
        for when, level in self.video.get(name, []):
            if level > 180 and dark:
                out.append(when)
            dark = 40 < level < 180
        return out

    def beeps(self, name: str, hz: float) -> list[float]:
        frames = self.audio.get(name, [])
        if not frames:
            return []
        start = min(when for when, _ in frames)
        signal = np.zeros(int((max(when for when, _ in frames) - start + 0.1) * 48000), np.float32)
        for when, samples in frames:
            i = round((when - start) * 48000)
            signal[i : i + len(samples)] = samples[: max(0, len(signal) - i)]
        return _beeps(signal, start, hz)


PARTICIPANTS = [("Ann", 440, 1000), ("Bob", 660, 1300)]  # name, hum Hz, beep Hz
# What a page's camera sent (printed: a browser that lowers its frame rate sends a flash late).
SENT_VIDEO = """async () => {
  const out = { limit: vaCall.videoLimit, scale: vaCall.videoScale };
  (await vaCall.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") {
      Object.assign(out, { fps: s.framesPerSecond, encoded: s.framesEncoded,
        limited: s.qualityLimitationReason, durations: s.qualityLimitationDurations });
    }
  });
  return out;
}"""
AGENT_HZ = 1800


# Not a timing test (not run beside CPU burners): two Chromium processes, the agent and the
# recording beside two burners are more than two cores carry. On 2026-12-07 the browsers' media
# then reached the agent 5-11 s after capture (every run, with or without this change), and
# the recording held only two or three of the five flashes.
@pytest.mark.timeout(150)
async def test_a_recorded_call_with_two_browsers_and_the_agent(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    from tests.browser.chromium import launch
    from vision_agents.plugins.webrtc import WebRTCEdge

    path = tmp_path / "call.mp4"
    model = FakeRealtime(fps=2)
    edge = WebRTCEdge(max_participants=4)
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    call = await agent.create_call("default", "recorded")
    tracks: list[str] = []

    async def on_track(event: TrackAddedEvent) -> None:
        tracks.append(event.track.id)

    agent.events.subscribe(on_track)
    async with agent.join(call), async_playwright() as pw:
        browsers = [await launch(pw, None, None) for _ in range(2)]
        try:
            pages: list[Any] = []
            for name, hum, beep in PARTICIPANTS:
                page = await browsers[len(pages)].new_page()
                await page.add_init_script(FLASH_AND_BEEP_SOURCE)
                await page.goto(edge.join_url(call, name=name) + f"&hum={hum}&beep={beep}")
                pages.append(page)
            await wait_until(lambda: len(edge.participants) == 2, 60, "both browsers in the call")
            await wait_until(lambda: model.audio_received > 1.0, 30, "their audio at the agent")

            # Until a sender has reported on a stream (RTCP; Chromium's first report on audio
            # comes about 2.5 s after it starts sending), that stream is placed by arrival, not
            # in step (see docs/recording.md). The call is recorded once every stream is dated.
            def reported() -> bool:
                clocks = [edge.sender_clock(track) for track in tracks]
                return len(clocks) == 4 and all(c is not None and c.reported for c in clocks)

            await wait_until(reported, 15, "a sender report on every stream")
            said = SaidBySender(edge)
            agent.audio_input.add_listener(said.on_audio)
            agent.video_input.add_consumer("said-by-sender", said.on_camera)
            started = time.time()
            recorder = await agent.start_recording(path, size=(640, 240))

            async def badge_shown() -> bool:
                shown = [await p.evaluate("vaCall.recording") for p in pages]
                visible = [await p.is_visible("#recording") for p in pages]
                return all(shown) and all(visible)

            await wait_until(badge_shown, 10, "the Recording badge on both pages")
            for page in pages:  # WebAudio's own latency (s), part of what the beep is dated by
                print("AudioContext base/output latency:", await page.evaluate("__audioLatency"))
            await wait_until(lambda: recorder.elapsed_s > 8, 15, "8 s of recording")
            model.respond("Hello both of you.", tone(AGENT_HZ, 1.0, sample_rate=24000))
            await wait_until(lambda: recorder.elapsed_s > 20, 20, "20 s of recording")
            summary = await agent.stop_recording()
            assert summary is not None
            agent.audio_input.remove_listener(said.on_audio)
            await agent.video_input.remove_consumer("said-by-sender")
            drawn: dict[str, list[float]] = {}
            for (name, _, _), page in zip(PARTICIPANTS, pages, strict=True):
                print(name, "sent:", await page.evaluate(SENT_VIDEO))
                drawn[name] = await page.evaluate("__drawn")

            async def badge_gone() -> bool:
                return not any([await p.is_visible("#recording") for p in pages])

            await wait_until(badge_gone, 10, "the badge to go when the recording stopped")
        finally:
            for browser in browsers:
                await browser.close()

    got = decode(path)
    assert got.streams == [("audio", "aac"), ("video", "h264")]
    assert 19.5 <= got.duration_s <= 21.0, got.duration_s
    assert abs(got.duration_s - summary.duration_s) <= 0.5
    print(f"recorded {got.duration_s:.2f} s for {summary.duration_s:.2f} s; {summary.stats}")
    assert summary.audio_frames_dropped == 0 and summary.video_frames_dropped == 0

    # Both browsers' hums and the agent's reply are in the mix.
    spectrum = np.abs(np.fft.rfft(got.audio))
    freqs = np.fft.rfftfreq(len(got.audio), 1 / 48000)
    noise = float(np.median(spectrum))
    for hz in (*(hum for _, hum, _ in PARTICIPANTS), AGENT_HZ):
        peak = float(spectrum[(freqs > hz - 5) & (freqs < hz + 5)].max())
        assert peak > 50 * noise, f"{hz} Hz is missing from the recording"

    # Both browsers' cells; each one's flashes and beeps were made together. In the file, each
    # pair must be as far apart as the browser itself dated them (its RTCP clock), give or take
    # RECORDER_LIMIT_S: half a picture (the grid's cameras have their own phases) and
    # placement. A stall long enough that the recorder moves a browser's streams later
    # (`late_raises` counts those moves) can fall between a flash and its beep: that many
    # pairs a browser may be off, two at most. And within SYNC_LIMIT_S wherever the browser
    # dated them within
    # CLAIM_LIMIT_S of each other: the browser's own dating is printed, against the moment the
    # page drew each flash (its wall clock is ours); Chromium dates its WebAudio "microphone"
    # 3-90 ms late, a different amount in each browser instance.
    assert _lit_width(got.pictures[-1][1]) > 0.95
    # Cells are in the order the cameras reached the agent, whoever joined first.
    assert sorted(summary.cameras) == sorted(name for name, _, _ in PARTICIPANTS), summary
    ours: list[float] = []
    for name, _, beep in PARTICIPANTS:
        seat = summary.cameras.index(name)
        # Not a flash in the file's first half second: its beep may have come just before.
        flashes = [
            f for f in _flashes(got.pictures, slice(320 * seat, 320 * (seat + 1))) if f > 0.5
        ]
        beeps = _beeps(got.audio, got.audio_start, beep)
        said_flashes, said_beeps = said.flashes(name), said.beeps(name, beep)
        assert len(flashes) >= 3, f"{name}: too few flashes recorded (one every 4 s): {flashes}"
        rows, off = [], 0
        for flash in flashes:
            in_file = min((flash - b for b in beeps), key=abs)
            # The same flash as the browser dated it (the file is at most ~1 s behind it).
            said_flash = min(said_flashes, key=lambda f: abs(f - (started + flash)))
            said_beep = min(said_beeps, key=lambda b: abs(b - said_flash))
            drew = min(drawn[name], key=lambda d: abs(d - said_flash))
            claim = said_flash - said_beep
            rows.append(
                f"{1000 * in_file:+.0f} (browser: {1000 * claim:+.0f}; flash "
                f"{1000 * (said_flash - drew):+.0f}, beep {1000 * (said_beep - drew):+.0f} "
                "after the draw)"
            )
            ours.append(in_file - claim)
            if abs(in_file - claim) > RECORDER_LIMIT_S:
                off += 1  # a stall: the recorder moved this browser's streams mid-pair
            elif abs(claim) <= CLAIM_LIMIT_S:
                assert abs(in_file) <= SYNC_LIMIT_S, (name, rows)
        print(f"{name}: flash - beep in the file, ms: {'; '.join(rows)}")
        assert off <= min(2, summary.stats.late_raises), (name, rows, summary.stats)
    print(f"the recorder's part: {min(ours) * 1000:+.0f} to {max(ours) * 1000:+.0f} ms")
    # Each browser's streams were dated on its own clock (RTCP sender reports), not by arrival.
    stats = summary.stats
    assert stats.sender_dated - stats.video_sender_dated > stats.audio_frames // 2, stats
    assert stats.video_sender_dated > stats.video_frames * 0.9, stats


async def test_the_example_records_a_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("recording_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = await module.main(tmp_path / "call.webm", seconds=2.0)
    assert f"recorded {summary.duration_s:.1f} s to {summary.path}" in capsys.readouterr().out
    got = decode(summary.path)
    assert got.streams == [("audio", "opus"), ("video", "vp8")]
    assert summary.duration_s >= 2.0 and abs(got.duration_s - summary.duration_s) <= 0.5
