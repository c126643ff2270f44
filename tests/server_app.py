"""A session factory for the server tests: a model double that answers with a long tone,
and faults on request (``metadata["fault"]``) to show that sessions are isolated."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from vision_agents.core import Agent, User
from vision_agents.core.edge.events import ParticipantJoinedEvent
from vision_agents.server import SessionRequest
from vision_agents.testing import FakeRealtime, tone

TONE_HZ = 440.0
TONE_S = 60.0


def create_agent(request: SessionRequest) -> Agent:
    """An agent that plays a tone to whoever joins; faults: raise, kill, block, lag, leak (after_s)."""
    fault = request.metadata.get("fault")
    if fault == "raise":
        raise RuntimeError("this factory was asked to fail")
    model = FakeRealtime(fps=1, responder=lambda text: (text, tone(TONE_HZ, TONE_S)))
    edge = request.edge(stats_interval_s=2.0)  # the video figures in /metrics
    agent = Agent(edge=edge, agent_user=User(name="Tone agent"), llm=model)

    @edge.events.subscribe
    async def on_join(event: ParticipantJoinedEvent) -> None:
        await agent.simple_response("play the tone")

    after = request.metadata.get("after_s", 0.5)
    delay = float(after) if isinstance(after, int | float) else 0.5
    loop = asyncio.get_running_loop()
    if fault == "kill":  # the process dies as if it crashed hard (segfault, OOM killer)
        loop.call_later(delay, os.kill, os.getpid(), signal.SIGKILL)
    elif fault == "block":  # a handler that never gives the event loop back
        loop.call_later(delay, time.sleep, 3600)
    elif fault == "lag":  # a loop kept busy: 80 ms of work every 100 ms, for good

        def hog() -> None:
            time.sleep(0.08)
            loop.call_later(0.02, hog)

        loop.call_later(delay, hog)
    elif fault == "leak":  # memory that is never given back, 50 MB every 100 ms
        hoard: list[bytes] = []

        def leak() -> None:
            hoard.append(b"x" * 50_000_000)
            loop.call_later(0.1, leak)

        loop.call_later(delay, leak)
    return agent


async def create_agent_async(request: SessionRequest) -> Agent:
    """The same agent from an async factory."""
    await asyncio.sleep(0)
    return create_agent(request)


def create_openai_agent(request: SessionRequest) -> Agent:
    """``openai.Realtime`` on the local OpenAI server at ``metadata["model_url"]``; it asks for a
    reply when someone joins."""
    import openai as openai_sdk

    from vision_agents.plugins import openai

    model_url = request.metadata.get("model_url")
    if not isinstance(model_url, str):
        raise ValueError("metadata.model_url is required")
    client = openai_sdk.AsyncOpenAI(base_url=model_url, api_key="test-key-not-secret")
    llm = openai.Realtime(fps=1, client=client)
    edge = request.edge()
    agent = Agent(edge=edge, agent_user=User(name="Model agent"), llm=llm)

    @edge.events.subscribe
    async def on_join(event: ParticipantJoinedEvent) -> None:
        await agent.simple_response("Say hello.")

    return agent
