"""A track fed by a producer thread, behaving like a live device."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import aiortc
import av
from aiortc.mediastreams import MediaStreamError

FrameT = TypeVar("FrameT", av.AudioFrame, av.VideoFrame, av.AudioFrame | av.VideoFrame)


class LiveQueueTrack(aiortc.MediaStreamTrack, Generic[FrameT]):
    """An aiortc track whose frames come from another thread (a decoder, a capture device).

    Like a camera or a microphone it never waits for its reader: it keeps at most ``keep``
    frames and drops the oldest when full (``dropped`` counts them). The producer calls
    ``deliver(frame)`` from any thread after ``bind_loop``, and ``deliver(None)`` at the end
    of the stream; ``recv`` then ends the track.
    """

    def __init__(self, kind: str, *, keep: int) -> None:
        super().__init__()
        if kind not in ("audio", "video"):
            raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
        if keep < 1:
            raise ValueError(f"keep must be at least 1 frame, got {keep!r}")
        self.kind = kind
        self.produced = 0
        """Frames the producer delivered."""
        self.dropped = 0
        self._keep = keep
        self._frames: deque[FrameT | None] = deque()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that ``recv`` runs on; ``deliver`` hands frames to it."""
        self._loop = loop

    def deliver(self, frame: FrameT | None) -> bool:
        """Queue ``frame`` from any thread; False once the loop is gone (stop producing)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(self._push, frame)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    def _on_frame(self, frame: FrameT) -> None:
        """Called on the loop for each delivered frame; subclasses record what they need."""

    def _push(self, frame: FrameT | None) -> None:
        if self.readyState != "live":
            return
        if frame is not None:
            self.produced += 1
            self._on_frame(frame)
            while len(self._frames) >= self._keep:
                self._frames.popleft()
                self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    async def _before_recv(self) -> None:
        """Called at each ``recv``; subclasses start their producer here."""

    async def recv(self) -> FrameT:
        await self._before_recv()
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        super().stop()
        self._ready.set()


async def audio_frames(track: aiortc.MediaStreamTrack) -> AsyncIterator[av.AudioFrame]:
    """The audio frames of ``track`` until it ends (anything else it yields is skipped)."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.AudioFrame):
            yield frame


async def video_frames(track: aiortc.MediaStreamTrack) -> AsyncIterator[av.VideoFrame]:
    """The video frames of ``track`` until it ends (anything else it yields is skipped)."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.VideoFrame):
            yield frame
