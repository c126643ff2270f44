"""A video frame leaves the jitter buffer with its last packet, not with the next frame's first.

aiortc's ``JitterBuffer`` knows a video frame is whole only when a packet of the next frame
arrives (another RTP timestamp), so every frame waits one frame interval before it can be
decoded: 33 ms at 30 fps, 200 ms from a browser asked to send 5 fps. The sender already says
where a frame ends: the RTP marker bit is set on its last packet (RFC 7741 for VP8, RFC 6184
for H.264; aiortc and browsers set it). ``MarkerJitterBuffer`` hands a video frame on as soon
as its packets, from the first the buffer holds to the marked one, are all there and share one
timestamp. Anything else (a missing packet, a sender that sets no marker) falls back to
aiortc's rule. Audio buffers are untouched.
"""

from __future__ import annotations

import aiortc.jitterbuffer
import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterFrame

_installed = False


class MarkerJitterBuffer(aiortc.jitterbuffer.JitterBuffer):
    """aiortc's jitter buffer, with video frames complete at their marked last packet."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._is_video:
            frame = self._marked_frame()
            if frame is not None:
                return frame
        return super()._remove_frame(sequence_number)

    def _marked_frame(self) -> JitterFrame | None:
        """The oldest frame, if every packet of it up to one with the marker bit is here."""
        if self._origin is None:
            return None
        packets = []
        timestamp: int | None = None
        for count in range(self._capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None  # a gap: not whole yet
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                return None  # the oldest frame had no marker: aiortc's rule completes it
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
                return JitterFrame(data=data, timestamp=timestamp)
        return None


def install_marker_jitter_buffers() -> None:
    """Make every aiortc receiver in this process use ``MarkerJitterBuffer`` (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    # aiortc.rtcrtpreceiver imported the class by name: replace it there.
    setattr(aiortc.rtcrtpreceiver, "JitterBuffer", MarkerJitterBuffer)  # noqa: B010
