"""The whole Agent over the in-memory edge: real media in, the model double in the middle."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import wait_until
from vision_agents.core import Agent, PcmData, User
from vision_agents.core.edge import Call, ParticipantLeftEvent
from vision_agents.core.processors import VideoProcessor
from vision_agents.core.types import Participant
from vision_agents.testing import (
    FakeRealtime,
    InMemoryEdge,
    read_frame_index,
    tone,
)

CLIP_SECONDS = 3.0


def best_lag_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two mono signals."""
    a = (a - a.mean()) / (a.std() * len(a))
    b = (b - b.mean()) / b.std()
    n = len(a) + len(b)
    spec = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    return float(np.abs(np.fft.irfft(spec, n)).max() * len(a) / min(len(a), len(b)))


class CountingProcessor(VideoProcessor):
    name = "counter"
    fps = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[int] = []
        self.left: list[Participant] = []

    async def process_video(self, frame: av.VideoFrame, participant: Participant) -> None:
        self.frames.append(read_frame_index(frame))

    async def on_participant_left(self, participant: Participant) -> None:
        self.left.append(participant)


async def test_agent_hears_sees_and_speaks_and_leaves_nothing_running(
    clip: Path, speech: PcmData
) -> None:
    threads_before = set(threading.enumerate())
    model = FakeRealtime(fps=5)
    model.frame_policy = None  # fixed rate: every frame fps offers (the clip hardly changes)
    counter = CountingProcessor()
    edge = InMemoryEdge()
    agent = Agent(
        edge=edge,
        agent_user=User(name="tester"),
        instructions="Be brief.",
        llm=model,
        processors=[counter],
    )
    call = await agent.create_call("default", "call-1")
    async with agent.join(call):
        assert model.is_connected and model.instructions == "Be brief."
        await edge.add_participant("alice", clip)
        seconds = max(CLIP_SECONDS, speech.duration)  # the clip lasts as long as its speech
        # It plays in real time: wait for all of its sound and its last frames.
        await wait_until(
            lambda: (
                model.audio_received >= speech.duration - 0.05
                and bool(model.latest_frames)
                and read_frame_index(model.latest_frames[-1]) >= 30 * seconds - 10
            ),
            seconds + 10,
            "the whole clip at the model",
        )

        # video: the model got frames at its fps, newest first, in order
        got = len(model.frames)
        assert 0.9 * 5 * seconds <= got <= 1.1 * 5 * seconds + 1, (got, seconds)
        indices = [read_frame_index(f) for f in model.latest_frames]
        assert indices == sorted(indices) and indices[-1] >= 30 * seconds - 10
        # the processor ran at its own fps from the same forwarder
        assert 0.9 * 10 * seconds <= len(counter.frames) <= 1.1 * 10 * seconds + 1

        # audio: all of it arrived, and it is the speech that was played
        assert model.audio_received == pytest.approx(speech.duration, abs=0.05)
        heard = PcmData(
            np.concatenate([c.samples for c in model.audio_chunks], axis=1), 48000, 2
        ).resample(speech.sample_rate, 1)
        assert (
            best_lag_correlation(heard.to_float32().samples[0], speech.to_float32().samples[0])
            > 0.95
        )

        # the model speaks: its audio reaches the published track
        reply = tone(1000, 0.5, sample_rate=24000)
        model.respond("a beep", reply)

        def loud_seconds() -> float:
            # a 0.5-amplitude sine is above 0.1 for 1 - 2/pi*asin(0.2) of the time
            samples = edge.published.audio.to_float32().samples[0]
            return float((np.abs(samples) > 0.1).sum() / 48000 / (1 - 2 / np.pi * np.arcsin(0.2)))

        await wait_until(lambda: loud_seconds() >= 0.47, 5, "the reply on the published track")
        published = edge.published.audio.to_float32().samples[0]
        spectrum = np.abs(np.fft.rfft(published))
        freqs = np.fft.rfftfreq(len(published), 1 / 48000)
        assert abs(freqs[spectrum.argmax()] - 1000) < 5
        assert loud_seconds() == pytest.approx(0.5, abs=0.03)

    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert tasks == [], f"tasks left running: {tasks}"
    leaked = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert leaked == [], f"threads left running: {leaked}"
    assert not model.is_connected


