"""Synthetic aiortc tracks for tests: a paced video source that records when it made each frame."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
from aiortc import MediaStreamError, MediaStreamTrack

VIDEO_TIME_BASE = Fraction(1, 90000)


class SyntheticVideoTrack(MediaStreamTrack):
    """A live-camera-like video track: frames at ``fps`` with RTP-style pts (90 kHz).

    Like a camera it drops frames instead of bursting when it is read late. It records the
    capture time (``time.monotonic()``) of each frame by pts, counts ``recv()`` calls, and
    ends by itself (``MediaStreamError``) after ``max_frames`` frames if that is given.
    """

    kind = "video"

    def __init__(
        self,
        fps: float = 30.0,
        *,
        width: int = 64,
        height: int = 48,
        max_frames: int | None = None,
    ) -> None:
        super().__init__()
        self.fps = fps
        self.width = width
        self.height = height
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
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
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
