"""A relay track: stands in for a track given later, and gives a track an id of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import aiortc
from av.frame import Frame
from av.packet import Packet


class LateTrack(aiortc.MediaStreamTrack):
    """Sends nothing until ``attach(source)``, then relays ``source``'s frames.

    Janus's VideoRoom takes a publisher's media in one offer; the agent hands its audio and
    video tracks to the edge after joining. Each kind's sender gets a ``LateTrack`` at join, and
    a republish (after a Janus restart) reuses the same source.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: aiortc.MediaStreamTrack | None = None
        self._attached = asyncio.Event()

    @property
    def source(self) -> aiortc.MediaStreamTrack | None:
        return self._source

    def attach(self, source: aiortc.MediaStreamTrack) -> None:
        if source.kind != self.kind:
            raise ValueError(f"a {source.kind} track cannot be published as {self.kind}")
        self._source = source
        self._attached.set()

    async def recv(self) -> Frame | Packet[Any]:
        if self.readyState != "live":
            raise aiortc.mediastreams.MediaStreamError
        await self._attached.wait()
        assert self._source is not None
        try:
            return await self._source.recv()
        except aiortc.mediastreams.MediaStreamError:
            self.stop()  # the source ended: so does the relay
            raise
