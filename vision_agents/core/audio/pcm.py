"""PcmData: a block of PCM audio, the one audio type core code passes around."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import operator
import threading
from collections.abc import Iterator
from fractions import Fraction
from typing import Any, Literal, get_args

import av
import numpy as np
from numpy.typing import NDArray

from vision_agents.core.types import Participant

AudioFormat = Literal["s16", "f32"]
"""Sample format: ``"s16"`` is int16, ``"f32"`` is float32 in [-1, 1]."""

MAX_CHANNELS = 8
"""Up to 7.1: the largest layout libswresample names by channel count alone."""

MAX_SAMPLE_RATE = 768_000
"""The highest rate accepted (libswresample takes C ints; real audio stays far below)."""

_DTYPES: dict[str, np.dtype[Any]] = {"s16": np.dtype(np.int16), "f32": np.dtype(np.float32)}
_PACKED_AV_FORMAT = {"s16": "s16", "f32": "flt"}

logger = logging.getLogger(__name__)


class NonFiniteAudio:
    """Counts float audio that held NaN or infinity (sanitised: NaN to 0, +-inf to +-1).

    A decoder fault or a bad upstream can produce such samples; passed on, NaN becomes
    full-scale noise in int16 and poisons a resampler's filter state. Each bad block is
    counted and logged as a warning on the 1st, 2nd, 4th, 8th... occurrence, so a stream of
    them cannot flood the log.
    """

    def __init__(self) -> None:
        self.blocks = 0
        self.samples = 0
        self._lock = threading.Lock()

    def note(self, bad: int) -> None:
        with self._lock:
            self.blocks += 1
            self.samples += bad
            blocks, samples = self.blocks, self.samples
        if blocks & (blocks - 1) == 0:
            logger.warning(
                "audio held NaN or infinite samples; replaced them (NaN -> 0, inf -> +-1.0): "
                "%d samples in %d blocks so far",
                samples,
                blocks,
            )


NON_FINITE = NonFiniteAudio()
"""Process-wide count of sanitised non-finite float samples."""


def finite(samples: NDArray[Any]) -> NDArray[Any]:
    """``samples`` if every value is finite (or they are integers), else a sanitised copy."""
    if samples.dtype.kind != "f":
        return samples
    ok = np.isfinite(samples)
    if ok.all():
        return samples
    NON_FINITE.note(int(ok.size - np.count_nonzero(ok)))
    clean: NDArray[Any] = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return clean


def _integer(value: object) -> int | None:
    """``value`` as an int if it is an integer (bool excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return None
    return int(value)


def check_sample_rate(value: object, name: str = "sample_rate") -> int:
    """Return ``value`` as a positive int, or raise an error naming it."""
    rate = _integer(value)
    if rate is None:
        raise TypeError(f"{name} must be a positive integer in Hz, got {value!r}")
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{name} must be a positive integer in Hz up to {MAX_SAMPLE_RATE}, got {rate}"
        )
    return rate


def check_channels(value: object, name: str = "channels") -> int:
    """Return ``value`` as a channel count in 1..MAX_CHANNELS, or raise an error naming it."""
    channels = _integer(value)
    if channels is None:
        raise TypeError(f"{name} must be an integer from 1 to {MAX_CHANNELS}, got {value!r}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_CHANNELS}, got {channels}")
    return channels


def check_format(value: object, name: str = "format") -> AudioFormat:
    """Return ``value`` as an AudioFormat, or raise an error naming it."""
    if value == "s16":
        return "s16"
    if value == "f32":
        return "f32"
    raise ValueError(f"{name} must be one of {get_args(AudioFormat)}, got {value!r}")


def convert_format(samples: NDArray[Any], format: AudioFormat) -> NDArray[Any]:
    """Convert int16 <-> float32 (scale 32768, clipped to the int16 range); no copy if equal."""
    if samples.dtype == _DTYPES[format]:
        return finite(samples)
    if format == "f32":
        out = samples.astype(np.float32)
        out *= np.float32(1.0 / 32768.0)
        return out
    scaled = np.clip(finite(samples) * np.float32(32768.0), -32768.0, 32767.0)
    return np.rint(scaled, out=scaled).astype(np.int16)


