"""Frames to the model only when the scene changed: the selector, and a model that uses it."""

from __future__ import annotations

import asyncio

import av
import cv2
import numpy as np
import pytest

from tests.browser.waiting import eventually
from tests.media_tracks import PictureTrack, room
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.utils.frame_selection import (
    FrameSelector,
    SceneChange,
    changed_share,
    thumbnail,
)
from vision_agents.testing import FakeRealtime


def noisy(image: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(image + rng.normal(0, sigma, image.shape), 0, 255).astype(np.uint8)


def yuv(image: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_without_a_policy_every_frame_is_sent() -> None:
    selector = FrameSelector(None)
    frame = yuv(room())
    assert all(selector.offer(frame) for _ in range(5))
    assert (selector.offered, selector.sent) == (5, 5)


def test_camera_noise_is_not_a_change_but_a_person_walking_in_is() -> None:
    clock, rng = Clock(), np.random.default_rng(1)
    selector = FrameSelector(SceneChange(max_interval=None), clock=clock)
    still = room()
    assert selector.offer(yuv(noisy(still, rng)))  # the first frame always goes
    for _ in range(20):
        clock.now += 1
        assert not selector.offer(yuv(noisy(still, rng)))
    entered = still.copy()
    cv2.ellipse(entered, (200, 200), (45, 120), 0, 0, 360, (60, 40, 30), -1)
    clock.now += 1
    assert selector.offer(yuv(noisy(entered, rng)))
    assert (selector.sent, selector.for_change, selector.on_request) == (2, 1, 1)
    # Compared with the last frame sent: the person staying put is no further change.
    clock.now += 1
    assert not selector.offer(yuv(noisy(entered, rng)))


def test_one_added_line_of_text_on_a_slide_is_a_change() -> None:
    slide = np.full((360, 640, 3), 245, np.uint8)
    for i, line in enumerate(["Customers", "340 new accounts", "Churn 2.1%"]):
        cv2.putText(slide, line, (40, 70 + i * 60), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20,) * 3, 2)
    more = slide.copy()
    cv2.putText(more, "NPS 61", (40, 250), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20,) * 3, 2)
    selector = FrameSelector(SceneChange(max_interval=None))
    assert selector.offer(yuv(slide))
    assert not selector.offer(yuv(slide))
    assert selector.offer(yuv(more))


def test_a_still_scene_is_sent_every_max_interval_and_on_request() -> None:
    clock = Clock()
    selector = FrameSelector(SceneChange(max_interval=10.0), clock=clock)
    frame = yuv(room())
    sent_at, reasons = [], []
    for second in range(31):
        clock.now = float(second)
        if second == 14:
            selector.request_fresh()  # the user started speaking
        if selector.offer(frame):
            sent_at.append(second)
            reasons.append(selector.last_reason)
    assert sent_at == [0, 10, 14, 24]
    assert reasons == ["request", "interval", "request", "interval"]
    assert (selector.for_interval, selector.on_request) == (2, 2)


