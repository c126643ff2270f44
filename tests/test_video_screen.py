"""Screen share without a browser: which track the model watches, how closely a shared screen
is looked at, and what the call server makes of a page's screen (a Python peer that joins the
way the page does). The browser test is tests/test_screen_share.py."""

from __future__ import annotations

import asyncio
from typing import Any

import aiortc
import cv2
import numpy as np
import pytest

from tests.browser.python_peer import PythonPeer, SolidColourTrack
from tests.conftest import wait_until
from tests.media_tracks import PictureTrack, SyntheticVideoTrack
from vision_agents.core import Agent, User
from vision_agents.core.agents.video_input import VideoInput
from vision_agents.core.edge.events import TrackAddedEvent, TrackRemovedEvent
from vision_agents.core.types import Participant
from vision_agents.core.utils.frame_selection import FrameSelector, SceneChange
from vision_agents.testing import FakeRealtime, InMemoryEdge


def text_page(height: int = 1400, width: int = 1280) -> np.ndarray:
    """A white page of 14 px-ish black text lines 20 px apart."""
    page = np.full((height, width, 3), 255, np.uint8)
    words = ["alpha", "vision", "agent", "model", "screen", "share", "text", "reads"]
    for row, y in enumerate(range(20, height, 20)):
        x, i = 10, row
        while x < width - 80:
            word = words[i % len(words)]
            cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
            x += len(word) * 9 + 8
            i += 3
    return page


@pytest.mark.parametrize("scroll_px", [2, 7, 10])
def test_scrolling_a_shared_screen_is_a_change_a_camera_view_misses(scroll_px: int) -> None:
    """On a page of text, a scroll of less than a line: the shared screen's closer look sees
    it; the camera's 64x36 look averages whole lines away and does not."""
    page = text_page()
    before, after = page[:720], page[scroll_px : scroll_px + 720]
    for detail, expected in ((True, True), (False, False)):
        selector = FrameSelector(SceneChange(max_interval=None))
        selector.detail = detail
        assert selector.offer(before)  # the first frame always goes
        assert selector.offer(before) is False  # the same picture again: no
        assert selector.offer(after) is expected, (detail, scroll_px)


def test_a_still_shared_screen_sends_nothing_new() -> None:
    page = text_page()[:720]
    noisy = cv2.imdecode(
        cv2.imencode(".jpg", page, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], cv2.IMREAD_COLOR
    )
    assert noisy is not None
    selector = FrameSelector(SceneChange(max_interval=None))
    selector.detail = True
    assert selector.offer(page)
    assert selector.offer(noisy) is False  # coding noise is not a change


async def join_routed(
    agent: Agent, edge: InMemoryEdge, name: str, camera: aiortc.MediaStreamTrack
) -> None:
    """``name`` joins with ``camera``; returns once the agent has routed it (the agent sends a
    track's event on after handling it), so what the model watches then is its decision."""
    routed = asyncio.Event()

    async def on_track(event: TrackAddedEvent) -> None:
        if event.track is camera:
            routed.set()

    agent.events.subscribe(on_track)
    try:
        await edge.add_participant(name, tracks=[camera])
        await asyncio.wait_for(routed.wait(), 5)
    finally:
        agent.events.unsubscribe(on_track)


async def _watched(agent: Agent, track_id: str) -> None:
    await wait_until(
        lambda: agent.video_input.watched_track_id == track_id, 5, f"the model on {track_id}"
    )


@pytest.mark.timeout(30)
async def test_the_model_watches_a_shared_screen_while_it_is_shared() -> None:
    edge = InMemoryEdge()
    model = FakeRealtime(fps=10)
    agent = Agent(edge=edge, llm=model)
    ann_camera = SyntheticVideoTrack(fps=10)
    bob_camera = SyntheticVideoTrack(fps=10)
    screen = SyntheticVideoTrack(fps=10, width=1280, height=720)
    call = await agent.create_call()
    async with agent.join(call):
        ann = await edge.add_participant("ann", tracks=[ann_camera])
        await _watched(agent, ann_camera.id)
        await edge.share_screen(ann, screen)
        await _watched(agent, screen.id)
        # The first frame of the screen goes at once, whatever the frame policy says.
        await wait_until(
            lambda: any(f.width == 1280 for f in model.frames), 5, "a screen frame at the model"
        )
        # Someone joining with a camera does not take the model off the shared screen.
        await join_routed(agent, edge, "bob", bob_camera)
        assert agent.video_input.watched_track_id == screen.id
        await edge.stop_screen_share(ann)
        await _watched(agent, bob_camera.id)  # the newest camera again


