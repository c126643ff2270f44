"""Synthetic aiortc tracks for tests: paced video sources (one records when it made each
frame, one shows a picture the test changes) and a microphone the test makes talk."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import cv2
import numpy as np
from aiortc import MediaStreamError, MediaStreamTrack

from vision_agents.core.audio import PcmData

VIDEO_TIME_BASE = Fraction(1, 90000)


class SyntheticVideoTrack(MediaStreamTrack):
    """A live-camera-like video track: frames at ``fps`` with RTP-style pts (90 kHz).

    Like a camera it drops frames instead of bursting when it is read late. It records the
    capture time (``time.monotonic()``) of each frame by pts, counts ``recv()`` calls, and
    ends by itself (``MediaStreamError``) after ``max_frames`` frames if that is given.

    Every frame shows ``picture`` (RGB, ``height`` x ``width``) if given; by default the
    frames cycle through four pictures of seeded noise (every frame differs, as a frame
    policy watching for changes expects of a live camera). Never an uninitialised
    ``av.VideoFrame``: its pixels are whatever memory it got, so a JPEG of it weighed 8 kB
    when run alone and 85 kB in a full run (a test of a slow link measured the heap).
    """

    kind = "video"

    def __init__(
        self,
        fps: float = 30.0,
        *,
        width: int = 64,
        height: int = 48,
        max_frames: int | None = None,
        picture: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.fps = fps
        self.width = width
        self.height = height
        if picture is None:
            rng = np.random.default_rng(0)  # yuv420p planes as one (height * 3 / 2) x width
            shape = (height * 3 // 2, width)
            self._planes = [rng.integers(0, 256, shape, np.uint8) for _ in range(4)]
        else:
            if picture.shape != (height, width, 3):
                raise ValueError(f"picture must be {height} x {width} x 3, got {picture.shape}")
            # Converted once; each frame copies these planes (cheap next to an encode).
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            self._planes = [frame.reformat(format="yuv420p").to_ndarray()]
        self.max_frames = max_frames
        self.recv_calls = 0
        self.frames_sent = 0
        self.capture_times: dict[int, float] = {}
        self.latest_pts: int | None = None
        self._next_due: float | None = None
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        self.recv_calls += 1
        if self.readyState != "live":
            raise MediaStreamError
        if self.max_frames is not None and self.frames_sent >= self.max_frames:
            self.stop()
            raise MediaStreamError
        interval = 1.0 / self.fps
        now = time.monotonic()
        if self._next_due is None:
            self._next_due = now
        elif now - self._next_due > interval:  # read late: skip the frames we missed
            missed = int((now - self._next_due) / interval)
            self._next_due += missed * interval
            self._index += missed
        await asyncio.sleep(max(0.0, self._next_due - time.monotonic()))
        if self.readyState != "live":
            raise MediaStreamError
        planes = self._planes[self._index % len(self._planes)]
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = round(self._index * 90000 / self.fps)
        frame.time_base = VIDEO_TIME_BASE
        self.capture_times[frame.pts] = time.monotonic()
        self.latest_pts = frame.pts
        self.frames_sent += 1
        self._index += 1
        self._next_due += interval
        return frame

    def age(self, frame: av.VideoFrame, now: float | None = None) -> float:
        """Seconds since this track made ``frame``."""
        assert frame.pts is not None
        return (time.monotonic() if now is None else now) - self.capture_times[frame.pts]


def room(seed: int = 0, width: int = 640, height: int = 360) -> np.ndarray:
    """A smooth random picture (RGB), a different one for each seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, size=(height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(coarse, (width, height)), (0, 0), 3)


class PictureTrack(MediaStreamTrack):
    """A camera showing ``picture`` (set it to change the scene), ``fps`` frames a second in
    real time. ``pictures``: shown in turn, one a frame (a scene that never keeps still);
    ``noise``: the sigma of camera noise added to each frame (0: none)."""

    kind = "video"

    def __init__(self, picture: np.ndarray, fps: float = 15.0, *, noise: float = 0.0) -> None:
        super().__init__()
        self.pictures = [picture]
        self.fps = fps
        self.noise = noise
        self._rng = np.random.default_rng(0)
        self._sent = 0
        self._start: float | None = None

    @property
    def picture(self) -> np.ndarray:
        return self.pictures[-1]

    @picture.setter
    def picture(self, picture: np.ndarray) -> None:
        self.pictures = [picture]

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent / self.fps - time.monotonic()))
        image = self.pictures[self._sent % len(self.pictures)]
        if self.noise:
            image = np.clip(image + self._rng.normal(0, self.noise, image.shape), 0, 255)
        rgb = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
        frame = rgb.reformat(format="yuv420p")
        frame.pts, frame.time_base = self._sent, Fraction(1, round(self.fps))
        self._sent += 1
        return frame


class MicrophoneTrack(MediaStreamTrack):
    """A microphone in real time (20 ms frames, 48 kHz mono): ``speech`` over and over while
    ``talking`` is True, silence otherwise."""

    kind = "audio"
    RATE = 48000

    def __init__(self, speech: PcmData) -> None:
        super().__init__()
        self.talking = False
        self._speech = speech.resample(self.RATE, 1).to_int16().samples.reshape(-1)
        self._at = 0
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        n = self.RATE // 50
        await asyncio.sleep(max(0.0, self._start + self._sent / self.RATE - time.monotonic()))
        if self.talking:
            chunk = np.take(self._speech, np.arange(self._at, self._at + n), mode="wrap")
            self._at = (self._at + n) % len(self._speech)
        else:
            chunk = np.zeros(n, np.int16)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts, frame.time_base = self._sent, Fraction(1, self.RATE)
        self._sent += n
        return frame
