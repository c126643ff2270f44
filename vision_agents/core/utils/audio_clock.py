"""Real-time pacing and stamping of outgoing audio frames."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
import numpy.typing as npt


class AudioFrameClock:
    """Hands out fixed-size s16 frames at wall-clock pace, as a sound card would pull them.

    ``await tick()`` sleeps until the next frame is due; ``frame(samples)`` wraps interleaved
    int16 samples (padded with silence to a whole frame) with the right ``pts``. A reader that
    stalls for more than ``max_lag_s`` re-anchors the clock instead of bursting to catch up
    (``None``: always catch up).
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        *,
        frame_ms: int = 20,
        max_lag_s: float | None = 0.2,
    ) -> None:
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = sample_rate * frame_ms // 1000
        self.max_lag_s = max_lag_s
        self.pts = 0
        self._start: float | None = None

    async def tick(self) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self.pts / self.sample_rate
        if due > now:
            await asyncio.sleep(due - now)
        elif self.max_lag_s is not None and now - due > self.max_lag_s:
            self._start = now - self.pts / self.sample_rate

    def frame(self, samples: npt.NDArray[np.int16]) -> av.AudioFrame:
        """One frame of interleaved int16 ``samples`` (at most a frame's worth)."""
        want = self.frame_samples * self.channels
        if len(samples) > want:
            raise ValueError(f"got {len(samples)} samples for a frame of {want}")
        if len(samples) < want:
            samples = np.concatenate([samples, np.zeros(want - len(samples), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1),
            format="s16",
            layout="stereo" if self.channels == 2 else "mono",
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self.pts += self.frame_samples
        return frame
