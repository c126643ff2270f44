"""A video publisher for the agent: numbered pattern frames a browser can read back."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import aiortc
import av

from vision_agents.core.processors import VideoPublisher
from vision_agents.testing import pattern_frame


class PatternTrack(aiortc.MediaStreamTrack):
    """Frames carrying their index (``read_frame_index``), paced at ``fps``."""

    kind = "video"

    def __init__(self, fps: float = 15.0, size: tuple[int, int] = (320, 240)) -> None:
        super().__init__()
        self.fps = fps
        self.size = size
        self.index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.index / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(pattern_frame(self.index, *self.size), format="rgb24")
        frame.pts = round(self.index * 90000 / self.fps)
        frame.time_base = Fraction(1, 90000)
        self.index += 1
        return frame


class PatternPublisher(VideoPublisher):
    name = "pattern"

    def __init__(self, fps: float = 15.0) -> None:
        super().__init__()
        self.track = PatternTrack(fps)

    def publish_video_track(self) -> aiortc.MediaStreamTrack:
        return self.track

    async def close(self) -> None:
        self.track.stop()
        await super().close()