async def test_participant_leaving_stops_their_frames_at_once(clip: Path) -> None:
    model = FakeRealtime(fps=10)
    counter = CountingProcessor()
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=model, processors=[counter])
    left = asyncio.Event()

    @agent.events.subscribe
    async def on_left(event: ParticipantLeftEvent) -> None:
        left.set()

    async with agent.join(await agent.create_call()):
        alice = await edge.add_participant("alice", clip)
        await wait_until(lambda: len(model.frames) > 3, 10, "frames at the model")
        await edge.remove_participant(alice)
        await asyncio.wait_for(left.wait(), 2)
        frames, processed = len(model.frames), len(counter.frames)
        await asyncio.sleep(0.5)
        assert len(model.frames) == frames and len(counter.frames) == processed
        assert counter.left == [alice]


async def test_model_watches_the_newest_camera_and_falls_back(clip: Path, tmp_path: Path) -> None:
    model = FakeRealtime(fps=10)
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=model)
    async with agent.join(await agent.create_call()):
        await edge.add_participant("alice", clip, loop=True)
        await wait_until(lambda: len(model.frames) > 0, 10, "alice's frames at the model")
        first = agent._video_in.watched_track_id
        assert first is not None
        bob = await edge.add_participant("bob", clip, loop=True)
        await wait_until(
            lambda: agent._video_in.watched_track_id not in (None, first), 10, "bob watched"
        )
        await edge.remove_participant(bob)
        await wait_until(
            lambda: agent._video_in.watched_track_id == first, 10, "back to alice's camera"
        )
        before = len(model.frames)
        await wait_until(lambda: len(model.frames) > before + 2, 10, "frames after bob left")


async def test_finish_returns_when_the_call_ends() -> None:
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=FakeRealtime())
    async with agent.join(await agent.create_call()):
        waiter = asyncio.create_task(agent.finish())
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await edge.end_call()
        await asyncio.wait_for(waiter, 2)


async def test_interrupted_reply_is_dropped_from_the_published_track() -> None:
    model = FakeRealtime()
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=model)
    async with agent.join(await agent.create_call()):
        for chunk in tone(1000, 5.0, sample_rate=24000).chunks(20):
            model._emit_audio_output_event(chunk, response_id="r1")
        await model.events.wait(timeout=5)
        await wait_until(lambda: agent.audio_track.buffered_ms > 3000, 5, "the reply queued")
        model._emit_audio_output_done_event(response_id="r1", interrupted=True)
        await model.events.wait(timeout=5)
        assert agent.audio_track.buffered_ms == 0


def test_agent_without_llm_is_refused() -> None:
    with pytest.raises(ValueError, match="llm"):
        Agent(edge=InMemoryEdge())


class FailingEdge(InMemoryEdge):
    async def join(self, call: Call, user: User) -> Participant:
        raise ConnectionError("edge unreachable")


async def test_a_failed_join_closes_the_model_and_leaves_nothing_running() -> None:
    model = FakeRealtime()
    agent = Agent(edge=FailingEdge(), llm=model)
    with pytest.raises(ConnectionError, match="edge unreachable"):
        async with agent.join(await agent.create_call()):
            pytest.fail("the body must not run when joining fails")
    assert not model.is_connected
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert tasks == []


class EveryFrameProcessor(CountingProcessor):
    name = "every-frame"
    fps = None  # type: ignore[assignment]  # a processor that takes every frame


class SmallFramesProcessor(CountingProcessor):
    name = "small-frames"
    max_side = 320  # e.g. a detector whose input is 320 px


class RecordingEdge(InMemoryEdge):
    """An in-memory call that notes what the agent says it wants of participants' video."""

    def __init__(self) -> None:
        super().__init__()
        self.wanted: list[tuple[float | None, int | None]] = []

    async def want_video(self, max_fps: float | None, max_side: int | None = None) -> None:
        self.wanted.append((max_fps, max_side))


@pytest.mark.parametrize(
    ("model_side", "processors", "wanted"),
    [
        (512, [], [(2.0, 512)]),  # the model alone
        (None, [], [(2.0, None)]),  # a model that does not scale its frames needs full size
        (512, [SmallFramesProcessor], [(10.0, 512)]),  # the fastest and the largest set it
        (512, [CountingProcessor], [(10.0, None)]),  # a processor that needs full size
        (512, [SmallFramesProcessor, EveryFrameProcessor], [(None, None)]),  # every frame
    ],
)
async def test_the_agent_tells_the_edge_how_much_video_it_takes(
    model_side: int | None,
    processors: list[type[VideoProcessor]],
    wanted: list[tuple[float | None, int | None]],
) -> None:
    edge = RecordingEdge()
    agent = Agent(
        edge=edge,
        agent_user=User(name="Ada"),
        llm=FakeRealtime(fps=2.0, max_image_side=model_side),
        processors=[p() for p in processors],
    )
    call = await agent.create_call("default", "wanted")
    async with agent.join(call):
        assert edge.wanted == wanted
