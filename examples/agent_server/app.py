"""Agents as a service, with no key: `vision-agents serve examples.agent_server.app:create_agent`.

Each ``POST /sessions`` runs ``create_agent`` in a fresh, pre-warmed worker process. The agent
is the offline demo agent (local VAD, Whisper and TTS around a rule-based responder, the
OpenCV detection processor; see docs/voice.md) on the worker's embedded call server: the
session's ``join_url`` opens the call in a browser. The agent greets whoever joins and says
what it sees; spoken questions are answered.

    export VISION_AGENTS_API_TOKEN=$(python -c "import secrets; print(secrets.token_hex(16))")
    vision-agents serve examples.agent_server.app:create_agent --port 8080
    curl -s -X POST localhost:8080/sessions -H "Authorization: Bearer $VISION_AGENTS_API_TOKEN" \
        -d '{"call_id": "support-1"}'
"""

from __future__ import annotations

import asyncio

from vision_agents.core import Agent, User
from vision_agents.core.edge.events import ParticipantJoinedEvent
from vision_agents.demo import INSTRUCTIONS, ModelChoice, offline_choice
from vision_agents.server import SessionRequest

GREETING = "Say what you see."
_prepared: list[ModelChoice] = []


async def prewarm() -> None:
    """Load the models before any request (the worker calls this when it starts)."""
    choice = offline_choice()
    assert choice.stt is not None and choice.tts is not None
    await asyncio.gather(choice.stt.start(), choice.tts.start())
    _prepared.append(choice)


def create_agent(request: SessionRequest) -> Agent:
    """The offline demo agent for the call in ``request``; greets each participant."""
    # A worker runs one session: the models loaded by prewarm() are used once.
    choice = _prepared.pop() if _prepared else offline_choice()
    edge = request.edge()
    name = request.metadata.get("agent_name")
    agent = Agent(
        edge=edge,
        agent_user=User(name=name if isinstance(name, str) else "Assistant"),
        instructions=INSTRUCTIONS,
        llm=choice.llm,
        processors=choice.processors,
        vad=choice.vad,
        stt=choice.stt,
        tts=choice.tts,
    )
    edge.show_transcripts(choice.llm)

    @edge.events.subscribe
    async def greet(event: ParticipantJoinedEvent) -> None:
        await agent.simple_response(GREETING)

    return agent
