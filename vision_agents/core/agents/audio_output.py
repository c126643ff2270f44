"""The agent's voice as an aiortc audio track: write PCM in, a paced 20 ms frame stream out."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable

import aiortc
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.utils.audio_clock import AudioFrameClock

logger = logging.getLogger(__name__)


class AudioOutputTrack(aiortc.MediaStreamTrack):
    """Plays whatever the model says, in real time, and silence in between.

    ``write`` accepts ``PcmData`` at any rate and resamples it (streaming, so chunk boundaries
    stay clean); ``recv`` returns 20 ms frames paced by the wall clock; ``clear`` drops what is
    queued (barge-in). At most ``max_buffer_s`` seconds are queued: past that the oldest audio
    is dropped and a warning logged, so a runaway producer cannot grow memory without bound.

    ``played_ms(response_id)`` says how much of a response ``recv`` has really handed out
    (audio written with that ``response_id``), so a barge-in can truncate the model's
    transcript at what the user heard, not at what arrived.
    """

    kind = "audio"

    def __init__(
        self,
        sample_rate: int = 48000,
        channels: int = 2,
        frame_ms: int = 20,
        max_buffer_s: float = 300.0,
    ) -> None:
        super().__init__()
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels!r}")
        self.sample_rate = sample_rate
        self.channels = channels
        self._clock = AudioFrameClock(sample_rate, channels, frame_ms=frame_ms)
        self._bytes_per_sample = 2 * channels
        self._max_bytes = int(max_buffer_s * sample_rate) * self._bytes_per_sample
        self._resampler = Resampler(sample_rate, channels, "s16")
        self._buffer = bytearray()
        self.samples_played = 0
        """Samples of real (non-silence) audio handed out by ``recv``."""
        # Stream positions in bytes: the queue holds [_played, _written); each response
        # remembers the [start, end) span its audio took in that stream.
        self._written = 0
        self._played = 0
        self._spans: OrderedDict[str, list[int]] = OrderedDict()
        self._last_response: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._clear_listeners: list[Callable[[], None]] = []
        self._frame_listeners: list[Callable[[av.AudioFrame], None]] = []

    @property
    def buffered_ms(self) -> float:
        return len(self._buffer) / self._bytes_per_sample / self.sample_rate * 1000

    def write(self, pcm: PcmData, response_id: str | None = None) -> None:
        """Queue audio for playback; ``response_id`` lets ``played_ms`` track that reply."""
        if response_id is not None and response_id not in self._spans:
            self._spans[response_id] = [self._written, self._written]
            while len(self._spans) > 64:
                self._spans.popitem(last=False)
        self._last_response = response_id
        self._append(self._resampler.process(pcm))

    def end_of_response(self) -> None:
        """Push out the resampler's tail at the end of a reply."""
        self._append(self._resampler.flush())

    def clear(self) -> None:
        """Drop everything queued, at once (and tell ``on_clear`` listeners)."""
        self._buffer.clear()
        self._resampler.reset()
        self._written = self._played
        for span in self._spans.values():
            span[1] = min(span[1], self._played)
        self._idle.set()
        for listener in self._clear_listeners:
            try:
                listener()
            except Exception:
                logger.exception("an audio clear listener failed")

    def on_clear(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever ``clear`` drops the queue (a barge-in). For edges that
        queue the agent's voice further on (a phone network's playback buffer) and must drop
        theirs too."""
        self._clear_listeners.append(listener)

    def add_frame_listener(self, listener: Callable[[av.AudioFrame], None]) -> None:
        """Also hand each frame ``recv`` plays out to ``listener`` (a recorder); it runs on the
        loop at the moment the frame is played and must be quick."""
        self._frame_listeners.append(listener)

    def remove_frame_listener(self, listener: Callable[[av.AudioFrame], None]) -> None:
        self._frame_listeners.remove(listener)

    def played_ms(self, response_id: str) -> float | None:
        """Milliseconds of ``response_id``'s audio played so far; None for an unknown reply."""
        span = self._spans.get(response_id)
        if span is None:
            return None
        start, end = span
        played = max(0, min(self._played, end) - start)
        return played / self._bytes_per_sample / self.sample_rate * 1000

    async def wait_idle(self) -> None:
        """Wait until everything queued so far has been played."""
        await self._idle.wait()

    def _append(self, pcm: PcmData) -> None:
        if len(pcm) == 0:
            return
        self._buffer += pcm.to_bytes()
        self._written += len(pcm) * self._bytes_per_sample
        span = self._spans.get(self._last_response) if self._last_response else None
        if span is not None:
            span[1] = self._written
        self._idle.clear()
        overflow = len(self._buffer) - self._max_bytes
        if overflow > 0:
            del self._buffer[:overflow]
            self._played += overflow  # skipped: it will never play
            logger.warning(
                "agent audio buffer full: dropped %d ms of the oldest audio",
                overflow // self._bytes_per_sample * 1000 // self.sample_rate,
            )

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.tick()
        want = self._clock.frame_samples * self._bytes_per_sample
        chunk = bytes(self._buffer[:want])
        del self._buffer[:want]
        self._played += len(chunk)
        self.samples_played += len(chunk) // self._bytes_per_sample
        if not self._buffer:
            self._idle.set()
        frame = self._clock.frame(np.frombuffer(chunk, dtype=np.int16))
        for listener in list(self._frame_listeners):
            try:
                listener(frame)
            except Exception:
                logger.exception("an audio frame listener failed")
        return frame
