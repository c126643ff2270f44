"""A minimal sequential fan-out, the design our VideoForwarder replaces (for comparison only).

It models the best-known SDK's forwarder as measured: a reader puts frames into a FIFO that
keeps the last ``max_buffer`` frames, and ONE loop takes the oldest queued frame and calls
every handler on it in turn (async ones awaited, sync ones called inline on the loop). A
handler is called when at least ``1/fps`` has passed since its previous call. So a slow
handler holds up every other handler, and the FIFO turns waiting into frame age.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
from aiortc import MediaStreamError, MediaStreamTrack

Callback = Callable[[av.VideoFrame], Awaitable[None] | None]


@dataclass
class _Handler:
    callback: Callback
    interval: float
    last_call: float = float("-inf")


class SequentialForwarder:
    """One reader, one FIFO of recent frames, one loop awaiting each handler in turn."""

    def __init__(
        self,
        input_track: MediaStreamTrack,
        *,
        max_buffer: int = 30,
        fps: float | None = 30,
        name: str = "sequential",
    ) -> None:
        self.name = name
        self._track = input_track
        self._fps = fps
        self._queue: asyncio.Queue[av.VideoFrame] = asyncio.Queue(maxsize=max_buffer)
        self._handlers: list[_Handler] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add_frame_handler(
        self, callback: Callback, *, fps: float | None = None, name: str | None = None
    ) -> None:
        rate = fps if fps is not None else self._fps
        self._handlers.append(_Handler(callback, 1.0 / rate if rate else 0.0))
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._read()),
                asyncio.create_task(self._dispatch()),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _read(self) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await self._track.recv()
                assert isinstance(frame, av.VideoFrame)
                if self._queue.full():  # keep the newest max_buffer frames
                    self._queue.get_nowait()
                self._queue.put_nowait(frame)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._queue.get()  # the oldest frame still queued
            now = loop.time()
            for handler in self._handlers:
                if now - handler.last_call < handler.interval:
                    continue
                handler.last_call = now
                result = handler.callback(frame)
                if inspect.isawaitable(result):
                    await result
