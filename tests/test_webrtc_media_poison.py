"""One participant's odd-sized video (641x479) cannot poison a call: every other participant's
video keeps flowing to receivers that negotiated H.264 and to those that negotiated VP8, and
whoever takes the odd sender's seat next is seen too. Real aiortc peers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest

from tests.browser.python_peer import SolidColourTrack
from tests.browser.waiting import eventually
from tests.hardening_kit import Peer
from vision_agents.core.utils.video import even_yuv420p
from vision_agents.plugins.webrtc import CallServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def server() -> AsyncIterator[CallServer]:
    srv = CallServer(max_participants=3)
    srv.room("c1")
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def test_even_yuv420p_normalises_only_what_needs_it() -> None:
    odd = av.VideoFrame.from_ndarray(np.zeros((479, 641, 3), np.uint8), format="rgb24")
    odd.pts = 1234
    fixed = even_yuv420p(odd)
    assert (fixed.width, fixed.height, fixed.format.name) == (640, 478, "yuv420p")
    assert fixed.pts == 1234
    fine = av.VideoFrame(320, 240, "yuv420p")
    assert even_yuv420p(fine) is fine
    tiny = even_yuv420p(av.VideoFrame.from_ndarray(np.zeros((1, 1, 3), np.uint8), "rgb24"))
    assert (tiny.width, tiny.height) == (2, 2)


async def test_odd_sized_video_leaves_everyone_elses_video_flowing(server: CallServer) -> None:
    join = server.join_url
    odd = await Peer.join(
        join("c1", name="Odd"), video=SolidColourTrack((200, 0, 0), 10, (641, 479))
    )
    h264 = await Peer.join(
        join("c1", name="H"),
        video=SolidColourTrack((0, 200, 0), 10, (160, 120)),
        receive_codec="video/H264",
    )
    vp8 = await Peer.join(
        join("c1", name="V"),
        video=SolidColourTrack((0, 0, 200), 10, (160, 120)),
        receive_codec="video/VP8",
    )
    peers = [odd, h264, vp8]
    try:
        # Every receiver decodes every other sender, the odd one included.
        for receiver in (h264, vp8):
            for sender in peers:
                if sender is receiver:
                    continue
                await eventually(
                    lambda r=receiver, s=sender: r.frames[s.seat] >= 10,
                    20,
                    f"seat {receiver.seat} to decode 10 frames from seat {sender.seat}",
                )
        assert h264.sizes[odd.seat][0] % 2 == 0 and h264.sizes[odd.seat][1] % 2 == 0

        # The odd sender leaves; the next one in its seat is seen by both receivers.
        seat = odd.seat
        await odd.leave()
        peers.remove(odd)
        await eventually(lambda: len(server.rooms["c1"].members) == 2, 5, "the odd one to go")
        before = {p.seat: p.frames[seat] for p in (h264, vp8)}
        nxt = await Peer.join(
            join("c1", name="Next"), video=SolidColourTrack((90, 90, 90), 10, (160, 120))
        )
        peers.append(nxt)
        assert nxt.seat == seat
        for receiver in (h264, vp8):
            await eventually(
                lambda r=receiver: r.frames[seat] >= before[r.seat] + 10,
                20,
                f"seat {receiver.seat} to see the next participant in seat {seat}",
            )
        # ... and still each other.
        mark = h264.frames[vp8.seat], vp8.frames[h264.seat]
        await asyncio.sleep(1.0)
        assert h264.frames[vp8.seat] > mark[0] and vp8.frames[h264.seat] > mark[1]
    finally:
        for peer in peers:
            await peer.leave()