def remix(samples: NDArray[Any], channels: int) -> NDArray[Any]:
    """Change the channel count of planar samples: to mono by averaging, from mono by copying.

    Averaging keeps a centred (L == R) signal at the same level, and copying keeps a mono
    voice at full level on every speaker; other conversions (e.g. 6 -> 2) are refused.
    """
    have = samples.shape[0]
    if have == channels:
        return samples
    if channels == 1:
        mean: NDArray[np.float32] = samples.mean(axis=0, dtype=np.float32, keepdims=True)
        if samples.dtype == np.int16:
            return np.rint(mean, out=mean).astype(np.int16)
        return mean
    if have == 1:
        return np.repeat(samples, channels, axis=0)
    raise ValueError(
        f"cannot remix {have} channels to {channels}: only to or from mono is supported"
    )


def _as_samples(samples: object, channels: int | None) -> NDArray[Any]:
    """Validate ``samples`` and return them planar, shape (channels, n), without copying."""
    arr = np.asarray(samples)
    if arr.dtype.kind + str(arr.dtype.itemsize) not in ("i2", "f4"):
        raise TypeError(
            f"samples must be int16 or float32, got dtype {arr.dtype}; convert first, "
            "e.g. samples.astype(np.float32) for float64 in [-1, 1]"
        )
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 1:
        count = 1 if channels is None else check_channels(channels)
        if arr.size % count:
            raise ValueError(
                f"1-D samples hold interleaved channels: {arr.size} samples do not split "
                f"into channels={count}"
            )
        return arr.reshape(-1, count).T if count > 1 else arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"samples must be 1-D or 2-D (channels, n_samples), got shape {arr.shape}")
    hint = "; pass samples.T if the array is (n_samples, channels)"
    if channels is not None and check_channels(channels) != arr.shape[0]:
        raise ValueError(
            f"channels={channels} does not match samples of shape {arr.shape}: "
            f"2-D samples are planar (channels, n_samples){hint}"
        )
    if not 1 <= arr.shape[0] <= MAX_CHANNELS:
        raise ValueError(
            f"2-D samples are planar (channels, n_samples) with 1 to {MAX_CHANNELS} channels, "
            f"got shape {arr.shape}{hint}"
        )
    return arr


