"""When a received frame was captured, on its sender's clock, from RTCP sender reports.

Each stream a browser sends has its own RTP timestamps, starting anywhere: nothing in them
says which audio sample goes with which video frame. The sender says so in its RTCP sender
reports (RFC 3550, 6.4.1): each pairs an RTP timestamp with the sender's wall-clock time (NTP
format), and all of one sender's streams share that wall clock. That is how players keep lips
in sync with voices, and how the recorder does.

aiortc reads the reports but keeps them to itself, and numbers the frames it hands out from
the first one it decoded (its timestamp mapper). ``watch_receiver`` taps both on one receiver;
if a later aiortc no longer has them, the clock simply never knows (``sender_time`` is None)
and frames are placed by their arrival, as before.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc.rtp import RtcpSrPacket

logger = logging.getLogger(__name__)

_WRAP = 1 << 32
VIDEO_CLOCK_RATE = 90_000


class SenderClock:
    """Maps one received stream's frame timestamps to its sender's wall clock, in seconds.

    ``note_report`` takes each sender report (its SSRC, 64-bit NTP time and 32-bit RTP
    timestamp); ``origin`` gives the RTP timestamp that frames' ``pts`` count from (pts = RTP
    timestamp - origin, unwrapped). Only the media stream's reports count once
    ``media_ssrc`` is known: a retransmission (RTX) stream reports its own, unrelated
    timestamps. Before the first report, or without an origin, the time is unknown.

    ``clock_rate``: the stream's RTP clock (90 kHz for every WebRTC video codec). Given, a
    frame's ``pts`` may be in any time base (a decoder may hand out microseconds); without it,
    the time base must be the RTP clock's (1/48000 for Opus), as aiortc's audio frames are.
    """

    def __init__(self, origin: Callable[[], int | None], clock_rate: int | None = None) -> None:
        if clock_rate is not None and clock_rate <= 0:
            raise ValueError(f"clock_rate must be positive, got {clock_rate!r}")
        self._origin = origin
        self.clock_rate = clock_rate
        self._reports: dict[int | None, tuple[float, int]] = {}
        self._latest: tuple[float, int] | None = None
        self.media_ssrc: int | None = None
        """The SSRC of the stream's media packets (the first packet's), once one came."""
        self.reports = 0

    @property
    def reported(self) -> bool:
        """Whether the sender has reported on the stream's media yet (its frames can be dated).
        Chromium reports on audio first about 2.5 s after it starts sending, on video sooner;
        until then a recording places the stream by arrival, not in step with the others."""
        if self.media_ssrc is None:
            return self._latest is not None
        return self.media_ssrc in self._reports

    def note_report(self, ntp_timestamp: int, rtp_timestamp: int, ssrc: int | None = None) -> None:
        if ntp_timestamp <= 0:
            return  # a sender without a wall clock sends zero (RFC 3550)
        report = (ntp_timestamp / _WRAP, rtp_timestamp % _WRAP)
        self._reports[ssrc] = self._latest = report
        self.reports += 1

    def sender_time(self, pts: int | None, time_base: fractions.Fraction | None) -> float | None:
        """The sender's wall-clock time (seconds) at which the frame with ``pts`` was captured;
        None while that is not known."""
        report = self._latest if self.media_ssrc is None else self._reports.get(self.media_ssrc)
        origin = self._origin()
        if report is None or origin is None or pts is None or time_base is None:
            return None
        if self.clock_rate is not None:
            rate = self.clock_rate
            pts = round(pts * time_base * rate)  # exact: Fraction arithmetic
        elif time_base.numerator != 1 or time_base.denominator <= 0:
            return None  # not in RTP units, and the RTP clock is not known
        else:
            rate = time_base.denominator
        ntp_s, rtp = report
        at = (rtp - origin) % _WRAP  # the report's timestamp in the frames' numbering...
        at += round((pts - at) / _WRAP) * _WRAP  # ...taken in the frame's own wrap
        return ntp_s + (pts - at) / rate


def watch_receiver(receiver: aiortc.RTCRtpReceiver) -> SenderClock:
    """A ``SenderClock`` fed by ``receiver``'s sender reports (see the module's note)."""
    mapper: Any = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)

    def origin() -> int | None:
        value = getattr(mapper, "_origin", None)
        return value if isinstance(value, int) else None

    # Every WebRTC video codec's RTP clock runs at 90 kHz (RFC 7741, 6184, ...); aiortc's
    # video decoders may hand out frames in another time base (microseconds, through PyAV).
    clock = SenderClock(origin, VIDEO_CLOCK_RATE if receiver.track.kind == "video" else None)
    codecs: Any = getattr(receiver, "_RTCRtpReceiver__codecs", None)
    on_rtcp: Callable[[Any], Awaitable[None]] | None = getattr(
        receiver, "_handle_rtcp_packet", None
    )
    on_rtp: Callable[..., Awaitable[None]] | None = getattr(receiver, "_handle_rtp_packet", None)
    tapped_before = set(vars(receiver))
    if mapper is None or on_rtcp is None or on_rtp is None:
        logger.debug("this aiortc hides its sender reports: frames are placed by arrival")
        return clock

    async def tapped_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            clock.note_report(int(info.ntp_timestamp), int(info.rtp_timestamp), int(packet.ssrc))
        await on_rtcp(packet)

    async def first_rtp(packet: Any, arrival_time_ms: int) -> None:
        # The first media packet's SSRC says whose reports date the frames; then the tap steps
        # aside (no cost per packet). Chromium's first packets are often bandwidth probes on
        # its retransmission (RTX) stream, padding only: those are passed by.
        if not _is_retransmission(packet, codecs):
            clock.media_ssrc = int(packet.ssrc)
            # Whatever handled packets before the tap handles them again (another tap of
            # this receiver's, or the class's own method).
            if "_handle_rtp_packet" in tapped_before:
                setattr(receiver, "_handle_rtp_packet", on_rtp)  # noqa: B010
            else:
                receiver.__dict__.pop("_handle_rtp_packet", None)
        await on_rtp(packet, arrival_time_ms=arrival_time_ms)

    # The transport calls these by name on the receiver for each packet routed to it.
    receiver._handle_rtcp_packet = tapped_rtcp  # type: ignore[method-assign]
    receiver._handle_rtp_packet = first_rtp  # type: ignore[method-assign]
    return clock


def _is_retransmission(packet: Any, codecs: Any) -> bool:
    """Whether an RTP packet belongs to a retransmission stream or carries no media."""
    if not getattr(packet, "payload", b""):
        return True  # padding only (a bandwidth probe)
    codec = codecs.get(packet.payload_type) if isinstance(codecs, dict) else None
    return codec is not None and str(getattr(codec, "name", "")).lower() == "rtx"


def watch_track(pc: aiortc.RTCPeerConnection, track: aiortc.MediaStreamTrack) -> SenderClock | None:
    """``watch_receiver`` for the receiver of ``track`` in ``pc`` (None if it has none)."""
    for receiver in pc.getReceivers():
        if receiver.track is track:
            return watch_receiver(receiver)
    return None
