"""The demo behind `vision-agents demo`.

Offline for now: a participant in an in-memory call plays a clip (a spoken question over a
numbered test picture), and an offline responder model answers with what reached it. It runs
the same Agent, forwarder and audio paths a real call uses; no key, camera or network needed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from vision_agents.core.agents.agent import Agent
from vision_agents.core.audio import PcmData
from vision_agents.core.llm.events import RealtimeAgentSpeechTranscriptionEvent
from vision_agents.core.types import User
from vision_agents.testing import (
    FakeRealtime,
    InMemoryEdge,
    make_test_video,
    read_frame_index,
    synthesize_speech,
    tone,
    write_wav,
)

QUESTION = "Hello agent. Can you tell me what you see and hear?"


def _speak(text: str) -> PcmData:
    try:
        return synthesize_speech(text)
    except RuntimeError:
        print("(espeak-ng is not installed: using tones instead of speech)")
        return tone(440, 1.5, sample_rate=22050)


async def run_demo(video: str | None = None, fps: float = 2.0, out_dir: str = "demo_output") -> int:
    out = Path(out_dir)
    print("vision-agents demo: OFFLINE mode (no provider plugin or key used; replies are canned)")

    with tempfile.TemporaryDirectory() as tmp:
        clip = (
            Path(video)
            if video
            else make_test_video(Path(tmp) / "participant.mkv", seconds=4, audio=_speak(QUESTION))
        )
        model = FakeRealtime(fps=fps)

        def answer(_question: str) -> tuple[str, PcmData]:
            seen = model.frames
            span = seen[-1].received_at - seen[0].received_at if len(seen) > 1 else 0.0
            rate = (len(seen) - 1) / span if span else 0.0
            last = read_frame_index(model.latest_frames[-1]) if model.latest_frames else -1
            text = (
                f"I received {len(seen)} video frames at {rate:.1f} frames a second, "
                f"the last one was frame number {last}, and {model.audio_received:.1f} "
                "seconds of your audio."
            )
            return text, _speak(text)

        model.responder = answer
        edge = InMemoryEdge()
        agent = Agent(
            edge=edge, agent_user=User(name="Demo agent"), instructions="Describe.", llm=model
        )

        @model.events.subscribe
        async def on_transcript(event: RealtimeAgentSpeechTranscriptionEvent) -> None:
            print(f"agent says: {event.text}")

        call = await agent.create_call("default", "demo")
        async with agent.join(call):
            started = time.monotonic()
            await edge.add_participant(User(id="you", name="You"), clip)
            print(f"participant joined, playing {clip.name}; model fps={fps}")
            while time.monotonic() - started < 5.0:
                await asyncio.sleep(1.0)
                print(
                    f"  t={time.monotonic() - started:4.1f}s frames to model: {len(model.frames):3d}"
                    f"  audio to model: {model.audio_received:4.1f}s"
                )
            await agent.simple_response("What did you see and hear?")
            await model.events.wait(timeout=5)  # the reply reached the agent's track
            await asyncio.wait_for(agent.audio_track.wait_idle(), timeout=30)  # and was played
            reply = write_wav(out / "agent_reply.wav", edge.published.audio)
        print(f"the agent's published audio ({edge.published.audio.duration:.1f}s) is in {reply}")
    return 0
