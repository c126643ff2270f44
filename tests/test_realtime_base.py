"""The Realtime base: properties, emitters, video throttling and tool calls."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.conftest import wait_until
from tests.media_tracks import SyntheticVideoTrack
from vision_agents.core import PcmData
from vision_agents.core.events import BaseEvent
from vision_agents.core.llm import Realtime
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioInputEvent,
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
    RealtimeConnectedEvent,
    RealtimeDisconnectedEvent,
    RealtimeErrorEvent,
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
    ToolCallCompletedEvent,
)
from vision_agents.core.types import Participant
from vision_agents.testing import FakeRealtime, tone


class MinimalRealtime(Realtime):
    """Implements only what the contract makes abstract."""

    provider_name = "minimal"

    async def connect(self) -> None:
        self._emit_connected_event()

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        self._emit_audio_input_event(pcm)

    async def close(self) -> None:
        await self._close_base()
        self._emit_disconnected_event()


def collect(llm: Realtime) -> list[BaseEvent]:
    seen: list[BaseEvent] = []

    @llm.events.subscribe
    async def _all(event: BaseEvent) -> None:
        seen.append(event)

    return seen


async def test_properties_and_connection_state() -> None:
    llm = MinimalRealtime(fps=0.5)
    assert llm.fps == 0.5 and isinstance(llm.fps, float)
    assert uuid.UUID(llm.session_id)
    assert llm.provider_name == "minimal"
    assert not llm.is_connected
    await llm.connect()
    assert llm.is_connected
    await llm.close()
    assert not llm.is_connected
    assert MinimalRealtime().session_id != llm.session_id


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "fast", None])
def test_bad_fps_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="fps"):
        MinimalRealtime(fps=bad)  # type: ignore[arg-type]


async def test_every_emitter_sends_its_typed_event() -> None:
    llm = MinimalRealtime()
    seen = collect(llm)
    pcm = tone(440, 0.02, sample_rate=16000)
    llm._emit_connected_event(session_config={"a": 1}, capabilities={"video": True})
    llm._emit_audio_input_event(pcm, user_metadata={"u": 1})
    llm._emit_audio_output_event(pcm, response_id="r1")
    llm._emit_audio_output_done_event(response_id="r1")
    llm._emit_response_event("hi", response_id="r1", is_complete=False, conversation_item_id="i1")
    llm._emit_user_speech_transcription("hello", original={"raw": 1})
    llm._emit_agent_speech_transcription("hi there")
    llm._emit_error_event(RuntimeError("boom"), context="testing")
    llm._emit_disconnected_event(reason="bye", was_clean=False)
    await llm.events.wait(timeout=5)

    types = [type(e) for e in seen]
    assert types == [
        RealtimeConnectedEvent,
        RealtimeAudioInputEvent,
        RealtimeAudioOutputEvent,
        RealtimeAudioOutputDoneEvent,
        RealtimeResponseEvent,
        RealtimeUserSpeechTranscriptionEvent,
        RealtimeAgentSpeechTranscriptionEvent,
        RealtimeErrorEvent,
        RealtimeDisconnectedEvent,
    ]
    assert all(e.session_id == llm.session_id and e.plugin_name == "minimal" for e in seen)
    connected, _, out, _, response, user, _, error, disconnected = seen
    assert isinstance(connected, RealtimeConnectedEvent) and connected.capabilities == {
        "video": True
    }
    assert isinstance(out, RealtimeAudioOutputEvent) and out.audio_data is pcm
    assert isinstance(response, RealtimeResponseEvent) and not response.is_complete
    assert isinstance(user, RealtimeUserSpeechTranscriptionEvent) and user.original == {"raw": 1}
    assert isinstance(error, RealtimeErrorEvent) and error.message == "testing: boom"
    assert isinstance(disconnected, RealtimeDisconnectedEvent) and not disconnected.was_clean
    assert not llm.is_connected
    await llm.events.close()


async def test_unsupported_features_say_which_provider() -> None:
    llm = MinimalRealtime()
    with pytest.raises(NotImplementedError, match="minimal"):
        await llm.simple_response("hello")


async def test_video_is_sent_at_fps_and_stops_when_asked() -> None:
    llm = FakeRealtime(fps=5)
    llm.frame_policy = None  # fixed rate: every frame fps offers
    await llm.connect()
    track = SyntheticVideoTrack(fps=30)
    await llm.watch_video_track(track)
    started = time.monotonic()
    await asyncio.sleep(2.0)  # a measuring window; it overruns on a loaded machine
    await llm.stop_watching_video_track()
    window = time.monotonic() - started
    got = len(llm.frames)
    await asyncio.sleep(0.5)  # a window in which nothing may arrive
    assert len(llm.frames) == got, "frames kept arriving after stop_watching_video_track"
    expected = 5 * window
    assert 0.8 * expected <= got <= 1.2 * expected + 1, f"~{expected:.0f} frames at 5 fps: {got}"
    await llm.close()


async def test_no_frames_before_connect() -> None:
    llm = FakeRealtime(fps=10)
    await llm.watch_video_track(SyntheticVideoTrack(fps=30))
    await asyncio.sleep(0.5)
    assert llm.frames == []
    await llm.close()


async def test_tool_calls_run_in_background_and_errors_go_back_to_the_model() -> None:
    llm = FakeRealtime()
    release = asyncio.Event()

    @llm.register_function
    async def slow_lookup(city: str) -> dict[str, str]:
        """Look a city up.

        Args:
            city: The city name.
        """
        await release.wait()
        return {"city": city, "weather": "sunny"}

    @llm.register_function
    def broken() -> str:
        """Always fails."""
        raise ValueError("database offline")

    completed: list[ToolCallCompletedEvent] = []

    @llm.events.subscribe
    async def on_done(event: ToolCallCompletedEvent) -> None:
        completed.append(event)

    await llm.connect()
    llm.call_tool("c1", "slow_lookup", '{"city": "Oslo"}')
    llm.call_tool("c2", "broken", {})
    # the broken tool answers (and its task ends) while the slow one is still running
    await wait_until(
        lambda: bool(llm.tool_results) and llm.pending_tool_calls == ["c1"],
        10,
        "the broken tool's result while the slow one runs",
    )
    assert [r.call_id for r in llm.tool_results] == ["c2"]
    assert llm.tool_results[0].ok is False and "database offline" in (
        llm.tool_results[0].error or ""
    )
    assert llm.pending_tool_calls == ["c1"]
    release.set()
    await wait_until(lambda: len(llm.tool_results) == 2, 10, "the slow tool's result")
    assert llm.tool_results[1].ok and llm.tool_results[1].value == {
        "city": "Oslo",
        "weather": "sunny",
    }
    await llm.events.wait(timeout=5)
    assert sorted(e.call_id or "" for e in completed) == ["c1", "c2"]
    await llm.close()


async def test_a_cancelled_tool_call_sends_nothing_back() -> None:
    llm = FakeRealtime()
    started = asyncio.Event()

    @llm.register_function
    async def forever() -> str:
        """Never ends."""
        started.set()
        await asyncio.Event().wait()
        return "never"

    await llm.connect()
    llm.call_tool("c9", "forever", {})
    await asyncio.wait_for(started.wait(), 5)
    assert await llm._cancel_tool_call("c9") is True
    assert llm.pending_tool_calls == []
    assert llm.tool_results == []
    assert await llm._cancel_tool_call("c9") is False
    await llm.close()