class PcmData:
    """A block of PCM audio: int16 or float32 samples stored planar, shape (channels, n).

    ``participant`` says whose audio it is and ``timestamp`` when its first sample was
    captured (``time.time()`` seconds), both optional. Methods that convert return new
    objects, which may share the sample array when nothing changes; only ``append``
    mutates.
    """

    __slots__ = ("_buf", "_len", "_rate", "participant", "timestamp")

    def __init__(
        self,
        samples: NDArray[Any],
        sample_rate: int,
        channels: int | None = None,
        *,
        participant: Participant | None = None,
        timestamp: float | None = None,
    ) -> None:
        """Wrap ``samples`` without copying.

        1-D samples are mono, or interleaved when ``channels`` > 1 is given; 2-D samples are
        planar (channels, n_samples) and ``channels``, if given, must match their shape.
        """
        self._rate = check_sample_rate(sample_rate)
        # _buf may have spare room past _len (append grows it geometrically); only arrays
        # allocated by append have spare room, so a caller's array is never written to.
        # Float samples with NaN or inf are replaced by a sanitised copy (NON_FINITE counts).
        self._buf = finite(_as_samples(samples, channels))
        self._len: int = self._buf.shape[1]
        self.participant = participant
        self.timestamp = timestamp

    @property
    def samples(self) -> NDArray[Any]:
        """The samples, planar: shape (channels, samples_per_channel)."""
        if self._len == self._buf.shape[1]:
            return self._buf
        return self._buf[:, : self._len]

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def channels(self) -> int:
        return int(self._buf.shape[0])

    @property
    def format(self) -> AudioFormat:
        return "s16" if self._buf.dtype == np.int16 else "f32"

    @property
    def samples_per_channel(self) -> int:
        return self._len

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self._len / self._rate

    @property
    def duration_ms(self) -> float:
        return self._len * 1000.0 / self._rate

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return (
            f"PcmData({self._rate} Hz, {self.channels} ch, {self.format}, "
            f"{self._len} samples, {self.duration_ms:.1f} ms)"
        )

    def _like(self, samples: NDArray[Any]) -> PcmData:
        """A new PcmData at this rate with the same participant and timestamp."""
        return PcmData(samples, self._rate, participant=self.participant, timestamp=self.timestamp)

    @classmethod
    def empty(cls, sample_rate: int, channels: int = 1, format: AudioFormat = "s16") -> PcmData:
        """No samples yet; a start for ``append``."""
        count = check_channels(channels)
        return cls(np.zeros((count, 0), _DTYPES[check_format(format)]), sample_rate)

    # --- bytes and base64 -------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Interleaved little-endian samples, the layout of raw PCM streams and WAV data."""
        samples = self.samples
        little = samples.dtype.newbyteorder("<")
        interleaved = samples[0] if self.channels == 1 else samples.T
        return bytes(interleaved.astype(little, copy=False).tobytes())

    @classmethod
    def from_bytes(
        cls,
        data: bytes | bytearray | memoryview,
        sample_rate: int,
        channels: int = 1,
        format: AudioFormat = "s16",
    ) -> PcmData:
        """Parse interleaved little-endian samples (the inverse of ``to_bytes``)."""
        count = check_channels(channels)
        dtype = _DTYPES[check_format(format)]
        frame_bytes = dtype.itemsize * count
        raw = memoryview(data).cast("B")
        if raw.nbytes % frame_bytes:
            raise ValueError(
                f"got {raw.nbytes} bytes, not a whole number of {format} frames of "
                f"{count} channel(s) ({frame_bytes} bytes each)"
            )
        interleaved = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).reshape(-1, count)
        planar = np.array(interleaved.T, dtype=dtype, order="C")  # one copy: owned, native
        return cls(planar, sample_rate)

    def to_base64(self) -> str:
        """``to_bytes`` in standard base64, as JSON realtime APIs carry audio."""
        return base64.b64encode(self.to_bytes()).decode("ascii")

    @classmethod
    def from_base64(
        cls,
        data: str | bytes,
        sample_rate: int,
        channels: int = 1,
        format: AudioFormat = "s16",
    ) -> PcmData:
        """Parse base64 of ``to_bytes`` data; standard or URL-safe alphabet, padding optional."""
        text = data.decode("ascii") if isinstance(data, bytes) else data
        text = "".join(text.split()).translate(str.maketrans("-_", "+/"))
        text += "=" * (-len(text) % 4)
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"audio data is not valid base64: {exc}") from None
        return cls.from_bytes(raw, sample_rate, channels, format)

    # --- PyAV frames ----------------------------------------------------------------------

    @classmethod
    def from_av_frame(cls, frame: av.AudioFrame) -> PcmData:
        """Copy a PyAV frame. 8/16-bit integer input becomes s16, everything else f32.

        The timestamp stays None: a frame's pts is stream time, not capture time.
        """
        name = frame.format.name
        channels = frame.layout.nb_channels
        base = name.removesuffix("p")
        if base not in ("u8", "s16", "s32", "flt", "dbl"):
            raise TypeError(
                f"unsupported audio frame format {name!r}; accepted: u8, s16, s32, flt, dbl "
                "(packed or planar)"
            )
        target: AudioFormat = "s16" if base in ("u8", "s16") else "f32"
        if frame.samples == 0:  # PyAV cannot turn an empty frame into an array
            return cls.empty(frame.sample_rate, channels, target)
        arr: NDArray[Any] = frame.to_ndarray()
        if not frame.format.is_planar:
            arr = arr.reshape(-1, channels).T
        planar: NDArray[Any]
        if base == "u8":
            planar = (arr.astype(np.int16) - 128) << 8
        elif base == "s32":
            planar = arr.astype(np.float32) * np.float32(1.0 / 2**31)
        else:
            planar = np.array(arr, dtype=_DTYPES[target], order="C")  # copy: own the memory
        return cls(planar, frame.sample_rate)

    def to_av_frame(self) -> av.AudioFrame:
        """All samples in one packed frame (s16 or flt), pts 0 in a 1/sample_rate time base."""
        interleaved = np.ascontiguousarray(self.samples.T).reshape(1, -1)
        av_format = _PACKED_AV_FORMAT[self.format]
        layout = f"{self.channels}c"  # PyAV's default layout for a count: mono, stereo, ...
        if self._len == 0:
            frame = av.AudioFrame(format=av_format, layout=layout, samples=0)
        else:
            frame = av.AudioFrame.from_ndarray(interleaved, format=av_format, layout=layout)
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        frame.pts = 0
        return frame

    def to_av_frames(
        self, samples_per_frame: int | None = None, pts_start: int = 0
    ) -> list[av.AudioFrame]:
        """Packed frames of ``samples_per_frame`` (the last may be shorter; None: one frame).

        pts counts samples from ``pts_start`` in a 1/sample_rate time base, so frames from
        consecutive blocks line up when the caller carries the pts on.
        """
        if samples_per_frame is None:
            size = max(self._len, 1)
        else:
            size = operator.index(samples_per_frame)
            if size <= 0:
                raise ValueError(f"samples_per_frame must be positive, got {samples_per_frame}")
        frames = []
        for start in range(0, self._len, size):
            frame = self._like(self.samples[:, start : start + size]).to_av_frame()
            frame.pts = pts_start + start
            frames.append(frame)
        return frames

    # --- conversions ----------------------------------------------------------------------

    def to_int16(self) -> PcmData:
        """As int16; float samples are scaled by 32768 and clipped to the int16 range."""
        return self._like(convert_format(self.samples, "s16"))

    def to_float32(self) -> PcmData:
        """As float32 in [-1, 1) (int16 / 32768)."""
        return self._like(convert_format(self.samples, "f32"))

    def to_format(self, format: AudioFormat) -> PcmData:
        return self._like(convert_format(self.samples, check_format(format)))

    def to_channels(self, channels: int) -> PcmData:
        """Remix: to mono by averaging, from mono by copying to every channel."""
        return self._like(remix(self.samples, check_channels(channels)))

    def to_mono(self) -> PcmData:
        return self.to_channels(1)

    def resample(self, target_rate: int, target_channels: int | None = None) -> PcmData:
        """Convert the whole block at once (a fresh Resampler, flushed); keeps the format.

        For a stream of blocks use one ``Resampler`` instead: resampling blocks one by one
        with this method puts clicks at every block boundary.
        """
        from vision_agents.core.audio.resampler import Resampler  # resampler imports us

        channels = self.channels if target_channels is None else target_channels
        resampler = Resampler(target_rate, channels)
        out = resampler.process(self)
        tail = resampler.flush()
        # out is a new object (never self), so appending to it leaves this block alone
        return out.append(tail) if len(tail) else out

    # --- slicing and joining --------------------------------------------------------------

    def chunks(self, ms: float, *, pad_last: bool = False) -> Iterator[PcmData]:
        """Cut into pieces of ``ms`` milliseconds (rounded to whole samples).

        The last piece is shorter unless ``pad_last``, which pads it with silence. Pieces
        share memory with this block and carry their own capture timestamps.
        """
        if not (math.isfinite(ms) and ms > 0):
            raise ValueError(f"ms must be a positive number of milliseconds, got {ms!r}")
        size = round(ms * self._rate / 1000)
        if size < 1:
            raise ValueError(f"ms={ms} is shorter than one sample at {self._rate} Hz")
        samples = self.samples
        for start in range(0, self._len, size):
            piece = samples[:, start : start + size]
            if pad_last and piece.shape[1] < size:
                piece = np.pad(piece, ((0, 0), (0, size - piece.shape[1])))
            yield PcmData(
                piece,
                self._rate,
                participant=self.participant,
                timestamp=None if self.timestamp is None else self.timestamp + start / self._rate,
            )

    def append(self, other: PcmData) -> PcmData:
        """Add ``other``'s samples at the end, in place; returns self for chaining.

        ``other`` is converted to this block's format and resampled/remixed to its rate and
        channels if they differ. An empty block without a timestamp takes ``other``'s, and
        a block without a participant takes ``other``'s.
        """
        if not isinstance(other, PcmData):
            raise TypeError(f"can only append PcmData, got {type(other).__name__}")
        if other.sample_rate != self._rate or other.channels != self.channels:
            other = other.resample(self._rate, self.channels)
        extra = convert_format(other.samples, self.format)
        count = extra.shape[1]
        if self._len == 0 and self.timestamp is None:
            self.timestamp = other.timestamp
        if self.participant is None:
            self.participant = other.participant
        if count == 0:
            return self
        end = self._len + count
        if end > self._buf.shape[1]:
            grown = np.empty((self.channels, max(end, self._len * 3 // 2)), self._buf.dtype)
            grown[:, : self._len] = self._buf[:, : self._len]
            self._buf = grown
        self._buf[:, self._len : end] = extra
        self._len = end
        return self
