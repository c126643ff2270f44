"""Real media for tests and demos, made on the spot: speech, tones, wav files and videos."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vision_agents.core.audio import PcmData
from vision_agents.core.utils.video import frame_to_ndarray

_INDEX_BITS = 16
_INDEX_BLOCK = 8  # pixels per bit block; large enough to survive lossy video codecs


def synthesize_speech(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> PcmData:
    """Speak ``text`` with Debian's espeak-ng (22.05 kHz mono); raises if it is not installed."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise RuntimeError(
            "espeak-ng is not installed; install it with `apt-get install espeak-ng` "
            "(scripts/test.sh does this) or use tone() instead"
        )
    wav_bytes = subprocess.run(
        [exe, "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return read_wav(io.BytesIO(wav_bytes))


def tone(
    frequency: float,
    seconds: float,
    *,
    sample_rate: int = 48000,
    channels: int = 1,
    amplitude: float = 0.5,
) -> PcmData:
    """A sine tone as int16 PCM."""
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    wave_ = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    return PcmData(np.tile(wave_, (channels, 1)), sample_rate, channels)


def read_wav(source: str | Path | io.BytesIO) -> PcmData:
    """Read a 16-bit PCM wav file."""
    with wave.open(source if isinstance(source, io.BytesIO) else str(source), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(
                f"only 16-bit wav files are supported, got {8 * wav.getsampwidth()}-bit"
            )
        raw = wav.readframes(wav.getnframes())
        return PcmData.from_bytes(raw, wav.getframerate(), wav.getnchannels(), "s16")


def write_wav(path: str | Path, pcm: PcmData) -> Path:
    """Write ``pcm`` as a 16-bit wav file."""
    pcm16 = pcm.to_int16()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(pcm16.channels)
        wav.setsampwidth(2)
        wav.setframerate(pcm16.sample_rate)
        wav.writeframes(pcm16.to_bytes())
    return Path(path)


def pattern_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """An RGB test picture whose frame ``index`` can be read back by ``read_frame_index``."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    img[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    img[..., 2] = (index * 7) % 256
    img[:_INDEX_BLOCK, : _INDEX_BITS * _INDEX_BLOCK] = 0
    for bit in range(_INDEX_BITS):
        if index >> bit & 1:
            x0 = bit * _INDEX_BLOCK
            img[:_INDEX_BLOCK, x0 : x0 + _INDEX_BLOCK] = 255
    return img


def dominant_hz(samples: np.ndarray | bytes, sample_rate: int) -> float:
    """The strongest frequency in ``samples`` (float samples, or s16le bytes), Hann-windowed:
    what a test asks of a tone it sent after it went through codecs and resamplers."""
    if isinstance(samples, bytes):
        samples = np.frombuffer(samples, np.int16).astype(np.float32) / 32768
    data = np.asarray(samples, dtype=np.float64)
    if data.size < 2:
        raise ValueError(f"need at least 2 samples to find a frequency, got {data.size}")
    spectrum = np.abs(np.fft.rfft(data * np.hanning(data.size)))
    return float(np.fft.rfftfreq(data.size, 1 / sample_rate)[int(np.argmax(spectrum))])


def sample_index(sent: np.ndarray, window: int = 16) -> dict[bytes, int]:
    """Where each ``window``-sample run of ``sent`` starts (for ``locate_samples``)."""
    return {sent[i : i + window].tobytes(): i for i in range(len(sent) - window + 1)}


def locate_samples(
    sent: np.ndarray,
    received: list[bytes],
    window: int = 16,
    index: dict[bytes, int] | None = None,
) -> tuple[np.ndarray, int]:
    """Where the ``received`` audio (s16 bytes, in stretches) is in what was ``sent``.

    Returns how many times each sample of ``sent`` was received, and how many received
    samples are nowhere in it. Each stretch is placed sample for sample: a run starts where
    ``window`` samples match a place in ``sent`` and goes on while they stay equal, so
    ``sent`` must make every window unique (noise, or a tone with a fixed dither). Checks
    what a model's state holds: each sample once, none missing, nothing foreign. ``index``:
    ``sample_index(sent, window)``, when the same ``sent`` is looked up many times.
    """
    if index is None:
        index = sample_index(sent, window)
    counts = np.zeros(len(sent), np.int32)
    foreign = 0
    for raw in received:
        rx = np.frombuffer(raw[: len(raw) // 2 * 2], np.int16)
        j = 0
        while j < len(rx):
            at = index.get(rx[j : j + window].tobytes()) if j + window <= len(rx) else None
            if at is None:
                foreign += 1
                j += 1
                continue
            n = min(len(rx) - j, len(sent) - at)
            same = rx[j : j + n] == sent[at : at + n]
            run = n if same.all() else int(np.argmin(same))
            counts[at : at + run] += 1
            j += run
    return counts, foreign


def read_frame_index(frame: av.VideoFrame | np.ndarray) -> int:
    """The index drawn by ``pattern_frame`` (works after lossy encoding and resizing to >= 50%)."""
    img = frame_to_ndarray(frame) if isinstance(frame, av.VideoFrame) else frame
    scale = img.shape[1] / 320 if isinstance(frame, av.VideoFrame) else 1.0
    block = max(1, round(_INDEX_BLOCK * scale))
    value = 0
    for bit in range(_INDEX_BITS):
        cell = img[:block, bit * block : (bit + 1) * block]
        inner = cell[block // 4 : block - block // 4, block // 4 : block - block // 4]
        if float(inner.mean()) > 127:
            value |= 1 << bit
    return value


def make_test_video(
    path: str | Path,
    *,
    seconds: float = 3.0,
    fps: int = 30,
    size: tuple[int, int] = (320, 240),
    audio: PcmData | None = None,
) -> Path:
    """Write a Matroska file: numbered pattern frames (H.264) and, if given, the audio (PCM).

    The video lasts ``seconds`` or as long as the audio, whichever is longer.
    """
    width, height = size
    duration = max(seconds, audio.duration if audio is not None else 0.0)
    n_frames = max(1, round(duration * fps))
    with av.open(str(path), "w", format="matroska") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        astream = None
        if audio is not None:
            astream = container.add_stream("pcm_s16le", rate=audio.sample_rate)
            astream.layout = "stereo" if audio.channels == 2 else "mono"
        aframes = (
            list(audio.to_int16().to_av_frames(samples_per_frame=1024))
            if audio is not None and astream is not None
            else []
        )
        rate = audio.sample_rate if audio is not None else 1
        next_audio = 0
        # Interleaved by time: audio written after all the video sat behind up to 10 s of it
        # (the muxer's interleaving window), so a player heard nothing for the first 10 s.
        for i in range(n_frames):
            while next_audio < len(aframes) and next_audio * 1024 / rate <= i / fps:
                assert astream is not None
                container.mux(astream.encode(aframes[next_audio]))
                next_audio += 1
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        if astream is not None:
            for aframe in aframes[next_audio:]:
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))
    return Path(path)
