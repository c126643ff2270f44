"""A Gemini Live agent in a call: it hears and sees a participant, uses a tool and answers.

    GOOGLE_API_KEY=... python examples/gemini_realtime/main.py

A participant plays a short clip (speech over a test picture) into an in-memory call; the
agent streams it to Gemini Live (16 kHz audio, JPEG frames at 1 fps), asks a question and
prints what the model says. Swap ``InMemoryEdge`` for a real edge to join a real call. The
test suite runs this same ``main`` against the local Gemini Live server
(``vision_agents.testing.GeminiLiveServer``) by passing ``client=server.client()``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from google import genai

from vision_agents.core import Agent, User
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioOutputEvent,
    RealtimeResponseEvent,
)
from vision_agents.plugins import gemini
from vision_agents.testing import InMemoryEdge, make_test_video, synthesize_speech


def build_agent(llm: gemini.Realtime, edge: InMemoryEdge) -> Agent:
    """The agent with its tool; the same for a real key and for the local server."""

    @llm.register_function
    def room_temperature(room: str) -> float:
        """Read a room's thermometer.

        Args:
            room: The room's name.
        """
        return 21.5

    return Agent(
        edge=edge,
        agent_user=User(name="Gemini"),
        instructions="You are a friendly assistant in a video call. Keep answers short.",
        llm=llm,
    )


async def main(
    client: genai.Client | None = None, seconds: float = 4.0, model: str | None = None
) -> dict[str, float]:
    """Run one short call; returns what came back (seconds of audio, transcript characters)."""
    llm = gemini.Realtime(model=model or gemini.DEFAULT_MODEL, fps=1, client=client)
    edge = InMemoryEdge()
    agent = build_agent(llm, edge)
    heard = {"audio_s": 0.0, "transcript_chars": 0.0, "replies": 0.0}

    @llm.events.subscribe
    async def on_audio(event: RealtimeAudioOutputEvent) -> None:
        heard["audio_s"] += event.audio_data.duration

    @llm.events.subscribe
    async def on_transcript(event: RealtimeAgentSpeechTranscriptionEvent) -> None:
        heard["transcript_chars"] += len(event.text)
        print(f"agent: {event.text}", flush=True)

    @llm.events.subscribe
    async def on_text(event: RealtimeResponseEvent) -> None:
        heard["replies"] += event.is_complete

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(
            Path(tmp) / "clip.mkv",
            seconds=seconds / 2,
            audio=synthesize_speech("Hello! What is the temperature in the kitchen?"),
        )
        async with agent.join(await agent.create_call("default", "gemini-example")):
            await edge.add_participant("alice", clip)
            await asyncio.sleep(seconds / 2)
            await agent.simple_response("Describe what you see in one sentence.")
            await asyncio.sleep(seconds / 2)
    print(f"model spoke {heard['audio_s']:.1f}s of audio", flush=True)
    return heard


if __name__ == "__main__":
    asyncio.run(main())