@pytest.mark.timeout(30)
async def test_prefer_screen_share_off_keeps_to_the_newest_track() -> None:
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=FakeRealtime(fps=10), prefer_screen_share=False)
    ann_camera, screen = SyntheticVideoTrack(fps=10), SyntheticVideoTrack(fps=10)
    bob_camera = SyntheticVideoTrack(fps=10)
    call = await agent.create_call()
    async with agent.join(call):
        ann = await edge.add_participant("ann", tracks=[ann_camera])
        await edge.share_screen(ann, screen)
        await _watched(agent, screen.id)
        await edge.add_participant("bob", tracks=[bob_camera])
        await _watched(agent, bob_camera.id)


@pytest.mark.timeout(60)
async def test_a_page_s_screen_reaches_the_agent_only_while_shared() -> None:
    """A peer that joins the way the page does, its screen sender already sending: the agent
    gets the screen as Ann's own track only once she says she shares it, the model watches it,
    a 5K screen is asked to be scaled down to what the model needs, and stopping removes it."""
    from vision_agents.plugins.webrtc import WebRTCEdge

    edge = WebRTCEdge()
    model = FakeRealtime(fps=5, max_image_side=1024)
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    events: list[Any] = []

    @edge.events.subscribe
    async def record(event: TrackAddedEvent | TrackRemovedEvent) -> None:
        events.append(event)

    def added(source: str) -> list[TrackAddedEvent]:
        return [e for e in events if isinstance(e, TrackAddedEvent) and e.source == source]

    call = await agent.create_call("default", "screen")
    async with agent.join(call):
        peer = await PythonPeer.join(
            edge.join_url(call, name="Ann"),
            video=SolidColourTrack((200, 40, 40), fps=10),
            screen=SolidColourTrack((40, 40, 200), fps=10, size=(640, 360)),
        )
        messages: list[dict[str, Any]] = []

        async def read_page_messages() -> None:
            while True:
                messages.append(await peer.ws.receive_json())

        reader = asyncio.ensure_future(read_page_messages())
        try:
            await wait_until(lambda: len(added("camera")) == 1, 10, "Ann's camera at the agent")
            await wait_until(lambda: len(model.frames) >= 1, 20, "a camera frame at the model")
            assert added("screen") == []  # sending, but not shared yet
            await peer.share_screen((5120, 2880))
            await wait_until(lambda: len(added("screen")) == 1, 10, "Ann's screen at the agent")
            screen = added("screen")[0]
            assert screen.participant == added("camera")[0].participant
            await wait_until(
                lambda: any(f.width == 640 for f in model.frames), 20, "the screen at the model"
            )
            assert agent.video_input.watched_track_id == screen.track.id
            limits = [m for m in messages if m.get("type") == "video-limit"]
            screen_limits = [m for m in limits if m.get("track") == "screen"]
            # Only the agent watches: 5120 px wide scaled by 5 to 1024, the model's side.
            assert screen_limits and screen_limits[-1]["scale_down_by"] == 5.0, limits
            roster = [m for m in messages if m.get("type") == "members"][-1]["members"]
            assert next(m for m in roster if m["name"] == "Ann")["sharing"] is True
            await peer.share_screen(None)
            await wait_until(
                lambda: any(
                    isinstance(e, TrackRemovedEvent) and e.track_id == screen.track.id
                    for e in events
                ),
                10,
                "the screen track removed",
            )
            await wait_until(
                lambda: agent.video_input.watched_track_id == added("camera")[0].track.id,
                5,
                "the model back on Ann's camera",
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await peer.leave()


@pytest.mark.timeout(60)
async def test_a_screen_the_offer_did_not_name_is_refused_clearly() -> None:
    from vision_agents.plugins.webrtc import WebRTCEdge

    edge = WebRTCEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=FakeRealtime())
    call = await agent.create_call("default", "screen")
    async with agent.join(call):
        # A page without a screen sender that says it shares one: told why, still in the call.
        peer = await PythonPeer.join(edge.join_url(call, name="Ann"))
        try:
            await peer.share_screen((1280, 720))
            while True:
                message = await peer.ws.receive_json(timeout=5)
                if message.get("type") == "error":
                    break
            assert "did not offer a screen track" in message["error"], message
            assert [p.name for p in edge.participants] == ["Ann"]
        finally:
            await peer.leave()
        # An offer naming a screen m-line it does not have: refused before any WebRTC work.
        url = edge.join_url(call, name="Bob")
        with pytest.raises(RuntimeError, match="screen_mid 'nine' names no sendonly video"):
            await _join_with_screen_mid(url, "nine")


