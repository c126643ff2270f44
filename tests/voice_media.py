"""Test helpers for voice: a microphone track that plays scripted speech in real time, and an
in-memory edge that stamps each frame of the agent's voice with the time it was played."""

from __future__ import annotations

import asyncio
import fractions
import time

import aiortc
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from vision_agents.core import PcmData
from vision_agents.testing import InMemoryEdge

RATE = 48000
FRAME = 960  # 20 ms


class ScriptedMic(aiortc.MediaStreamTrack):
    """20 ms mono frames paced by the wall clock: silence, or whatever ``play`` queued.

    ``onset_at`` is when the frame holding the first loud sample of the last ``play`` came out.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue = np.zeros(0, dtype=np.int16)
        self._onset_index: int | None = None
        self._sent = 0
        self._start: float | None = None
        self.onset_at: float | None = None

    def play(self, pcm: PcmData) -> None:
        samples = pcm.resample(RATE, 1).to_int16().samples.reshape(-1)
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)  # about -40 dBFS
        self._onset_index = self._sent + len(self._queue) + (int(loud[0]) if len(loud) else 0)
        self.onset_at = None
        self._queue = np.concatenate([self._queue, samples])

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = np.zeros(FRAME, dtype=np.int16)
        take = self._queue[:FRAME]
        chunk[: len(take)] = take
        self._queue = self._queue[FRAME:]
        if self._onset_index is not None and self._sent <= self._onset_index < self._sent + FRAME:
            self.onset_at = time.monotonic()
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += FRAME
        return frame


class StampedEdge(InMemoryEdge):
    """Keeps (play time, pcm) for each frame of the agent's voice."""

    def __init__(self) -> None:
        super().__init__()
        self.voice: list[tuple[float, PcmData]] = []

    async def _record_audio(self, track: aiortc.MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                self.voice.append((time.monotonic(), PcmData.from_av_frame(frame)))

    def voice_since(self, since: float) -> PcmData:
        chunks = [pcm for t, pcm in self.voice if t >= since]
        out = chunks[0]
        for chunk in chunks[1:]:
            out = out.append(chunk)
        return out

    def first_sound_after(self, since: float) -> float | None:
        for t, pcm in self.voice:
            if t >= since and np.abs(pcm.samples).max() > 0:
                return t
        return None

    def first_silence_after(self, since: float, frames: int = 10) -> float | None:
        """Start of the first run of ``frames`` all-zero frames played after ``since``."""
        run_start, run = None, 0
        for t, pcm in self.voice:
            if t < since:
                continue
            if np.abs(pcm.samples).max() == 0:
                run_start = t if run == 0 else run_start
                run += 1
                if run >= frames:
                    return run_start
            else:
                run = 0
        return None