def test_the_thumbnail_reads_padded_luma_planes_like_a_conversion_would() -> None:
    image = room(2, width=650, height=366)  # odd sizes: planes carry padding
    fast = thumbnail(yuv(image))
    slow = thumbnail(av.VideoFrame.from_ndarray(image, format="rgb24"))  # converted
    array = thumbnail(image)
    assert fast.shape == slow.shape == array.shape == (36, 64)
    assert changed_share(fast, slow, 16) < 0.01
    assert changed_share(fast, array, 16) < 0.01


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"changed_share": 0}, "changed_share"),
        ({"changed_share": 1.5}, "changed_share"),
        ({"pixel_delta": 0}, "pixel_delta"),
        ({"pixel_delta": 2.5}, "pixel_delta"),
        ({"max_interval": -1}, "max_interval"),
        ({"max_interval": float("nan")}, "max_interval"),
    ],
)
def test_bad_settings_are_refused_naming_the_value(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        SceneChange(**kwargs)  # type: ignore[arg-type]


async def test_a_model_with_scene_change_gets_a_still_scene_once_and_each_change() -> None:
    model = FakeRealtime(fps=5)
    model.frame_policy = SceneChange(max_interval=None)
    track = PictureTrack(room(3))
    await model.connect()
    try:
        await model.watch_video_track(track)
        await eventually(lambda: model.frames_unchanged >= 10, 10, "still frames offered")
        assert model.frames_sent == 1 and len(model.frames) == 1
        track.picture = room(4)  # another scene
        await eventually(lambda: model.frames_sent == 2, 5, "the change sent")
        model.request_fresh_frame()
        await eventually(lambda: model.frames_sent == 3, 5, "a fresh frame on request")
        await asyncio.sleep(0.5)  # nothing else changes: nothing else is sent
        assert model.frames_sent == 3
    finally:
        await model.stop_watching_video_track()
        await model.close()
        track.stop()


def test_a_frame_policy_must_be_a_scene_change() -> None:
    model = FakeRealtime()
    with pytest.raises(ConfigurationError, match="frame_policy"):
        model.frame_policy = 0.5  # type: ignore[assignment]


async def test_the_user_starting_to_speak_sends_a_fresh_frame_through_the_openai_sdk() -> None:
    """Server VAD's speech start (the local OpenAI server, the real SDK) sends the next frame
    even though the scene did not change."""
    import openai

    from vision_agents.plugins import openai as openai_plugin
    from vision_agents.testing import OpenAIRealtimeServer

    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client, fps=5, max_image_side=320)
        llm.frame_policy = SceneChange(max_interval=None)
        track = PictureTrack(room(5))
        await llm.connect()
        try:
            await llm.watch_video_track(track)
            await eventually(lambda: llm.frames_unchanged >= 5, 10, "still frames offered")
            assert llm.frames_sent == 1
            await server.speech_started()
            await eventually(lambda: llm.frames_sent == 2, 5, "a fresh frame on speech start")
            await server.wait_for(lambda: len(server.received_of("conversation.item.create")) == 2)
        finally:
            await llm.stop_watching_video_track()
            await llm.close()
            track.stop()


async def test_a_new_participant_s_first_frame_goes_even_if_it_looks_like_the_last() -> None:
    """Bob joins with a picture much like Ann's (the same room), 50 times: each time the
    model watches him and gets his first frame at once (with the frame policy alone it waited
    up to ``max_interval``: 13 of 50 joins saw no frame in 6 s)."""
    from vision_agents.core import Agent
    from vision_agents.testing import InMemoryEdge

    edge = InMemoryEdge()
    model = FakeRealtime(fps=5)
    model.frame_policy = SceneChange(max_interval=None)
    agent = Agent(edge=edge, llm=model)
    ann = PictureTrack(room(6))
    call = await agent.create_call()
    async with agent.join(call):
        await edge.add_participant("ann", tracks=[ann])
        await eventually(lambda: model.frames_unchanged >= 5, 10, "Ann's still frames offered")
        assert model.frames_sent == 1
        # Bob's camera shows the same room at another size: the frame policy's thumbnail
        # sees the same picture; the size tells his frames at the model from Ann's.
        seen = room(6)
        bobs = cv2.resize(seen, (seen.shape[1] // 2 * 2 + 32, seen.shape[0] // 2 * 2 + 18))
        for cycle in range(50):  # Bob joins and leaves, 50 times
            bob = PictureTrack(bobs)
            had = len(model.frames)
            who = await edge.add_participant(f"bob{cycle}", tracks=[bob])
            await eventually(
                lambda had=had: any(f.width == bobs.shape[1] for f in model.frames[had:]),
                2,
                f"Bob's first frame at the model, cycle {cycle}",
            )
            await edge.remove_participant(who)
