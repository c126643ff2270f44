"""Microphone and speakers through PortAudio (``sounddevice``).

``MicrophoneTrack`` is an aiortc audio track of 20 ms frames captured from an input device.
``Speaker`` pulls an aiortc audio track (the agent's voice) and plays it on an output device.
PortAudio runs its own thread and calls us back; frames cross to the event loop (microphone)
or through a locked byte buffer (speaker).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
from collections import deque
from typing import Any

import aiortc
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from vision_agents.core.audio import PcmData, Resampler
from vision_agents.core.utils.live_track import audio_frames
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.local.audio_devices import (
    AudioDevice,
    list_audio_devices,
    sounddevice,
    stream_closed,
    stream_opened,
)
from vision_agents.plugins.local.errors import DeviceBusyError, describe_choices

logger = logging.getLogger(__name__)

_FRAME_MS = 20
_KEEP_FRAMES = 50  # 1 s of microphone audio waits for a slow reader, then the oldest goes


def _open_stream(kind: str, device: AudioDevice, **kwargs: Any) -> Any:
    """Open and start a PortAudio stream; a refusal names the device and what else exists."""
    sd = sounddevice()
    stream_cls = sd.RawInputStream if kind == "input" else sd.RawOutputStream
    try:
        stream = stream_cls(device=device.index, dtype="int16", **kwargs)
        stream.start()
    except sd.PortAudioError as exc:
        others = [
            str(d)
            for d in list_audio_devices(refresh=False)
            if (d.input_channels if kind == "input" else d.output_channels) > 0
        ]
        what = "microphone" if kind == "input" else "speaker"
        raise DeviceBusyError(
            f"could not open {what} {device} at {kwargs.get('samplerate')} Hz, "
            f"{kwargs.get('channels')} channel(s): {exc} (busy or unsupported); "
            f"{what}s: {describe_choices(others)}"
        ) from exc
    stream_opened()
    return stream


def _close_stream(stream: Any) -> None:
    try:
        stream.stop()
        stream.close()
    finally:
        stream_closed()


class MicrophoneTrack(aiortc.MediaStreamTrack):
    """Live audio from an input device, as 20 ms s16 frames at ``sample_rate``.

    ``start()`` opens the device; if the reader falls behind by more than a second the oldest
    frames are dropped (``dropped`` counts them).
    """

    kind = "audio"

    def __init__(
        self,
        device: AudioDevice,
        *,
        sample_rate: int = 48000,
        channels: int = 1,
        latency_ms: int = 100,
    ) -> None:
        super().__init__()
        self.device = device
        self.latency_ms = latency_ms
        """Device buffer: how late PortAudio's thread may run before audio is lost. Blocks
        still arrive every 20 ms, so a larger buffer adds no delay to what is captured."""
        self.sample_rate = sample_rate
        self.channels = min(channels, device.input_channels)
        self.captured = 0
        self.dropped = 0
        self.glitches = 0
        """PortAudio callbacks that reported an overflow or underflow."""
        self._frames: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stream: Any = None
        self._pts = 0

    def start(self) -> None:
        if self._stream is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stream = _open_stream(
            "input",
            self.device,
            samplerate=self.sample_rate,
            channels=self.channels,
            blocksize=self.sample_rate * _FRAME_MS // 1000,
            latency=self.latency_ms / 1000,
            callback=self._on_audio,
        )

    def _on_audio(self, data: Any, _frames: int, _time: Any, status: Any) -> None:
        # PortAudio's thread: copy the block and hand it to the loop.
        if status:
            self.glitches += 1
            logger.debug("microphone %s: %s", self.device.name, status)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._push, bytes(data))
            except RuntimeError:
                pass

    def _push(self, block: bytes) -> None:
        if self.readyState != "live":
            return
        self.captured += 1
        if len(self._frames) >= _KEEP_FRAMES:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(block)
        self._ready.set()

    async def recv(self) -> av.AudioFrame:
        if self._stream is None:
            self.start()
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        block = self._frames.popleft()
        samples = np.frombuffer(block, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            samples, format="s16", layout="stereo" if self.channels == 2 else "mono"
        )
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        self._pts += samples.shape[1] // self.channels
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            _close_stream(stream)


class Speaker:
    """Plays an aiortc audio track on an output device.

    A reader task pulls frames, converts them to the device's rate and channels, and queues
    the bytes; PortAudio's callback takes them. Playback starts once ``prebuffer_ms`` are
    queued (and again after running dry), which absorbs the event loop's lateness and the
    drift between the two clocks; ``latency_ms`` of device buffer absorbs PortAudio's thread
    being late. At most ``max_buffer_ms`` wait: past that the oldest audio is dropped.
    Defaults measured on 2 cores with 3 busy processes beside the test: 60 ms prebuffer and
    40 ms of device buffer broke the reply up in 2 of 3 runs; 120 ms and 100 ms in 0 of 13.
    """

    def __init__(
        self,
        device: AudioDevice,
        *,
        sample_rate: int = 48000,
        channels: int = 2,
        prebuffer_ms: int = 120,
        max_buffer_ms: int = 1000,
        latency_ms: int = 100,
    ) -> None:
        self.device = device
        self.sample_rate = sample_rate
        self.channels = min(channels, device.output_channels)
        self.latency_ms = latency_ms
        """Device buffer: how late PortAudio's thread may run before the device runs dry;
        it adds to the delay before the agent is heard."""
        self._bytes_per_ms = sample_rate * 2 * self.channels // 1000
        self._prebuffer = prebuffer_ms * self._bytes_per_ms
        self._max_buffer = max_buffer_ms * self._bytes_per_ms
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._primed = False
        self._stream: Any = None
        self._tasks = TaskOwner(f"speaker:{device.name}")
        self.frames_requested = 0
        """Frames the device has asked for, silence included: its real playback clock."""
        self.bytes_played = 0
        """Bytes of queued audio handed to the device (silence fill not counted)."""
        self.bytes_dropped = 0
        """Bytes dropped because the device took them slower than they came."""
        self.underruns = 0
        """Times the queue ran dry while playing."""
        self.glitches = 0
        """PortAudio callbacks that reported an underflow (the device ran dry: we were late)."""

    def start(self) -> None:
        if self._stream is not None:
            return
        self._stream = _open_stream(
            "output",
            self.device,
            samplerate=self.sample_rate,
            channels=self.channels,
            blocksize=self.sample_rate * _FRAME_MS // 1000,
            latency=self.latency_ms / 1000,
            callback=self._fill,
        )

    def play(self, track: aiortc.MediaStreamTrack) -> None:
        """Start playing ``track`` (opening the device if needed) until it ends or ``close()``."""
        self.start()
        self._tasks.spawn(self._pull(track), f"play:{track.id}")

    async def _pull(self, track: aiortc.MediaStreamTrack) -> None:
        resampler = Resampler(self.sample_rate, self.channels, "s16")
        async for frame in audio_frames(track):
            self._queue(resampler.process(PcmData.from_av_frame(frame)).to_bytes())

    def _queue(self, data: bytes) -> None:
        with self._lock:
            self._buffer += data
            overflow = len(self._buffer) - self._max_buffer
            if overflow > 0:
                overflow += -overflow % (2 * self.channels)
                del self._buffer[:overflow]
                self.bytes_dropped += overflow

    def _fill(self, out: Any, frames: int, _time: Any, status: Any) -> None:
        # PortAudio's thread: hand over queued audio, silence for whatever is missing.
        if status:
            self.glitches += 1
            logger.debug("speaker %s: %s", self.device.name, status)
        self.frames_requested += frames
        want = len(out)
        with self._lock:
            if not self._primed and len(self._buffer) >= self._prebuffer:
                self._primed = True
            chunk = bytes(self._buffer[:want]) if self._primed else b""
            del self._buffer[: len(chunk)]
            if self._primed and len(chunk) < want:
                self._primed = False
                self.underruns += 1
        self.bytes_played += len(chunk)
        out[: len(chunk)] = chunk
        out[len(chunk) :] = b"\x00" * (want - len(chunk))

    async def close(self) -> None:
        """Stop reading and close the device."""
        await self._tasks.close()
        stream, self._stream = self._stream, None
        if stream is not None:
            await asyncio.to_thread(_close_stream, stream)
