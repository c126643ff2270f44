"""One received track read once and handed to many consumers (the agent, other browsers).

``Fanout`` owns one reader task per source. Consumers are sinks: ``FanoutTrack`` ends with
its source (what the agent gets), ``SlotTrack`` is a browser's receive slot that outlives
any one source and can be re-pointed at another participant or at nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from fractions import Fraction
from typing import Any, Union

import aiortc
import av
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError

from vision_agents.core.edge.sender_clock import SenderClock
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.plugins.webrtc.receive_stats import VideoReceiveMeter

logger = logging.getLogger(__name__)

Frame = Union[av.AudioFrame, av.VideoFrame, "av.Packet[Any]"]  # tracks' frames, or Opus

OPUS_TIME_BASE = Fraction(1, 48000)

_AUDIO_QUEUE = 50  # 1 s of 20 ms frames; older audio is dropped if a consumer stalls


class _Sink(aiortc.MediaStreamTrack):
    """A track fed by pushes: audio keeps order (bounded), video keeps only the newest frame."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._frames: deque[Frame] = deque(maxlen=_AUDIO_QUEUE if kind == "audio" else 1)
        self._ready = asyncio.Event()
        self.received = 0
        self.delivered = 0

    def push(self, frame: Frame) -> None:
        if self.readyState == "live":
            self._frames.append(frame)
            self.received += 1
            self._ready.set()

    def source_ended(self) -> None:
        """The source is gone; a ``FanoutTrack`` ends, a ``SlotTrack`` just waits."""

    async def recv(self) -> Frame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.delivered += 1
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class FanoutTrack(_Sink):
    """A consumer's copy of a source track; it ends when the source ends or is stopped."""

    def source_ended(self) -> None:
        self.stop()


class SlotTrack(_Sink):
    """A browser's receive slot: shows whichever source is attached, and nothing otherwise."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.source: Fanout | None = None

    def attach(self, source: Fanout | None) -> None:
        if self.source is source:
            return
        if self.source is not None:
            self.source.remove(self)
        self._frames.clear()
        self.source = source
        if source is not None:
            source.add(self)

    def stop(self) -> None:
        self.attach(None)
        super().stop()


class Fanout:
    """Reads ``track`` in one task (owned by ``owner``) and pushes every frame to each sink."""

    def __init__(
        self,
        track: aiortc.MediaStreamTrack,
        owner: TaskOwner,
        name: str,
        clock: SenderClock | None = None,
        *,
        encode_opus: bool = False,
        meter: VideoReceiveMeter | None = None,
    ) -> None:
        if track.kind not in ("audio", "video"):
            raise ValueError(f"track kind must be 'audio' or 'video', got {track.kind!r}")
        if encode_opus and track.kind != "audio":
            raise ValueError(f"only audio can be encoded to Opus, not {track.kind!r}")
        self.track = track
        self._opus = OpusEncoder() if encode_opus else None
        """Audio encoded once here, on the loop, for every browser's slot: aiortc would encode
        it again for each sender, each time handing a 20 ms frame to a thread and back, and
        measure its level in a pure-Python loop over every sample (with three browsers, six
        senders of the others' voices kept the call server's loop busy). Other sinks (the
        agent's copy) still get the frames."""
        self.clock = clock
        """Dates the track's frames on the sender's clock (see ``sender_clock``), if known."""
        self.meter = meter
        """Told of each video frame read (what a browser's camera delivers), if given."""
        self.kind: str = track.kind
        self.frames = 0
        self._sinks: set[_Sink] = set()
        self._ended = False
        self._task = owner.spawn(self._run(), f"fanout:{name}:{self.kind}")

    def subscribe(self) -> FanoutTrack:
        """A new track that receives every frame from now on and ends with the source."""
        sink = FanoutTrack(self.kind)
        self.add(sink)
        return sink

    def add(self, sink: _Sink) -> None:
        if self._ended:
            sink.source_ended()
        else:
            self._sinks.add(sink)

    def remove(self, sink: _Sink) -> None:
        self._sinks.discard(sink)

    async def stop(self) -> None:
        """Stop reading and end every ``FanoutTrack``; slots are detached."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._end()

    def _end(self) -> None:
        self._ended = True
        for sink in list(self._sinks):
            if isinstance(sink, SlotTrack):
                sink.attach(None)
            else:
                sink.source_ended()
        self._sinks.clear()

    def _encode(self, frame: av.AudioFrame) -> list[av.Packet[Any]]:
        assert self._opus is not None
        try:
            payloads, timestamp = self._opus.encode(frame)
        except (av.FFmpegError, ValueError, AssertionError) as exc:  # a frame it cannot take
            logger.warning("could not encode the agent's audio (%s); frame skipped", exc)
            return []
        packets = []
        for payload in payloads:
            packet = av.Packet(payload)
            packet.pts = timestamp
            packet.time_base = OPUS_TIME_BASE
            packets.append(packet)
        return packets

    async def _run(self) -> None:
        try:
            while True:
                try:
                    frame = await self.track.recv()
                except MediaStreamError:
                    return
                if not isinstance(frame, av.AudioFrame | av.VideoFrame):
                    continue  # packets pass through aiortc tracks only when encoded upstream
                self.frames += 1
                if self.meter is not None and isinstance(frame, av.VideoFrame):
                    self.meter.frame(frame.width, frame.height)
                if self._opus is not None and isinstance(frame, av.AudioFrame):
                    # Browsers' slots get Opus packets, encoded once here; consumers in this
                    # process (the agent) get the frames themselves.
                    sinks = list(self._sinks)
                    slots = [s for s in sinks if isinstance(s, SlotTrack)]
                    for packet in self._encode(frame) if slots else []:
                        for slot in slots:
                            slot.push(packet)
                    for other in sinks:
                        if not isinstance(other, SlotTrack):
                            other.push(frame)
                    continue
                for sink in list(self._sinks):
                    sink.push(frame)
        finally:
            self._end()