async def _join_with_screen_mid(url: str, mid: str) -> None:
    import aiohttp
    import aiortc

    base, _, token = url.partition("#token=")
    origin, _, call_id = base.rpartition("/call/")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{origin}/api/check", json={"call": call_id, "token": token}) as r:
            slots = int((await r.json())["slots"])
        pc = aiortc.RTCPeerConnection()
        try:
            for _ in range(slots):
                pc.addTransceiver("audio", direction="recvonly")
                pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            ws = await session.ws_connect(f"{origin}/api/ws?call={call_id}&token={token}")
            offer = {"type": "offer", "sdp": pc.localDescription.sdp, "screen_mid": mid}
            await ws.send_json(offer)
            reply = await ws.receive_json(timeout=10)
            await ws.close()
        finally:
            await pc.close()
    if reply.get("type") == "error":
        raise RuntimeError(reply["error"])


@pytest.mark.timeout(30)
async def test_a_camera_of_unusable_frames_is_passed_over_while_another_has_usable_ones() -> None:
    """Ann's camera sends 4x4 frames (refused before any consumer): the model watches Bob's,
    older camera instead of a track that gives it nothing, and Ann's again once her frames
    are of a usable size (looked at again every ``recheck_s``)."""
    edge = InMemoryEdge()
    model = FakeRealtime(fps=10)
    agent = Agent(edge=edge, llm=model)
    agent.video_input.recheck_s = 1.0
    bob_camera = SyntheticVideoTrack(fps=10)
    ann_camera = PictureTrack(np.zeros((4, 4, 3), np.uint8), fps=10)
    call = await agent.create_call()
    async with agent.join(call):
        await edge.add_participant("bob", tracks=[bob_camera])
        await _watched(agent, bob_camera.id)
        await join_routed(agent, edge, "ann", ann_camera)
        await _watched(agent, bob_camera.id)
        ann_camera.picture = np.full((240, 320, 3), 128, np.uint8)
        await _watched(agent, ann_camera.id)
        await wait_until(
            lambda: any(f.width == 320 for f in model.frames), 5, "Ann's frames at the model"
        )


@pytest.mark.timeout(30)
async def test_a_track_that_ended_before_its_removal_is_never_watched() -> None:
    """Bob's camera ended (he left) but its removal is not handled yet when Ann's watched
    camera goes: the model watches nothing rather than Bob's ended track (which raised from
    ``remove_track`` and left the model half-watching it, so closing raised too)."""
    model = FakeRealtime(fps=10)
    await model.connect()
    video = VideoInput(model, [])
    ann, bob = SyntheticVideoTrack(fps=10), SyntheticVideoTrack(fps=10)
    await video.add_track(Participant(user_id="bob", name="Bob"), bob)
    await video.add_track(Participant(user_id="ann", name="Ann"), ann)
    assert video.watched_track_id == ann.id
    bob.stop()
    await video.remove_track(ann.id)
    assert video.watched_track_id is None
    await video.close()
    await model.close()
