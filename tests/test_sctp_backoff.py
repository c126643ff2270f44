"""SCTP's retransmission timeout backs off on our data channels (RFC 9260 6.3.3, E2), on the
connection it is installed on only."""

from __future__ import annotations

import asyncio

import aiortc

from vision_agents.core.edge.sctp_backoff import RTO_MAX_S, use_rto_backoff


async def test_each_timeout_doubles_the_rto_on_that_connection_only() -> None:
    ours, theirs = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    try:
        assert use_rto_backoff(ours) is False  # no association yet: nothing to change
        ours.createDataChannel("events")
        theirs.createDataChannel("events")
        assert use_rto_backoff(ours) is True
        assert use_rto_backoff(ours) is True  # once only
        transport, stock = ours.sctp, theirs.sctp
        assert transport is not None and stock is not None
        transport._rto = stock._rto = 1.0
        for expected in (2.0, 4.0, 8.0):
            transport._t3_expired()
            stock._t3_expired()
            assert transport._rto == expected
            assert stock._rto == 1.0  # aiortc's own rule: never backs off
        transport._rto = 50.0
        transport._t3_expired()
        assert transport._rto == RTO_MAX_S
        await asyncio.sleep(0)  # let the resends they scheduled run (nothing to send)
    finally:
        await ours.close()
        await theirs.close()
