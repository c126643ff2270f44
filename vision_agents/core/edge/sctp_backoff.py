"""Data channels that keep moving when a path's round trip grows: SCTP's timeout backs off.

aiortc's SCTP (1.10-1.16) sets its retransmission timeout (RTO) from round trips measured
while the path was empty, and on a timeout resends with a one-packet window but never
doubles the RTO (RFC 9260 6.3.3, rule E2) and, rightly, takes no round trip from resent
data. Once the round trip grows past the RTO (a slow uplink whose queue fills with video
frames), every timeout fires before the answer can come, forever: one packet a round trip.
Measured on a 160 kbit/s loopback link beside CPU burners: the test server's association sat
at RTO 1 s with a 1.7 s round trip, its timer expiring every 1.7 s for 45 s, and two frames
took 53-56 s to arrive (``tests/test_video_backlog.py``).

``use_rto_backoff(pc)`` doubles the RTO on each timeout (up to aiortc's 60 s), as the RFC
says, on that connection's association only; the next clean round trip sets it afresh.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

import aiortc

logger = logging.getLogger(__name__)

RTO_MAX_S = 60.0  # aiortc's SCTP_RTO_MAX
_TESTED_AIORTC = ("1.10", "1.11", "1.12", "1.13", "1.14", "1.15", "1.16")
_MARK = "_vision_agents_rto_backoff"


def use_rto_backoff(pc: aiortc.RTCPeerConnection) -> bool:
    """Make ``pc``'s SCTP association (once it has one: after ``createDataChannel`` or a
    remote description with a data channel) back its timeout off; False if it has none or
    this aiortc keeps its timer elsewhere (then nothing is changed, and a warning says so)."""
    transport: Any = pc.sctp
    if transport is None:
        return False
    if getattr(transport, _MARK, False):
        return True
    expired = getattr(transport, "_t3_expired", None)
    if expired is None or not hasattr(transport, "_rto"):
        logger.warning(
            "aiortc %s keeps its SCTP timer elsewhere (written for %s): data channels keep "
            "aiortc's own retransmission timeout",
            version("aiortc"),
            ", ".join(_TESTED_AIORTC),
        )
        return False

    def backed_off() -> None:
        transport._rto = min(RTO_MAX_S, transport._rto * 2)
        expired()

    # aiortc arms the timer with loop.call_later(self._rto, self._t3_expired): looked up on
    # the instance, so this connection's association alone gets the rule.
    transport._t3_expired = backed_off
    setattr(transport, _MARK, True)
    return True


def unacknowledged_bytes(pc: aiortc.RTCPeerConnection) -> int:
    """Data channel bytes ``pc``'s SCTP association holds that the peer has not acknowledged:
    chunks not sent yet and chunks sent (or to be sent again) but not acknowledged. 0 when
    there is no association, or this aiortc keeps its queues elsewhere.

    A channel's ``bufferedAmount`` does not count them: aiortc hands the association a message
    as soon as the previous one has left, so on a slow path most of a backlog sits here."""
    transport: Any = pc.sctp
    if transport is None:
        return 0
    total = 0
    for name in ("_outbound_queue", "_sent_queue"):
        for chunk in getattr(transport, name, ()):
            total += len(getattr(chunk, "user_data", b""))
    return total
