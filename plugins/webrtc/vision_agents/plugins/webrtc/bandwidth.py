"""The bandwidth estimate the call server sends browsers (REMB), per connection.

A browser sends its camera at no more than what the receiver's estimate (REMB) allows, and
once an estimate has pulled its target down, Chromium climbs back only about 8% a second.
aiortc's receive-side estimator (GCC's receive half, REMB only) was written for a peer that
sends all it can, and on a camera that is black, still or briefly stalled it sets its first
estimate from what little arrived (tens of kbps), and then lets it climb only to 1.5 times
what arrives, which the browser, obeying it, never exceeds. Measured here: after a camera was
off for 15 s, 30 kbps at 1 fps for 5 s, then 320x240 to the end of a 40 s call, where a
browser receiving the same camera got 640x480 at about 1.5 Mbps within 2 s.

``ModelRateControl`` keeps aiortc's delay-based congestion detector (queues growing on the
path: the only sign that the link, not the sender, is the limit) and changes what the
estimate does with it:

- it starts at ``start_bps`` (sent with the first packet: Chromium takes a receiver's
  estimate as its own during its first 2 s, so the camera is sharp from the first second);
- it falls only when the path is overused, to 0.85 times what arrives (as GCC), never below
  ``min_bps``; a thin, black or still stream is not a reason to fall;
- it climbs, 8% a second for 1 s after a fall, then 50% a second back to where it fell from
  (doubling each second once the path has not been full for 2 s), and beyond that 50% a
  second only while the browser sends at least half of it (an unused estimate proves
  nothing), so it is back within seconds of a link recovering;
- it also falls when more than 10% of the camera's packets go missing over a second (a
  queue that is always full shows no growing delay, only loss);
- after a gap in arrivals (a stalled link), the delay detector and the loss count start
  afresh: the burst that follows a stall is not a queue, nor are the packets lost in it.

Installed per connection (``use_model_estimator(pc)``), never process-wide: other aiortc
connections in the process keep aiortc's own estimator.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import aiortc
from aiortc import rate

START_BPS = 2_500_000
"""Sent with the first packet: what a 640x480 to 1280x720 camera needs to be sharp."""
MIN_BPS = 150_000
"""The estimate never falls below this (a picture, at a few fps, at the smallest size)."""
MAX_BPS = 8_000_000
"""The estimate never climbs above this (a 1920x1080 screen share at full rate)."""
SLOW_GROWTH = 1.08
"""Growth a second for ``CAUTIOUS_S`` after a fall (GCC's multiplicative increase)."""
FAST_GROWTH = 1.5
"""Growth a second afterwards, while the sender uses at least half of the estimate."""
RECOVERY_GROWTH = 2.0
"""Growth a second while below the level the estimate fell from, once the path has not been
full for ``CALM_S``: a link that recovered (from the 150 kbit/s floor back to 2.5 Mbit/s in
4 s; at 1.5 a second it took 7). A path still full now and then keeps ``FAST_GROWTH``."""
CALM_S = 2.0
"""Seconds without an overused path (a growing queue, or loss) before ``RECOVERY_GROWTH``."""
CAUTIOUS_S = 1.0
USED_SHARE = 0.5
"""The estimate only climbs while at least this share of it arrives."""
GAP_S = 0.5
"""After this long with no packet, delay measurements start afresh."""
FEEDBACK_INTERVAL_MS = 500
FALL_INTERVAL_MS = 1000
RECOVERED_MS = 10_000
"""A fall this long after the last one starts a new episode: the level it falls from is
remembered, and the estimate climbs back to it whether or not the browser uses it yet (the
browser's own controller then climbs at its pace; if the path is still full, it falls again)."""
LOSS_LIMIT = 0.1
"""More of the sender's packets lost than this over a second is a full path too: a queue
that is always full (a shallow router buffer) shows no growing delay, only loss."""

# The receiver attribute that holds aiortc's estimator; checked against these releases.
_ESTIMATOR_ATTRIBUTE = "_RTCRtpReceiver__remote_bitrate_estimator"
_TESTED_AIORTC = ("1.10", "1.11", "1.12", "1.13", "1.14", "1.15", "1.16")


@dataclass
class ModelRateControl:
    """The estimate's rule (see the module docstring); ``update`` has the signature of
    aiortc's ``AimdRateControl.update`` and answers the estimate in bits a second."""

    start_bps: int = START_BPS
    min_bps: int = MIN_BPS
    max_bps: int = MAX_BPS
    estimate: int = 0
    falls: int = 0
    """How many times the estimate fell for an overused path."""
    loss: float = 0.0
    """The share of the sender's packets lost over the last second (set by the estimator)."""
    _last_ms: int | None = None
    _fell_ms: int | None = None
    _throughput: int | None = None
    _before_fall: int = 0
    _full_ms: int | None = None  # when the path was last seen full
    rtt: int = 200  # read by aiortc's estimator

    def feedback_interval(self) -> int:
        return FEEDBACK_INTERVAL_MS

    def update(
        self, bandwidth_usage: rate.BandwidthUsage, estimated_throughput: int | None, now_ms: int
    ) -> int:
        if estimated_throughput is not None:
            self._throughput = estimated_throughput
        if self._last_ms is None:
            self._last_ms = now_ms
            self.estimate = self.start_bps
            return self.estimate
        elapsed_s = max(0, now_ms - self._last_ms) / 1000
        self._last_ms = now_ms
        throughput = self._throughput
        overused = bandwidth_usage == rate.BandwidthUsage.OVERUSING or self.loss > LOSS_LIMIT
        if overused:
            self._full_ms = now_ms
        if overused and throughput is not None:
            # Once a second at most: for a while after a fall, the queue still seen is the one
            # the old estimate built, and what arrives is already the sender slowing down.
            if self._fell_ms is None or now_ms - self._fell_ms >= FALL_INTERVAL_MS:
                target = max(self.min_bps, round(0.85 * throughput))
                if target < self.estimate:
                    if self._fell_ms is None or now_ms - self._fell_ms > RECOVERED_MS:
                        self._before_fall = self.estimate
                    self.falls += 1
                    self._fell_ms = now_ms
                    self.estimate = target
        elif (
            # Underuse (the queue draining) is room to grow too: the path carries more than
            # is sent. GCC holds there, and then probes, which a receiver cannot.
            not overused
            and throughput is not None
            and (throughput >= USED_SHARE * self.estimate or self.estimate < self._before_fall)
        ):
            cautious = self._fell_ms is not None and now_ms - self._fell_ms < CAUTIOUS_S * 1000
            calm = self._full_ms is None or now_ms - self._full_ms >= CALM_S * 1000
            recovering = calm and self.estimate < self._before_fall
            if cautious:
                per_second = SLOW_GROWTH
            else:
                per_second = RECOVERY_GROWTH if recovering else FAST_GROWTH
            grown = round(self.estimate * per_second ** min(elapsed_s, 1.0)) + 1000
            if recovering:  # back to the level it fell from, no further on this rule
                grown = min(grown, self._before_fall)
            self.estimate = min(self.max_bps, grown)
        return self.estimate

    def restart_after_gap(self, now_ms: int) -> None:
        """Arrivals resume after a gap: what was measured before it says nothing now."""
        self._last_ms = now_ms


@dataclass
class LossWindow:
    """Packets expected and received of one stream over the last second, from sequence
    numbers (a packet that arrives late, or is sent again, counts as received)."""

    _highest: int | None = None
    _seconds: deque[tuple[int, int]] = field(default_factory=deque)  # (ms, expected), a packet each
    _expected: int = 0  # the sum of the window's expected

    def add(self, sequence: int, now_ms: int) -> float:
        if self._seconds and now_ms - self._seconds[-1][0] > GAP_S * 1000:
            # Arrivals resume after a stall: what went missing in it is not a full path.
            self._highest = None
            self._seconds.clear()
            self._expected = 0
        expected = 0
        if self._highest is None:
            self._highest = sequence
        else:
            ahead = (sequence - self._highest) & 0xFFFF
            if 0 < ahead < 0x8000:
                expected = ahead
                self._highest = sequence
        # Running totals: this runs for every media packet.
        self._seconds.append((now_ms, expected))
        self._expected += expected
        while now_ms - self._seconds[0][0] > 1000:
            self._expected -= self._seconds.popleft()[1]
        if self._expected < 20:
            return 0.0
        return max(0.0, 1.0 - len(self._seconds) / self._expected)


class ModelBitrateEstimator(rate.RemoteBitrateEstimator):
    """aiortc's receive-side estimator (its delay detector and throughput counter) with
    ``ModelRateControl`` deciding the estimate, and a fresh delay detector after a gap."""

    def __init__(self, control: ModelRateControl | None = None) -> None:
        super().__init__()
        self.control = control or ModelRateControl()
        self.rate_control = self.control  # type: ignore[assignment]
        self._last_arrival_ms: int | None = None
        self._loss_window: dict[int, LossWindow] = {}

    def note_sequence(self, ssrc: int, sequence: int, arrival_time_ms: int) -> None:
        """An RTP packet of the media stream ``ssrc`` arrived: counts what went missing."""
        window = self._loss_window.setdefault(ssrc, LossWindow())
        self.control.loss = window.add(sequence, arrival_time_ms)

    @property
    def estimate_bps(self) -> int:
        return self.control.estimate

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        last = self._last_arrival_ms
        self._last_arrival_ms = arrival_time_ms
        if last is not None and arrival_time_ms - last > GAP_S * 1000:
            self.inter_arrival = rate.InterArrival(
                self.inter_arrival.group_length, self.inter_arrival.timestamp_to_ms
            )
            self.estimator = rate.OveruseEstimator()
            self.detector = rate.OveruseDetector()
            self.control.restart_after_gap(arrival_time_ms)
        return super().add(arrival_time_ms, abs_send_time, payload_size, ssrc)


def _check_aiortc() -> None:
    release = version("aiortc")
    if not release.startswith(_TESTED_AIORTC):
        raise RuntimeError(
            f"vision-agents' call server replaces aiortc's receive bandwidth estimator per "
            f"connection, written for aiortc {', '.join(_TESTED_AIORTC)}; aiortc {release} is "
            f"installed: install one of those"
        )


def use_model_estimator(
    pc: aiortc.RTCPeerConnection, control: type[ModelRateControl] = ModelRateControl
) -> list[ModelBitrateEstimator]:
    """Give each video receiver of ``pc`` (after ``setRemoteDescription``) a
    ``ModelBitrateEstimator``; returns them. Touches only this connection."""
    _check_aiortc()
    installed: list[ModelBitrateEstimator] = []
    for transceiver in pc.getTransceivers():
        receiver: Any = transceiver.receiver
        if transceiver.kind != "video" or not hasattr(receiver, _ESTIMATOR_ATTRIBUTE):
            continue
        estimator = ModelBitrateEstimator(control())
        setattr(receiver, _ESTIMATOR_ATTRIBUTE, estimator)
        _count_sequences(receiver, estimator)
        installed.append(estimator)
    return installed


def _count_sequences(receiver: Any, estimator: ModelBitrateEstimator) -> None:
    """Show ``estimator`` each media packet's sequence number before ``receiver`` (this one
    instance) handles it; retransmissions (RTX, their own payload type) are not counted."""
    handle = receiver._handle_rtp_packet

    async def handle_counted(packet: Any, arrival_time_ms: int) -> None:
        if packet.payload_type in receiver._RTCRtpReceiver__codecs:
            codec = receiver._RTCRtpReceiver__codecs[packet.payload_type]
            if codec.mimeType.lower() != "video/rtx":
                estimator.note_sequence(packet.ssrc, packet.sequence_number, arrival_time_ms)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_counted
