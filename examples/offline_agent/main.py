"""An agent in an in-memory call: no key, camera or network needed.

A participant plays a clip (speech over a numbered test picture); the model double answers
a question with a beep. Swap `FakeRealtime` for a provider plugin's `Realtime` and
`InMemoryEdge` for a real edge, and the rest stays the same.

    python examples/offline_agent/main.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from vision_agents.core import Agent, User
from vision_agents.core.llm.events import RealtimeResponseEvent
from vision_agents.testing import (
    FakeRealtime,
    InMemoryEdge,
    make_test_video,
    synthesize_speech,
    tone,
)


async def main(seconds: float = 3.0) -> FakeRealtime:
    model = FakeRealtime(fps=2, responder=lambda text: (f"You said: {text}", tone(880, 0.3)))
    edge = InMemoryEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), instructions="Be brief.", llm=model)

    @model.register_function
    def room_temperature(room: str) -> float:
        """Read a room's thermometer.

        Args:
            room: The room's name.
        """
        return 21.5

    @model.events.subscribe
    async def on_reply(event: RealtimeResponseEvent) -> None:
        print(f"agent: {event.text}")

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(
            Path(tmp) / "clip.mkv", seconds=seconds, audio=synthesize_speech("Hello there")
        )
        async with agent.join(await agent.create_call("default", "example")):
            await edge.add_participant("alice", clip)
            await asyncio.sleep(seconds)
            await agent.simple_response("What do you see?")
            await asyncio.sleep(0.5)
            print(f"model got {len(model.frames)} frames and {model.audio_received:.1f}s of audio")
    return model


if __name__ == "__main__":
    asyncio.run(main())
