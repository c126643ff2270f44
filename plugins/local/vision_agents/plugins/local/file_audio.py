"""An audio file (any FFmpeg can read) played as a live microphone: 20 ms frames in real time."""

from __future__ import annotations

from pathlib import Path

import aiortc
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from vision_agents.core.utils.audio_clock import AudioFrameClock
from vision_agents.plugins.local.errors import DeviceNotFoundError

_FRAME_MS = 20


def decode_audio(path: str | Path, sample_rate: int = 48000, channels: int = 1) -> np.ndarray:
    """The whole file as interleaved int16 samples at ``sample_rate`` and ``channels``."""
    path = Path(path)
    if not path.is_file():
        raise DeviceNotFoundError(f"audio file not found: {path}")
    layout = "stereo" if channels == 2 else "mono"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=sample_rate)
    blocks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio stream")
        for frame in container.decode(audio=0):
            blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    blocks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)


class AudioFileTrack(aiortc.MediaStreamTrack):
    """Plays an audio file as a microphone would send it; silence after the end, or a loop.

    ``then_silence=True`` keeps the track live after the file (a microphone in a quiet room)
    instead of ending it.
    """

    kind = "audio"

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        loop: bool = False,
        then_silence: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.channels = channels
        self.loop = loop
        self.then_silence = then_silence
        self._samples = decode_audio(path, sample_rate, channels)
        self._pos = 0
        # A file behaves like a microphone: frames at wall-clock pace, never a burst.
        self._clock = AudioFrameClock(sample_rate, channels, frame_ms=_FRAME_MS, max_lag_s=None)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.tick()
        want = self._clock.frame_samples * self.channels
        chunk = self._samples[self._pos : self._pos + want]
        self._pos += len(chunk)
        if len(chunk) < want:
            if self.loop and len(self._samples):
                self._pos = 0
            elif not self.then_silence:
                self.stop()
                raise MediaStreamError
        return self._clock.frame(chunk)
