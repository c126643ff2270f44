"""Video on a slow uplink: frames are skipped rather than queued, so the model sees the present.

The module runs in a network namespace with only loopback, throttled with a token bucket
(``tc qdisc ... tbf``) to less than the frames need: the OpenAI plugin over WebRTC (its data
channel queues whatever it is given) must not build a backlog of stale frames.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import cv2
import openai
import pytest

from tests.browser.netns import LoopbackOnlyNamespace
from tests.browser.waiting import eventually
from tests.media_tracks import SyntheticVideoTrack, room
from vision_agents.core.llm.protocol_realtime import MAX_FRAMES_IN_FLIGHT
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import OpenAIRealtimeServer
from vision_agents.testing.openai_webrtc import allow_loopback_ice

pytestmark = pytest.mark.timeout(90)

RATE_KBIT = 160  # ~20 kB/s: about one of the test's 13.7 kB frames a second, 5 fps asked for
# The bucket's queue (tbf "latency") holds more than the gate lets through, so the link is
# slow but never drops. Loopback carries both directions through this one queue, so the
# round trip grows to seconds while frames wait in it. Two causes of this test's past
# failures under load, both fixed: aiortc's SCTP never backed its retransmission timeout off
# (``use_rto_backoff``: an RTO of 1 s against a 1.7 s round trip fired every 1.7 s for 45 s),
# and the frames were uninitialised (8 kB JPEGs alone, 85 kB in a full run: the last one
# arrived 33-42 s after the feed stopped, once over 60 s; now 2-2.3 s).
QUEUE_S = 20


@pytest.fixture(scope="module")
def slow_loopback() -> Iterator[None]:
    ns = LoopbackOnlyNamespace()
    if not ns.enter():
        pytest.fail("this test needs a network namespace (run as root, as CI does)")
    allow_loopback_ice()  # the namespace has no other address for the client's candidates
    try:
        subprocess.run(
            [
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "tbf",
                "rate",
                f"{RATE_KBIT}kbit",
                "burst",
                "16kb",
                "latency",
                f"{QUEUE_S}s",
            ],
            check=True,
            capture_output=True,
        )
        yield
    finally:
        ns.exit()


@pytest.fixture
async def server(slow_loopback: None) -> AsyncIterator[OpenAIRealtimeServer]:
    async with OpenAIRealtimeServer() as s:
        yield s


def _images(conn: object) -> int:
    return sum(e["type"] == "conversation.item.create" for e in conn.received)  # type: ignore[attr-defined]


async def test_a_slow_uplink_skips_frames_instead_of_queueing_them(
    server: OpenAIRealtimeServer,
) -> None:
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    llm = openai_plugin.Realtime(
        client=client,
        transport="webrtc",
        fps=5,
        max_image_side=640,
        retry=RetryPolicy(initial_delay=0.01),
    )
    llm.frame_policy = None  # fixed rate: every frame fps offers is meant for the model
    # A smooth picture: its 640 px JPEG is 13.7 kB, about a second of the link each.
    picture = cv2.resize(room(7, 320, 180), (1280, 720))
    track = SyntheticVideoTrack(fps=30, width=1280, height=720, picture=picture)
    await llm.connect()
    try:
        started = time.monotonic()
        await llm.watch_video_track(track)
        await eventually(lambda: llm.frames_sent + llm.frames_skipped >= 30, 30, "30 frames")
        await llm.stop_watching_video_track()
        stopped = time.monotonic()
        conn = server.connections[0]
        queued = llm.frames_sent - _images(conn)  # sent, not yet at the server
        offered = llm.frames_sent + llm.frames_skipped
        print(
            f"{offered} frames in {stopped - started:.1f} s: {llm.frames_sent} sent, "
            f"{llm.frames_skipped} skipped, {queued} still on the way when the feed stopped"
        )
        # The uplink carries about a frame a second: most of the 5 fps must have been skipped,
        # and at most the unconfirmed frames (plus one waiting in the data channel) are queued
        # ahead of the newest: a queue of every frame offered would hold ~25 here.
        assert llm.frames_skipped >= offered / 2, (llm.frames_sent, llm.frames_skipped)
        assert queued <= MAX_FRAMES_IN_FLIGHT + 1, f"{queued} frames queued on the link"
        # Nothing that was sent is lost, and it arrives once the link has carried it.
        try:
            await eventually(lambda: _images(conn) == llm.frames_sent, 60, "every sent frame")
        except AssertionError as exc:
            pc = conn.pc  # type: ignore[attr-defined]
            raise AssertionError(
                f"{exc}: {_images(conn)} of {llm.frames_sent} arrived; {len(server.connections)} "
                f"connection(s), the first {pc.connectionState} (ICE {pc.iceConnectionState}), "
                f"SCTP RTO {getattr(pc.sctp, '_rto', None)} s"
            ) from None
        print(f"the last frame reached the server {time.monotonic() - stopped:.2f} s after")
    finally:
        await llm.close()
