"""Record a call: no key, camera or network needed.

A participant plays a clip (speech over a numbered test picture) into an in-memory call; the
agent records the call to ``call.mp4`` (and the transcript to ``call.vtt``/``call.jsonl``),
says something half-way, and prints what it wrote. With a real edge (``WebRTCEdge``) the
call's pages show a "Recording" badge while it runs.

    python examples/recording/main.py [output.mp4|output.webm]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from vision_agents.core import Agent, User
from vision_agents.core.recording import RecordingSummary
from vision_agents.testing import (
    FakeRealtime,
    InMemoryEdge,
    make_test_video,
    synthesize_speech,
    tone,
)


async def main(output: Path, seconds: float = 4.0) -> RecordingSummary:
    model = FakeRealtime(fps=2)
    edge = InMemoryEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(
            Path(tmp) / "clip.mkv", seconds=seconds, audio=synthesize_speech("Hello there")
        )
        async with agent.join(await agent.create_call("default", "recorded")):
            await edge.add_participant("alice", clip)
            # Opt-in: nothing is recorded until this call.
            recorder = await agent.start_recording(output, overwrite=True, size=(640, 360))
            await asyncio.sleep(seconds / 2)
            model.respond("Hello Alice, this call is recorded.", tone(660, 0.5, sample_rate=24000))
            await asyncio.sleep(seconds / 2)
            summary = await agent.stop_recording()
    assert summary is not None and not recorder.recording
    print(f"recorded {summary.duration_s:.1f} s to {summary.path}")
    print(f"transcript: {summary.vtt_path}, {summary.jsonl_path}")
    return summary


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "call.mp4")))
