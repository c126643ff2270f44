"""ICE consent on a busy machine: a peer that keeps sending media while its answers to
consent checks are lost stays in the call; one that goes silent is still dropped.

Two aiortc peers on loopback. The far one stops answering STUN requests (what Chromium did
beside CPU burners) but keeps sending audio. The intervals are scaled down (the real ones: a
check every ~5 s, consent gone after 30 s) so the test takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aioice.ice
import aiortc
import pytest

from tests.conftest import wait_until
from vision_agents.plugins.webrtc import consent

pytestmark = pytest.mark.timeout(60)


def _ice(pc: aiortc.RTCPeerConnection) -> Any:
    transport = pc.getTransceivers()[0].sender.transport
    return transport.transport._connection  # the aioice Connection under aiortc


async def _pair(track: aiortc.MediaStreamTrack) -> tuple[aiortc.RTCPeerConnection, ...]:
    near, far = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    far.addTrack(track)
    near.addTransceiver("audio", direction="recvonly")
    await near.setLocalDescription(await near.createOffer())
    await far.setRemoteDescription(near.localDescription)
    await far.setLocalDescription(await far.createAnswer())
    await near.setRemoteDescription(far.localDescription)
    await wait_until(lambda: near.connectionState == "connected", 20, "the peers to connect")
    return near, far


def _blackhole(pc: aiortc.RTCPeerConnection) -> None:
    """Nothing ``pc`` sends arrives any more (a peer that went away, a dead path)."""
    for protocol in _ice(pc)._protocols:
        protocol.transport.sendto = lambda *args, **kwargs: None


def _stop_answering(pc: aiortc.RTCPeerConnection) -> None:
    connection = _ice(pc)
    answer = connection.request_received

    def ignore(message: Any, addr: Any, protocol: Any, *rest: Any) -> None:
        if message.message_method != aioice.stun.Method.BINDING:
            answer(message, addr, protocol, *rest)

    connection.request_received = ignore


@pytest.fixture
async def fast_checks(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.3)  # aioice's loop: 6 misses = ~2 s
    monkeypatch.setattr(consent, "CONSENT_INTERVAL_S", 0.3)
    monkeypatch.setattr(consent, "CONSENT_TIMEOUT_S", 2.0)
    monkeypatch.setattr(consent, "CHECK_RETRANSMISSIONS", 0)
    yield


async def test_aioice_alone_drops_a_peer_that_sends_media_but_answers_no_checks(
    fast_checks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aioice.ice.Connection, "query_consent", consent.aioice_query_consent)
    near, far = await _pair(aiortc.AudioStreamTrack())
    try:
        _stop_answering(far)
        await wait_until(lambda: near.connectionState == "closed", 10, "aioice to drop the call")
    finally:
        await near.close()
        await far.close()


async def test_a_peer_sending_media_stays_and_a_silent_one_is_dropped(
    fast_checks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consent, "_installed", False)
    monkeypatch.setattr(aioice.ice.Connection, "query_consent", aioice.ice.Connection.query_consent)
    monkeypatch.setattr(aioice.ice.Connection, "data_received", aioice.ice.Connection.data_received)
    consent.install_tolerant_consent()
    near, far = await _pair(aiortc.AudioStreamTrack())
    try:
        _stop_answering(far)
        await asyncio.sleep(4.0)  # twice the (scaled) consent timeout: still in the call
        assert near.connectionState == "connected", "a peer still sending was dropped"
        gone_at = time.monotonic()
        _blackhole(far)  # now nothing of it arrives
        await wait_until(lambda: near.connectionState == "closed", 10, "the silent peer dropped")
        assert time.monotonic() - gone_at >= 2.0, "dropped before the consent timeout"
    finally:
        await near.close()
        await far.close()
