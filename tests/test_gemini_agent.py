"""The Gemini plugin inside a whole Agent, through the real SDK and the local server."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.conftest import wait_until
from vision_agents.core import Agent
from vision_agents.plugins import gemini
from vision_agents.testing import GeminiLiveServer, InMemoryEdge, tone


async def test_an_interruption_drops_the_queued_reply_from_the_call() -> None:
    async with GeminiLiveServer() as server:
        model = gemini.Realtime(model="gemini-live-test", client=server.client())
        edge = InMemoryEdge()
        agent = Agent(edge=edge, llm=model)
        async with agent.join(await agent.create_call()):
            # 4 s of reply arrive at once, far faster than they play
            await server.send_audio(tone(700, 4.0, sample_rate=24000), turn_complete=False)
            await wait_until(
                lambda: agent.audio_track.buffered_ms > 3000, 10, "4 s of reply queued"
            )
            await asyncio.sleep(0.5)  # some of it plays
            await server.send_interrupted()
            for _ in range(100):
                if agent.audio_track.buffered_ms == 0:
                    break
                await asyncio.sleep(0.02)
            assert agent.audio_track.buffered_ms == 0, "queued audio survived the interruption"
            await asyncio.sleep(0.5)
            published = edge.published.audio.to_float32().samples[0]
        # what reached the call: the ~0.5 s played before the interruption, not the 4 s
        loud_seconds = (np.abs(published) > 0.1).sum() / 48000 / (1 - 2 / np.pi * np.arcsin(0.2))
        assert 0.3 < loud_seconds < 1.2, loud_seconds
