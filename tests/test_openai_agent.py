"""Barge-in in an Agent: the truncation point is what the agent's audio track really played."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import openai
import pytest

from vision_agents.core import Agent
from vision_agents.core.agents import AudioOutputTrack
from vision_agents.core.llm.events import RealtimeAudioOutputEvent
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import InMemoryEdge, OpenAIRealtimeServer, ScriptedReply, tone
from vision_agents.testing.media import write_wav

pytestmark = pytest.mark.timeout(30)


def loud_seconds(pcm: np.ndarray, rate: int = 48000) -> float:
    block = rate // 50
    blocks = pcm[: len(pcm) // block * block].reshape(-1, block)
    return float((np.sqrt((blocks**2).mean(axis=1)) > 0.05).sum()) / 50


async def test_track_counts_what_it_played_per_response() -> None:
    track = AudioOutputTrack(sample_rate=24000, channels=1)
    track.write(tone(440, 0.1, sample_rate=24000), "a")
    track.write(tone(440, 0.2, sample_rate=24000), "b")
    assert track.played_ms("a") == 0 and track.played_ms("b") == 0
    assert track.played_ms("unknown") is None
    for _ in range(10):  # 200 ms: all of "a", half of "b"
        await track.recv()
    assert track.played_ms("a") == pytest.approx(100, abs=1)
    assert track.played_ms("b") == pytest.approx(100, abs=1)
    track.clear()  # barge-in: the rest of "b" never plays
    for _ in range(10):
        await track.recv()
    assert track.played_ms("b") == pytest.approx(100, abs=1)
    track.write(tone(440, 0.1, sample_rate=24000), "c")
    for _ in range(10):
        await track.recv()
    assert track.played_ms("c") == pytest.approx(100, abs=1)
    assert track.played_ms("b") == pytest.approx(100, abs=1)
    track.stop()


async def test_agent_truncates_at_what_its_track_played() -> None:
    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client)
        edge = InMemoryEdge()
        agent = Agent(edge=edge, llm=llm)
        responses: list[str] = []

        arrived: list[float] = []

        @llm.events.subscribe
        async def on_audio(e: RealtimeAudioOutputEvent) -> None:
            if e.response_id and e.response_id not in responses:
                responses.append(e.response_id)
                arrived.append(time.monotonic())

        async with agent.join(await agent.create_call()):
            assert llm.playback_position == agent.audio_track.played_ms
            # the agent is still saying something else for 0.5 s: the reply starts playing
            # 0.5 s after it arrives, so a clock-based estimate would be 0.5 s off
            agent.audio_track.write(tone(300, 0.5, sample_rate=24000), "earlier")
            reply = tone(440, 3.0, sample_rate=24000).to_int16().to_bytes()
            server.script(ScriptedReply(transcript="a long answer", audio=reply))
            await llm.simple_response("talk")
            await server.wait_for(lambda: bool(responses))
            await asyncio.sleep(1.0)  # the 3 s arrived at once; ~0.5 s of it has played
            since_arrival_ms = (time.monotonic() - arrived[0]) * 1000
            await server.speech_started()
            await server.wait_for(lambda: bool(server.received_of("conversation.item.truncate")))
            end_ms = server.received_of("conversation.item.truncate")[0]["audio_end_ms"]
            await server.wait_for(lambda: agent.audio_track.buffered_ms == 0, within=2)
            played = agent.audio_track.played_ms(responses[0])
            assert played is not None
            assert abs(end_ms - played) <= 150, (end_ms, played)
            # the earlier 0.5 s played first, so the player is well behind a clock-based guess
            # (which would say ~since_arrival_ms); how far depends on how the track was paced
            assert end_ms <= since_arrival_ms - 200, (end_ms, since_arrival_ms)
            # the queued rest of the reply is dropped from the published track
            await asyncio.sleep(0.5)
            published = edge.published.audio.to_float32().samples[0]
            assert loud_seconds(published) == pytest.approx(0.5 + played / 1000, abs=0.15)
            assert server.errors == []


async def test_a_leaver_s_audio_state_is_dropped(tmp_path: Path) -> None:
    clip = tmp_path / "speech.wav"
    write_wav(clip, tone(440, 2.0, sample_rate=48000))
    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client)
        edge = InMemoryEdge()
        agent = Agent(edge=edge, llm=llm)
        async with agent.join(await agent.create_call()):
            alice = await edge.add_participant("alice", clip, loop=True)
            await server.wait_for(lambda: server.audio_bytes > 0)
            assert llm.participants_with_state == 1
            await edge.remove_participant(alice)
            await server.wait_for(lambda: llm.participants_with_state == 0)
