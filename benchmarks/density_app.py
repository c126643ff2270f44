"""The density benchmark's agent: ``openai.Realtime(fps=1)`` on the local OpenAI server,
asking for the next reply as soon as one ends, so it talks continuously.

Used two ways: as the factory of ``vision-agents serve benchmarks.density_app:create_agent``
(one worker process a session), and as ``python -m benchmarks.density_app N MODEL_URL``,
N agents in one process (how agents ran before the server existed). That mode prints the
join links as a JSON line; a line on stdin starts the measurement; when stdin closes it
prints the loop lag samples since then and leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import AsyncExitStack

import openai as openai_sdk

from vision_agents.core import Agent, User
from vision_agents.core.edge.events import ParticipantJoinedEvent
from vision_agents.core.edge.transport import EdgeTransport
from vision_agents.core.llm.events import RealtimeAudioOutputDoneEvent
from vision_agents.plugins import openai
from vision_agents.plugins.openai.realtime import DEFAULT_AUDIO_CHUNK_MS
from vision_agents.plugins.webrtc import CallServer, WebRTCEdge
from vision_agents.server import SessionRequest
from vision_agents.server.usage import LoopLagProbe


def build_agent(
    edge: EdgeTransport, model_url: str, audio_chunk_ms: int = DEFAULT_AUDIO_CHUNK_MS
) -> Agent:
    client = openai_sdk.AsyncOpenAI(base_url=model_url, api_key="density-benchmark")
    llm = openai.Realtime(fps=1, client=client, audio_chunk_ms=audio_chunk_ms)
    agent = Agent(edge=edge, agent_user=User(name="Density agent"), llm=llm)

    @edge.events.subscribe
    async def on_join(event: ParticipantJoinedEvent) -> None:
        await agent.simple_response("Talk.")

    @llm.events.subscribe
    async def on_done(event: RealtimeAudioOutputDoneEvent) -> None:
        await agent.simple_response("Go on.")

    return agent


def create_agent(request: SessionRequest) -> Agent:
    model_url = request.metadata.get("model_url")
    if not isinstance(model_url, str):
        raise ValueError("metadata.model_url (the local OpenAI server's /v1 URL) is required")
    chunk_ms = request.metadata.get("audio_chunk_ms", DEFAULT_AUDIO_CHUNK_MS)  # comparison rows
    return build_agent(request.edge(), model_url, int(chunk_ms))


async def run_in_one_process(count: int, model_url: str) -> None:
    server = CallServer(port=0, max_participants=1)
    probe = LoopLagProbe()
    lag = asyncio.ensure_future(probe.run())
    try:
        async with AsyncExitStack() as stack:
            urls = []
            for i in range(count):
                edge = WebRTCEdge(server=server)
                agent = build_agent(edge, model_url)
                call = await agent.create_call("default", f"density-{i}")
                await stack.enter_async_context(agent.join(call))
                urls.append(edge.join_url(call))
            print(json.dumps({"join_urls": urls}), flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.readline)  # the measurement starts
            probe.take()
            await loop.run_in_executor(None, sys.stdin.read)  # until the harness closes it
            print(json.dumps({"loop_lag_s": probe.take()}), flush=True)
    finally:
        lag.cancel()
        await asyncio.gather(lag, return_exceptions=True)
        await server.stop()


if __name__ == "__main__":
    asyncio.run(run_in_one_process(int(sys.argv[1]), sys.argv[2]))
