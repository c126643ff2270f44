"""Attach your own agent to a video call that people join from their browser.

    pip install "vision-agents[webrtc,gemini]"
    GOOGLE_API_KEY=... python examples/video_call/video_call.py

Open the printed link (camera and microphone work on http://127.0.0.1 and localhost; for
other machines pass host="0.0.0.0": the server then uses HTTPS with a self-signed
certificate, or yours via certfile=/keyfile=).
"""

from __future__ import annotations

import asyncio
import os

from vision_agents.core import Agent, User
from vision_agents.core.llm import Realtime
from vision_agents.plugins.webrtc import WebRTCEdge


def make_model() -> Realtime:
    if os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY"):
        from vision_agents.plugins import gemini

        return gemini.Realtime(fps=1)
    from vision_agents.testing import FakeRealtime  # no key: a stand-in that only listens

    print("No GOOGLE_API_KEY: using FakeRealtime, which receives media but never answers.")
    return FakeRealtime(fps=1)


async def main(seconds: float | None = None, port: int = 8911) -> Realtime:
    edge = WebRTCEdge(host="127.0.0.1", port=port, max_participants=4)
    model = make_model()
    agent = Agent(
        edge=edge,
        agent_user=User(name="Assistant"),
        instructions="You are on a video call. Keep answers short and say what you see.",
        llm=model,
    )
    edge.show_transcripts(model)  # the page shows what the agent and the people say

    call = await agent.create_call("default", "my-call")
    print("Join the call:", edge.join_url(call, name="Guest", ttl_s=3600))
    async with agent.join(call):
        if seconds is None:
            await agent.finish()  # until Ctrl-C
        else:
            await asyncio.sleep(seconds)
    return model


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:  # Ctrl-C: the agent and the call server have closed
        print("stopped")
