"""An agent in its own process on a Janus edge, for the two-agent test.

``python -m tests.janus.agent_process URL TOKEN_SECRET ADMIN_KEY CALL NAME HZ``: joins CALL as
NAME, speaks a steady HZ tone, and prints a JSON line every 0.3 s with the dominant frequency
it hears from each participant (over the last second).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque

import numpy as np

from vision_agents.core import Agent, User
from vision_agents.core.edge.events import AudioReceivedEvent
from vision_agents.plugins.janus import JanusEdge
from vision_agents.testing import FakeRealtime, dominant_hz, tone


async def main(url: str, secret: str, admin_key: str, call_id: str, name: str, hz: float) -> None:
    edge = JanusEdge(url, token_secret=secret, admin_key=admin_key)
    model = FakeRealtime(fps=1)
    agent = Agent(edge=edge, agent_user=User(name=name), llm=model)
    heard: dict[str, deque[np.ndarray]] = {}
    rates: dict[str, int] = {}

    @agent.events.subscribe
    async def on_audio(event: AudioReceivedEvent) -> None:
        samples = event.pcm.to_float32().samples[0]
        heard.setdefault(event.participant.name, deque(maxlen=50)).append(samples)
        rates[event.participant.name] = event.pcm.sample_rate

    call = await agent.create_call("default", call_id)
    async with agent.join(call):
        while True:
            if agent.audio_track.buffered_ms < 500:
                model.respond("", tone(hz, 1.0, sample_rate=24000))
            report = {
                who: round(dominant_hz(np.concatenate(list(chunks)), rates[who]))
                for who, chunks in heard.items()
                if sum(len(c) for c in chunks) >= rates[who] // 2
            }
            print(json.dumps({"name": name, "heard": report}), flush=True)
            await asyncio.sleep(0.3)


if __name__ == "__main__":
    url, secret, admin_key, call_id, name, hz = sys.argv[1:7]
    asyncio.run(main(url, secret, admin_key, call_id, name, float(hz)))
