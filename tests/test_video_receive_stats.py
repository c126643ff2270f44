"""What the call server receives of a participant's camera: the meter (a fake clock), the
per-track count of frames sent to the model, and ``VideoReceiveStatsEvent`` from a real call
(an aiortc participant) with the page's "video-stats" message beside it."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiortc
import av
import pytest

from tests.browser.python_peer import PythonPeer, SolidColourTrack
from tests.conftest import wait_until
from vision_agents.core import Agent, Participant, User
from vision_agents.core.agents.video_input import VideoInput
from vision_agents.core.edge.events import VideoReceiveStatsEvent
from vision_agents.testing import FakeRealtime

# -- the meter ---------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _meter(clock: FakeClock) -> Any:
    from vision_agents.plugins.webrtc.receive_stats import VideoReceiveMeter

    return VideoReceiveMeter(clock)


def _frames(
    meter: Any, clock: FakeClock, count: int, every_s: float, size: tuple[int, int] = (640, 480)
) -> None:
    for _ in range(count):
        clock.now += every_s
        meter.frame(*size)


def test_fps_kbps_and_size_over_an_interval() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    _frames(meter, clock, 20, 0.1)  # 2 s at 10 fps
    meter.add_bytes(50_000)  # 400 kbit in 2 s
    figures = meter.take()
    assert figures.interval_s == pytest.approx(2.0)
    assert figures.fps == pytest.approx(10.0)
    assert figures.kbps == pytest.approx(200.0)
    assert (figures.width, figures.height) == (640, 480)
    assert (figures.freezes, figures.frozen_s) == (0, 0.0)
    # The next interval counts only what came since.
    _frames(meter, clock, 5, 0.2, size=(320, 240))
    meter.add_bytes(1_250)
    figures = meter.take()
    assert figures.fps == pytest.approx(5.0)
    assert figures.kbps == pytest.approx(10.0)
    assert (figures.width, figures.height) == (320, 240)


def test_a_one_second_gap_is_one_freeze_of_one_second() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    _frames(meter, clock, 10, 0.1)
    clock.now += 1.0
    meter.frame(640, 480)
    _frames(meter, clock, 5, 0.1)
    figures = meter.take()
    assert figures.freezes == 1
    assert figures.frozen_s == pytest.approx(1.0)


def test_gaps_up_to_half_a_second_and_the_wait_for_the_first_frame_are_not_freezes() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    clock.now += 5.0  # connecting: no frame yet
    assert meter.take().freezes == 0
    meter.frame(640, 480)
    _frames(meter, clock, 4, 0.5)  # exactly the gap: not over it
    _frames(meter, clock, 2, 0.49)
    figures = meter.take()
    assert (figures.freezes, figures.frozen_s) == (0, 0.0)


def test_a_freeze_is_seen_while_it_lasts_and_counted_once() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    meter.frame(640, 480)
    clock.now += 0.3
    assert meter.take().freezes == 0  # not a freeze yet
    clock.now += 0.4  # 0.7 s without a frame
    during = meter.take()
    assert during.freezes == 1 and during.frozen_s == pytest.approx(0.7)
    assert during.fps == 0.0
    clock.now += 0.8
    meter.frame(640, 480)  # the freeze ends after 1.5 s
    clock.now += 0.1
    meter.frame(640, 480)
    after = meter.take()
    assert after.freezes == 1 and after.frozen_s == pytest.approx(1.5)
    clock.now += 0.6  # a second freeze
    meter.frame(640, 480)
    assert meter.take().freezes == 2


def test_a_camera_turned_off_is_not_frozen() -> None:
    clock = FakeClock()
    meter = _meter(clock)
    meter.frame(640, 480)
    clock.now += 0.1
    meter.set_muted(True)
    clock.now += 5.0  # off: no frames (or black ones now and then)
    meter.frame(640, 480)
    clock.now += 3.0
    muted = meter.take()
    assert muted.muted and muted.freezes == 0
    meter.set_muted(False)
    clock.now += 0.2
    meter.frame(640, 480)
    figures = meter.take()
    assert not figures.muted
    assert (figures.freezes, figures.frozen_s) == (0, 0.0)


@pytest.mark.parametrize("gap", [0, -1, math.nan, math.inf])
def test_the_freeze_gap_must_be_a_positive_number(gap: float) -> None:
    from vision_agents.plugins.webrtc.receive_stats import VideoReceiveMeter

    with pytest.raises(ValueError, match="freeze_gap_s"):
        VideoReceiveMeter(freeze_gap_s=gap)


@pytest.mark.parametrize("interval", [0, -2.0, math.nan, math.inf, True, "2"])
def test_the_edge_s_stats_interval_is_checked(interval: Any) -> None:
    from vision_agents.plugins.webrtc import WebRTCEdge

    with pytest.raises(ValueError, match=r"stats_interval_s must be a number of seconds above 0"):
        WebRTCEdge(stats_interval_s=interval)
    assert WebRTCEdge(stats_interval_s=None).stats_interval_s is None
    assert WebRTCEdge(stats_interval_s=1).stats_interval_s == 1.0


# -- frames to the model, per track ------------------------------------------------------------


class IdleCamera(aiortc.MediaStreamTrack):
    """A video track that never delivers a frame (the count under test is the model's)."""

    kind = "video"

    async def recv(self) -> av.VideoFrame:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_frames_sent_to_the_model_are_credited_to_the_track_it_watched() -> None:
    model = FakeRealtime()
    video = VideoInput(model, [])
    ann, bob = IdleCamera(), IdleCamera()
    try:
        assert video.model_frames(ann.id) is None  # not in the call
        await video.add_track(Participant(user_id="ann"), ann)
        model.frames_sent += 3
        assert video.model_frames(ann.id) == 3
        await video.add_track(Participant(user_id="bob"), bob)  # the newest camera is watched
        model.frames_sent += 2
        assert (video.model_frames(ann.id), video.model_frames(bob.id)) == (3, 2)
        await video.remove_track(bob.id)  # back to Ann
        model.frames_sent += 4
        assert (video.model_frames(ann.id), video.model_frames(bob.id)) == (7, None)
    finally:
        await video.close()
    assert VideoInput(None, []).model_frames(ann.id) is None  # no realtime model


# -- the event and the page's message, from a real call ----------------------------------------


@pytest.mark.timeout(60)
async def test_the_edge_reports_a_participant_s_camera_and_tells_their_page() -> None:
    from vision_agents.plugins.webrtc import WebRTCEdge

    edge = WebRTCEdge(stats_interval_s=0.5)
    model = FakeRealtime(fps=5)
    model.frame_policy = None  # every frame the fps lets through goes to the model
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    events: list[VideoReceiveStatsEvent] = []

    @edge.events.subscribe
    async def on_stats(event: VideoReceiveStatsEvent) -> None:
        events.append(event)

    call = await agent.create_call("default", "stats")
    async with agent.join(call):
        peer = await PythonPeer.join(
            edge.join_url(call, name="Ann"), video=SolidColourTrack((200, 40, 40), fps=10)
        )
        messages: list[dict[str, Any]] = []

        async def read_page_messages() -> None:
            while True:
                message = await peer.ws.receive_json()
                if message.get("type") == "video-stats":
                    messages.append(message)

        reader = asyncio.ensure_future(read_page_messages())
        try:

            def settled() -> bool:
                return any(
                    e.width == 320 and e.fps >= 3 and (e.model_frames or 0) >= 2 for e in events
                )

            await wait_until(settled, 30, "a report of Ann's 320x240 camera at the model")
            await wait_until(lambda: len(messages) >= 2, 10, "video-stats on Ann's socket")
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await peer.leave()

    event = next(e for e in events if e.width == 320 and e.fps >= 3)
    assert event.participant.name == "Ann"
    assert event.height == 240 and event.fps <= 15, event
    assert event.kbps is not None and event.kbps > 0, event
    assert event.estimate_bps is not None and event.estimate_falls is not None, event
    assert event.freezes >= 0 and not event.muted
    assert event.interval_s == pytest.approx(0.5, abs=0.4)
    assert {e.track_id for e in events} == {event.track_id}  # one camera, one track id
    page = messages[-1]
    assert page["width"] == 320 and page["height"] == 240, page
    assert set(page) >= {"fps", "kbps", "estimate_bps", "freezes", "frozen_s", "model_frames"}
