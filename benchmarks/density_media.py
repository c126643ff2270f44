"""Media for the density benchmark: a 640x480 camera whose frames carry their capture time
(encoded live, or encoded ahead of time so the harness costs the machine little while it
measures), a looping speech microphone, and the reader that recovers the time from a JPEG."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from typing import Any

import aiortc
import av
import cv2
import numpy as np

from vision_agents.core import PcmData
from vision_agents.core.utils.audio_clock import AudioFrameClock

WIDTH, HEIGHT = 640, 480
STAMP_BITS = 16
STAMP_BLOCK = 16  # pixels a bit at 640 wide: survives VP8 and JPEG
STAMP_MOD = 1 << STAMP_BITS


def now_ms() -> int:
    return int(time.time() * 1000)


class StampedCamera(aiortc.MediaStreamTrack):
    """640x480 yuv420p at ``fps``: a moving texture, the capture time (ms mod 65536) in the
    top-left blocks."""

    kind = "video"

    def __init__(self, fps: float = 30.0, seed: int = 0) -> None:
        super().__init__()
        self.fps = fps
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        base = (x * 200 // WIDTH + y * 40 // HEIGHT).astype(np.int16)
        base += rng.integers(-12, 12, size=base.shape, dtype=np.int16)  # texture for VP8
        self._luma = np.clip(base, 16, 235).astype(np.uint8)
        self._chroma = np.full((HEIGHT // 2, WIDTH), 128, dtype=np.uint8)
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = self.picture(self._count, now_ms())
        self._count += 1
        return frame

    def picture(self, count: int, wall_ms: int) -> av.VideoFrame:
        """Frame ``count`` of the moving texture, stamped with ``wall_ms``."""
        luma = np.roll(self._luma, 4 * count, axis=1)
        stamp = wall_ms % STAMP_MOD
        luma[:STAMP_BLOCK, : STAMP_BITS * STAMP_BLOCK] = 16
        for bit in range(STAMP_BITS):
            if stamp >> bit & 1:
                luma[:STAMP_BLOCK, bit * STAMP_BLOCK : (bit + 1) * STAMP_BLOCK] = 235
        frame = av.VideoFrame.from_ndarray(np.vstack([luma, self._chroma]), format="yuv420p")
        frame.pts = count * 3000
        frame.time_base = Fraction(1, 90000)
        return frame


class EncodedSchedule:
    """The stamped camera encoded to VP8 ahead of time for a fixed timetable: frame ``i`` is
    stamped with, and meant to be sent at, ``start + i / fps`` (wall clock). A keyframe
    every second, so a receiver that joins late or drops frames picks up within one."""

    def __init__(self, seconds: float, fps: float = 30.0, lead_s: float | None = None) -> None:
        from aiortc.codecs import get_encoder
        from aiortc.codecs.vpx import vp8_depayload
        from aiortc.rtcrtpparameters import RTCRtpCodecParameters

        self.fps = fps
        count = int(seconds * fps)
        encoder = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
        camera = StampedCamera(fps)
        if lead_s is None:
            # Time a second of encoding and start the timetable just after the whole of it
            # would be done (with a margin): a guessed lead that is too long leaves the first
            # part of a measurement without video.
            probe = get_encoder(RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000))
            began = time.monotonic()
            for i in range(int(fps)):
                probe.encode(camera.picture(i, 0), force_keyframe=i == 0)
            per_frame = (time.monotonic() - began) / int(fps)
            lead_s = count * per_frame * 1.5 + 1.0
        started = time.time() + lead_s
        self.frames: list[bytes] = []
        for i in range(count):
            picture = camera.picture(i, int((started + i / fps) * 1000))
            payloads, _ = encoder.encode(picture, force_keyframe=i % int(fps) == 0)
            self.frames.append(b"".join(vp8_depayload(p) for p in payloads))
        # The timetable starts once encoding is done (or at the lead time, if later), in
        # monotonic time, with the stamps shifted to match.
        now_wall, now_mono = time.time(), time.monotonic()
        self.start_wall_s = started
        self.start_mono_s = now_mono + (started - now_wall)
        if self.start_mono_s < now_mono:
            raise RuntimeError(
                f"encoding {count} frames took longer than the lead of {lead_s} s: give more"
            )


class PreEncodedCamera(aiortc.MediaStreamTrack):
    """Sends an ``EncodedSchedule`` on time, as packets aiortc passes through unencoded."""

    kind = "video"

    def __init__(self, schedule: EncodedSchedule) -> None:
        super().__init__()
        self._schedule = schedule
        self._next = 0

    async def recv(self) -> av.Packet[Any]:
        s = self._schedule
        now = time.monotonic()
        # The frame due next (never one whose time has passed: its stamp would lie).
        due_index = max(self._next, int(np.ceil((now - s.start_mono_s) * s.fps)))
        if due_index >= len(s.frames):
            raise RuntimeError("the encoded schedule ran out: encode a longer one")
        delay = s.start_mono_s + due_index / s.fps - now
        if delay > 0:
            await asyncio.sleep(delay)
        self._next = due_index + 1
        packet = av.Packet(s.frames[due_index])
        packet.pts = due_index * 3000
        packet.time_base = Fraction(1, 90000)
        return packet


def read_stamp(jpeg: bytes) -> int | None:
    """The capture time (ms mod 65536) drawn by ``StampedCamera``, from a JPEG of the frame."""
    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    block = max(2, round(STAMP_BLOCK * image.shape[1] / WIDTH))
    value = 0
    for bit in range(STAMP_BITS):
        cell = image[
            block // 4 : block - block // 4,
            bit * block + block // 4 : (bit + 1) * block - block // 4,
        ]
        if float(cell.mean()) > 127:
            value |= 1 << bit
    return value


def age_ms(stamp: int, at_ms: int) -> int:
    return (at_ms - stamp) % STAMP_MOD


def speech_samples(speech: PcmData) -> np.ndarray[Any, np.dtype[np.int16]]:
    """The microphones' speech: 48 kHz mono int16."""
    pcm = speech.resample(48000, 1)
    return np.frombuffer(pcm.to_bytes(), np.int16)


