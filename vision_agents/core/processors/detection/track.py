"""`AnnotatedVideoTrack`: the video track a detection processor publishes into the call."""

from __future__ import annotations

import asyncio

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError


class AnnotatedVideoTrack(MediaStreamTrack):
    """A live video track fed by ``push``; ``recv`` returns frames in order, newest kept.

    Frames are pushed at the source's rate; a reader that falls more than ``buffer`` frames
    behind loses the oldest ones, so it never plays a backlog.
    """

    kind = "video"

    def __init__(self, buffer: int = 2) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue(maxsize=buffer)
        self.frames_pushed = 0
        self.frames_dropped = 0

    def push(self, frame: av.VideoFrame) -> None:
        if self.readyState != "live":
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.frames_dropped += 1
        self._queue.put_nowait(frame)
        self.frames_pushed += 1

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        if self.readyState == "live":
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)  # wakes a reader waiting in recv()
        super().stop()
