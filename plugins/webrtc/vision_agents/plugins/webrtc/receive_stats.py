"""What the call server receives of a browser's camera: size, frame rate, bitrate, freezes.

``VideoReceiveMeter`` is told of each decoded frame (by the ``Fanout`` that reads the track)
and of each RTP packet's payload bytes (``count_received_bytes``, on that one receiver), and
``take()`` answers the figures since the last take. It does no I/O and reads the time from the
clock it is given, so tests drive it with a fake one. The edge turns the figures into
``VideoReceiveStatsEvent`` and the page's "video-stats" message.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiortc

FREEZE_GAP_S = 0.5
"""No new frame for longer than this (after the first) is a freeze."""


@dataclass(frozen=True)
class VideoReceiveFigures:
    """One interval of a received video track; ``freezes`` and ``frozen_s`` are totals."""

    interval_s: float
    width: int
    height: int
    fps: float
    kbps: float
    freezes: int
    frozen_s: float
    muted: bool


class VideoReceiveMeter:
    """Counts one received video track's frames and bytes, and its freezes.

    A freeze is a gap of more than ``freeze_gap_s`` between frames, the first frame excepted;
    it is counted once, as soon as the gap is that long (a ``take()`` during it sees it), and
    all of the gap counts towards ``frozen_s``. While ``muted`` (the camera turned off) gaps are
    not freezes.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, freeze_gap_s: float = FREEZE_GAP_S
    ) -> None:
        if not (isinstance(freeze_gap_s, int | float) and math.isfinite(freeze_gap_s)) or (
            freeze_gap_s <= 0
        ):
            raise ValueError(
                f"freeze_gap_s must be a number of seconds above 0, got {freeze_gap_s!r}"
            )
        self.clock = clock
        self.freeze_gap_s = float(freeze_gap_s)
        self.width = 0
        self.height = 0
        self.frames = 0
        self.bytes = 0
        self.freezes = 0
        self.frozen_s = 0.0
        self.muted = False
        self._last_frame: float | None = None
        self._frozen_to = 0.0  # the running gap counts as frozen up to here
        self._freezing = False
        self._taken = (clock(), 0, 0)  # (time, frames, bytes) at the last take

    def frame(self, width: int, height: int) -> None:
        """A frame was decoded."""
        now = self.clock()
        self._settle(now)
        self._last_frame = self._frozen_to = now
        self._freezing = False
        self.width, self.height = width, height
        self.frames += 1

    def add_bytes(self, count: int) -> None:
        """Encoded bytes arrived (an RTP packet's payload)."""
        self.bytes += count

    def set_muted(self, muted: bool) -> None:
        """The camera was turned off (or on): a gap that starts now is not a freeze."""
        now = self.clock()
        self._settle(now)
        self.muted = muted
        if self._last_frame is not None:
            self._last_frame = self._frozen_to = now
        self._freezing = False

    def take(self) -> VideoReceiveFigures:
        """The figures since the last take (the first: since the meter was made)."""
        now = self.clock()
        self._settle(now)
        at, frames, received = self._taken
        self._taken = (now, self.frames, self.bytes)
        elapsed = now - at
        return VideoReceiveFigures(
            interval_s=elapsed,
            width=self.width,
            height=self.height,
            fps=(self.frames - frames) / elapsed if elapsed > 0 else 0.0,
            kbps=(self.bytes - received) * 8 / 1000 / elapsed if elapsed > 0 else 0.0,
            freezes=self.freezes,
            frozen_s=self.frozen_s,
            muted=self.muted,
        )

    def _settle(self, now: float) -> None:
        """Count the gap running since the last frame, up to ``now``, if it is a freeze."""
        if self.muted or self._last_frame is None or now - self._last_frame <= self.freeze_gap_s:
            return
        if not self._freezing:
            self._freezing = True
            self.freezes += 1
        self.frozen_s += now - self._frozen_to
        self._frozen_to = now


def count_received_bytes(receiver: aiortc.RTCRtpReceiver, meter: VideoReceiveMeter) -> None:
    """Tell ``meter`` the payload bytes of each RTP packet that reaches ``receiver`` (this one
    instance; retransmissions included, as a browser's ``bytesReceived`` counts them)."""
    target: Any = receiver
    handle = target._handle_rtp_packet

    async def handle_counted(packet: Any, arrival_time_ms: int) -> None:
        meter.add_bytes(len(packet.payload))
        await handle(packet, arrival_time_ms)

    target._handle_rtp_packet = handle_counted