class LoopingMicrophone(aiortc.MediaStreamTrack):
    """Speech played in a loop at 48 kHz mono, 20 ms frames paced like a sound card."""

    kind = "audio"

    def __init__(self, speech: PcmData) -> None:
        super().__init__()
        self._samples = speech_samples(speech)
        self._clock = AudioFrameClock(48000, 1)
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        await self._clock.tick()
        n = self._clock.frame_samples
        if self._pos + n > len(self._samples):
            self._pos = 0
        chunk = self._samples[self._pos : self._pos + n]
        self._pos += n
        return self._clock.frame(chunk)


class PreEncodedMicrophone(aiortc.MediaStreamTrack):
    """``LoopingMicrophone``'s speech encoded to Opus once, sent as packets on the same pacing:
    a caller then costs the harness no encoder (aiortc's runs in a thread, 50 hand-offs a
    second), and what the agent hears is the same."""

    kind = "audio"

    def __init__(self, speech: PcmData) -> None:
        from aiortc.codecs.opus import OpusEncoder

        super().__init__()
        samples = speech_samples(speech)
        encoder = OpusEncoder()
        self._clock = AudioFrameClock(48000, 1)
        n = self._clock.frame_samples
        self._payloads: list[bytes] = []
        for i in range(len(samples) // n):
            payloads, _ts = encoder.encode(self._clock.frame(samples[i * n : (i + 1) * n]))
            self._payloads.extend(payloads)
        self._clock.pts = 0  # encoding stepped the clock: sending starts from the top
        self._index = 0

    async def recv(self) -> av.Packet[Any]:
        await self._clock.tick()
        packet = av.Packet(self._payloads[self._index % len(self._payloads)])
        packet.pts = self._clock.pts
        packet.time_base = Fraction(1, 48000)
        self._index += 1
        self._clock.pts += self._clock.frame_samples  # the clock paces by its pts
        return packet
