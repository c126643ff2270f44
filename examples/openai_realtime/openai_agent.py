"""An OpenAI Realtime agent in an in-memory call: it hears speech, sees frames and has a tool.

    OPENAI_API_KEY=... python examples/openai_realtime/openai_agent.py

``run`` takes the model, so the same code runs in tests against the local server.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from vision_agents.core import Agent, User
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeResponseEvent,
)
from vision_agents.core.llm.realtime import Realtime
from vision_agents.plugins import openai
from vision_agents.testing import InMemoryEdge, make_test_video, synthesize_speech


async def run(llm: Realtime, seconds: float = 3.0, question: str = "What do you see?") -> list[str]:
    """Join a call, let a participant talk and show video, ask a question; return what was said."""
    said: list[str] = []
    edge = InMemoryEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), instructions="Be brief.", llm=llm)

    @llm.register_function
    def room_temperature(room: str) -> float:
        """Read a room's thermometer.

        Args:
            room: The room's name.
        """
        return 21.5

    @llm.events.subscribe
    async def on_speech(event: RealtimeAgentSpeechTranscriptionEvent) -> None:
        said.append(event.text)
        print(f"agent: {event.text}")

    @llm.events.subscribe
    async def on_text(event: RealtimeResponseEvent) -> None:
        if event.is_complete:
            said.append(event.text)

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(
            Path(tmp) / "clip.mkv", seconds=seconds, audio=synthesize_speech("Hello there")
        )
        async with agent.join(await agent.create_call("default", "example")):
            await edge.add_participant("alice", clip)
            await asyncio.sleep(seconds)
            await agent.simple_response(question)
            for _ in range(100):
                if said:
                    break
                await asyncio.sleep(0.1)
    return said


if __name__ == "__main__":
    asyncio.run(run(openai.Realtime(fps=1, voice="marin")))
