"""Resampler: streaming rate, channel and format conversion of PcmData without clicks."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from vision_agents.core.audio.pcm import (
    AudioFormat,
    PcmData,
    check_channels,
    check_format,
    check_sample_rate,
    convert_format,
    remix,
)
from vision_agents.core.types import Participant

# Packed (interleaved) frames to and from libswresample: PyAV's planar frames break at 8
# channels (IndexError on input, a crash on output), packed ones carry any count in one plane.
_PACKED_AV_FORMAT = {"s16": "s16", "f32": "flt"}


class Resampler:
    """Converts a stream of PcmData blocks to one rate, channel count and format.

    Rate changes go through libswresample (PyAV's ``AudioResampler``), whose filter state
    carries over from block to block, so block boundaries stay click-free. The filter holds
    back about a millisecond of output; ``flush`` returns it at the end of a stream, after
    which the resampler is ready for a new stream. A flushed stream's output is exactly as
    long as its input, to the nearest output sample. Blocks already at the target rate are
    converted directly, with no delay, and returned sharing the input's samples when
    nothing needs to change.

    If a block comes with another rate, channel count or format than the blocks before
    it, the current internal stream is flushed, its tail returned ahead of the new block's
    output, and a new internal stream starts: nothing is lost, at the cost of a short seam
    in the audio at that point.

    Channels are mixed here, not by libswresample (whose levels depend on the sample
    format): to mono by averaging before resampling, from mono by copying after it.
    Output timestamps follow the stream's sample clock, anchored on the latest input
    block that had a timestamp.
    """

    def __init__(
        self,
        target_rate: int,
        target_channels: int = 1,
        target_format: AudioFormat | None = None,
    ) -> None:
        """``target_format=None`` keeps each block's own format."""
        self._rate = check_sample_rate(target_rate, "target_rate")
        self._channels = check_channels(target_channels, "target_channels")
        self._format = (
            None if target_format is None else check_format(target_format, "target_format")
        )
        self._swr: av.AudioResampler | None = None
        self._key: tuple[int, int, AudioFormat] | None = None  # input rate, channels, format
        self._time_base = Fraction(1)
        self._swr_format: AudioFormat = "s16"
        self._swr_channels = 1
        self._in_count = 0  # samples fed into the current libswresample stream
        self._out_count = 0  # samples it has given back
        self._origin: float | None = None  # capture time of the stream's first sample
        self._participant: Participant | None = None

    @property
    def target_rate(self) -> int:
        return self._rate

    @property
    def target_channels(self) -> int:
        return self._channels

    @property
    def target_format(self) -> AudioFormat | None:
        return self._format

    def __repr__(self) -> str:
        return (
            f"Resampler(target_rate={self._rate}, target_channels={self._channels}, "
            f"target_format={self._format!r})"
        )

    def process(self, pcm: PcmData) -> PcmData:
        """Convert one block; returns the output ready now (may be empty while filling)."""
        if not isinstance(pcm, PcmData):
            raise TypeError(f"Resampler.process takes PcmData, got {type(pcm).__name__}")
        if pcm.channels not in (1, self._channels) and self._channels != 1:
            raise ValueError(
                f"cannot remix {pcm.channels} channels to {self._channels}: only to or from "
                "mono is supported"
            )
        out_format = self._format or pcm.format
        if len(pcm) == 0:
            return self._empty(out_format, pcm.participant, pcm.timestamp)
        key = (pcm.sample_rate, pcm.channels, pcm.format)
        head = self._finish() if self._key not in (None, key) else None
        self._key = key
        if pcm.sample_rate == self._rate:
            out = self._convert(pcm, out_format)
        else:
            out = self._resample(pcm, out_format)
        if head is None or len(head) == 0:
            return out
        return head.to_format(out_format).append(out)

    def flush(self) -> PcmData:
        """Return the output still held back by the filter and end the stream."""
        out_format = self._format or (self._key[2] if self._key else "s16")
        participant = self._participant
        tail = self._finish()
        return self._empty(out_format, participant, None) if tail is None else tail

    def reset(self) -> None:
        """Drop the current stream, including any output held back."""
        self._swr = None
        self._key = None
        self._origin = None
        self._participant = None

    def _empty(
        self, format: AudioFormat, participant: Participant | None, timestamp: float | None
    ) -> PcmData:
        empty = PcmData.empty(self._rate, self._channels, format)
        empty.participant = participant
        empty.timestamp = timestamp
        return empty

    def _convert(self, pcm: PcmData, out_format: AudioFormat) -> PcmData:
        """Same rate: remix and convert the format in NumPy, with no delay."""
        samples = pcm.samples
        if self._channels < samples.shape[0]:  # mix down first: less to convert
            samples = convert_format(remix(samples, self._channels), out_format)
        else:
            samples = remix(convert_format(samples, out_format), self._channels)
        return PcmData(samples, self._rate, participant=pcm.participant, timestamp=pcm.timestamp)

    def _resample(self, pcm: PcmData, out_format: AudioFormat) -> PcmData:
        """Feed one block to libswresample, starting a stream if none runs."""
        samples = pcm.samples
        if self._channels == 1:  # mix down before filtering: fewer channels to filter
            samples = remix(samples, 1)
        if self._swr is None:
            self._swr_format = out_format
            self._swr_channels = samples.shape[0]
            self._swr = av.AudioResampler(
                format=_PACKED_AV_FORMAT[out_format],
                layout=f"{self._swr_channels}c",
                rate=self._rate,
            )
            self._time_base = Fraction(1, pcm.sample_rate)
            self._in_count = 0
            self._out_count = 0
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T).reshape(1, -1),
            format=_PACKED_AV_FORMAT[pcm.format],
            layout=f"{self._swr_channels}c",
        )
        frame.sample_rate = pcm.sample_rate
        frame.time_base = self._time_base
        frame.pts = self._in_count
        if pcm.timestamp is not None:
            self._origin = pcm.timestamp - self._in_count / pcm.sample_rate
        self._participant = pcm.participant
        self._in_count += samples.shape[1]
        return self._collect(self._swr.resample(frame))

    def _collect(self, frames: list[av.AudioFrame], limit: int | None = None) -> PcmData:
        """Join libswresample's output frames (at most ``limit`` samples) at target channels."""
        arrays: list[NDArray[Any]] = [
            frame.to_ndarray().reshape(-1, self._swr_channels).T
            for frame in frames
            if frame.samples
        ]
        if not arrays:
            dtype = np.int16 if self._swr_format == "s16" else np.float32
            joined: NDArray[Any] = np.zeros((self._swr_channels, 0), dtype)
        else:
            joined = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)
        if limit is not None:
            joined = joined[:, : max(limit, 0)]
        timestamp = None
        if self._origin is not None:
            timestamp = self._origin + self._out_count / self._rate
        self._out_count += joined.shape[1]
        return PcmData(
            remix(joined, self._channels),
            self._rate,
            participant=self._participant,
            timestamp=timestamp,
        )

    def _finish(self) -> PcmData | None:
        """End the current stream; returns libswresample's tail, None if none was running.

        libswresample's own flush drops the end of streams shorter than its filter and can
        come out a few samples short, so the input is first padded with silence to push the
        whole tail out, and the output is then cut to the stream's exact length:
        ``in_samples * target_rate / source_rate`` rounded to the nearest sample.
        """
        swr, key = self._swr, self._key
        if swr is None or key is None:
            self.reset()
            return None
        source_rate, _, source_format = key
        total = (2 * self._in_count * self._rate + source_rate) // (2 * source_rate)
        # the filter spans 32 samples at the lower of the two rates; twice that is plenty
        pad = 64 * max(1, -(-source_rate // self._rate)) + 64
        silence = av.AudioFrame.from_ndarray(
            np.zeros(
                (1, pad * self._swr_channels), np.int16 if source_format == "s16" else np.float32
            ),
            format=_PACKED_AV_FORMAT[source_format],
            layout=f"{self._swr_channels}c",
        )
        silence.sample_rate = source_rate
        silence.time_base = self._time_base
        silence.pts = self._in_count
        frames = swr.resample(silence) + swr.resample(None)
        tail = self._collect(frames, limit=total - self._out_count)
        self.reset()
        return tail
