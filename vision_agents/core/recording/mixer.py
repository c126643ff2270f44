"""Mixes several audio sources into one timeline, each placed at the time its samples belong."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


class AudioMixer:
    """A mono float32 timeline in fixed blocks: sources add samples at a sample position; the
    finished part is taken from the front.

    Only the span between what was taken and ``max_ahead_s`` past it is held, so memory is
    bounded whatever the sources do: samples for the part already taken are dropped and counted
    in ``late_samples``, samples too far ahead in ``early_samples``.
    """

    def __init__(
        self, sample_rate: int = 48000, *, block: int = 960, max_ahead_s: float = 10.0
    ) -> None:
        if block < 1:
            raise ValueError(f"block must be at least 1 sample, got {block!r}")
        self.sample_rate = sample_rate
        self.block = block
        self.max_ahead = int(max_ahead_s * sample_rate)
        self.position = 0
        """Samples taken so far: the start of the part still open."""
        self.late_samples = 0
        self.early_samples = 0
        self._blocks: dict[int, Samples] = {}

    @property
    def held_blocks(self) -> int:
        return len(self._blocks)

    def add(self, samples: Samples, start: int) -> None:
        """Mix ``samples`` in, the first at sample position ``start``."""
        end = start + len(samples)
        if start < self.position:
            cut = min(len(samples), self.position - start)
            self.late_samples += cut
            samples, start = samples[cut:], start + cut
        limit = self.position + self.max_ahead
        if end > limit:
            keep = max(0, limit - start)
            self.early_samples += len(samples) - keep
            samples = samples[:keep]
        block = self.block
        offset = 0
        while offset < len(samples):
            index, within = divmod(start + offset, block)
            take = min(block - within, len(samples) - offset)
            target = self._blocks.get(index)
            if target is None:
                target = self._blocks[index] = np.zeros(block, dtype=np.float32)
            target[within : within + take] += samples[offset : offset + take]
            offset += take

    def take(self, until: int) -> Samples:
        """The mix from ``position`` up to sample ``until`` (silence where nothing was added)."""
        count = until - self.position
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        out = np.zeros(count, dtype=np.float32)
        block = self.block
        first, last = self.position // block, (until - 1) // block
        for index in range(first, last + 1):
            data = self._blocks.get(index)
            lo, hi = max(index * block, self.position), min((index + 1) * block, until)
            if data is not None:
                out[lo - self.position : hi - self.position] = data[
                    lo - index * block : hi - index * block
                ]
            if hi == (index + 1) * block:
                self._blocks.pop(index, None)
        self.position = until
        np.clip(out, -1.0, 1.0, out=out)
        return out
