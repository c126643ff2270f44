"""Maps a source's media timestamps onto the recording's clock, so that jitter does not move them."""

from __future__ import annotations

import math

# Where a frame that came too late is put: this far past what has been written.
_MARGIN_S = 0.1


class MediaClock:
    """Places one source's frames on the recording timeline.

    A frame's media time (its ``pts``) says where it sits relative to the source's other frames;
    its arrival time says roughly when it was captured, plus a delay that varies from frame to
    frame. The offset ``arrival - media`` is tracked as a running minimum (the least-delayed
    frames show the true relation), allowed to rise by at most ``drift_per_s`` seconds per
    second so that a source whose clock runs slow is followed. Frames that keep arriving more
    than ``resync_s`` later than that for ``resync_s`` seconds mean the timestamps jumped (a
    wrap, a restarted sender): placement starts over from them. A shorter spell is a stall:
    those frames keep their places (and may come too late to be written).
    """

    def __init__(self, *, resync_s: float = 1.0, drift_per_s: float = 0.0005) -> None:
        if resync_s <= 0:
            raise ValueError(f"resync_s must be positive, got {resync_s!r}")
        if drift_per_s < 0:
            raise ValueError(f"drift_per_s must not be negative, got {drift_per_s!r}")
        self.resync_s = resync_s
        self.drift_per_s = drift_per_s
        self.resyncs = 0
        self._offset: float | None = None
        self._last_arrival = 0.0
        self._late_since: float | None = None

    @property
    def offset(self) -> float | None:
        """Recording time minus media time, as placement stands (None before the first frame)."""
        return self._offset

    def place(self, media_s: float, arrival_s: float) -> float:
        """The recording time of a frame with media time ``media_s`` that arrived at ``arrival_s``."""
        observed = arrival_s - media_s
        offset = self._offset
        if offset is None:
            offset = observed
        elif observed < offset:
            if offset - observed > self.resync_s:
                self.resyncs += 1  # the timestamps jumped ahead
            offset = observed
            self._late_since = None
        elif observed - offset > self.resync_s:
            if self._late_since is None:
                self._late_since = arrival_s
            if arrival_s - self._late_since >= self.resync_s:
                self.resyncs += 1
                offset = observed
                self._late_since = None
        else:
            self._late_since = None
            allowed = self.drift_per_s * max(0.0, arrival_s - self._last_arrival)
            offset += min(observed - offset, allowed)
        self._offset = offset
        self._last_arrival = arrival_s
        return media_s + offset


class SenderGroup:
    """One sender's streams, dated on the sender's own wall clock (RTCP sender reports): their
    frames keep the sender's relation on the recording timeline.

    Each stream's offset from sender time to recording time is tracked on its own (a
    ``MediaClock``: its least-delayed frames); all of them are placed with the largest offset,
    that of the stream with the most delay on the way, as a player holds back the earlier
    stream: sync never makes a frame too late to be written. A stream whose offset is more than
    ``MediaClock.resync_s`` above the smallest keeps its own and is left out of the others'
    (its sender times are off, or it is far behind): better out of step than held back.

    The shared offset rises at once (a frame must not come too late) but falls by at most
    ``settle_per_s`` seconds a second. Falling at once moved streams apart while the offsets
    settle (the first second or so): a beep placed when its audio came and the flash made with
    it placed 50-100 ms later, when the video came, after the offset had dropped. At the
    default 0.05 s a second, streams that arrive 0.1 s apart move at most 5 ms apart, and an
    offset 0.25 s too high settles in 5 s (meanwhile this sender is placed that much late
    against the call's others).
    """

    def __init__(self, *, settle_per_s: float = 0.05) -> None:
        if settle_per_s < 0:
            raise ValueError(f"settle_per_s must not be negative, got {settle_per_s!r}")
        self.settle_per_s = settle_per_s
        self._base: float | None = None
        self._clocks: dict[str, MediaClock] = {}
        self._offset: float | None = None
        self._target = 0.0  # the largest stream offset, when last placed
        self._last_arrival = 0.0
        self.raises = 0
        """Times the streams were moved later because a frame would have come too late."""

    def place(
        self, source: str, sender_s: float, arrival_s: float, not_before: float = -math.inf
    ) -> float:
        """The recording time of ``source``'s frame captured at ``sender_s`` (sender's clock)
        that arrived at ``arrival_s`` (recording clock).

        ``not_before``: what the recording has already written. A frame that would land there
        (its streams now come later than the recording waits for: a backlog on the way) moves
        all of the sender's streams later, together, so that it lands at its arrival (or just
        past ``not_before``): a short gap, then in step again, rather than everything that
        follows dropped as late. Counted in ``raises``."""
        if self._base is None:
            self._base = sender_s  # keeps the numbers small (NTP seconds are about 4e9)
        media = sender_s - self._base
        clock = self._clocks.get(source)
        if clock is None:
            clock = self._clocks[source] = MediaClock()
        own = clock.place(media, arrival_s) - media
        offsets = [c.offset for c in self._clocks.values() if c.offset is not None]
        low = min(offsets)
        if own - low > clock.resync_s:
            return media + own
        target = max(o for o in offsets if o - low <= clock.resync_s)
        previous, self._target = self._target, target
        if self._offset is None or target > self._offset or previous - target > clock.resync_s:
            self._offset = target  # higher, or the streams' timestamps jumped (a resync)
        else:
            elapsed = max(0.0, arrival_s - self._last_arrival)
            self._offset = max(target, self._offset - self.settle_per_s * elapsed)
        self._last_arrival = max(self._last_arrival, arrival_s)
        if media + self._offset < not_before:
            self._offset = max(arrival_s, not_before + _MARGIN_S) - media
            self.raises += 1
        return media + self._offset

    def remove(self, source: str) -> None:
        self._clocks.pop(source, None)
