"""Both providers' local servers behind one small driver, for the client-surface tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai

from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer, ScriptedReply, tone

LOOKUP_TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def reply_pcm24(seconds: float = 0.2) -> bytes:
    return tone(330, seconds, sample_rate=24000).to_int16().to_bytes()


def reply_audio() -> PcmData:
    return PcmData.from_bytes(reply_pcm24(), 24000, 1, "s16")


def user_pcm24(seconds: float = 0.3) -> bytes:
    return tone(440, seconds, sample_rate=24000).to_int16().to_bytes()


class Backend:
    """Drives one provider's local server: what the model says, what arrived."""

    provider: str

    def options(self) -> dict[str, Any]:
        """Provider ``Realtime`` options that point it at the server."""
        raise NotImplementedError

    async def heard_audio(self) -> None:
        raise NotImplementedError

    async def speak(self, transcript: str) -> None:
        """The model answers the user's audio with speech."""
        raise NotImplementedError

    async def call_tool(self, name: str, args: dict[str, Any]) -> None:
        raise NotImplementedError

    async def tool_output(self) -> Any:
        """The first tool output the server got, decoded."""
        raise NotImplementedError


class GeminiBackend(Backend):
    provider = "gemini"

    def __init__(self, server: GeminiLiveServer) -> None:
        self.server = server
        server.responder = lambda text: ("hi there", reply_audio())

    def options(self) -> dict[str, Any]:
        return {"client": self.server.client(), "retry": RetryPolicy(initial_delay=0.01)}

    async def heard_audio(self) -> None:
        await self.server.wait_for(lambda: self.server.audio_seconds() > 0.1)

    async def speak(self, transcript: str) -> None:
        await self.server.send_audio(reply_audio(), transcript=transcript)

    async def call_tool(self, name: str, args: dict[str, Any]) -> None:
        await self.server.send_tool_call(name, args)

    async def tool_output(self) -> Any:
        await self.server.wait_for(lambda: bool(self.server.tool_responses))
        return self.server.tool_responses[0]["response"]


class OpenAIBackend(Backend):
    provider = "openai"

    def __init__(self, server: OpenAIRealtimeServer) -> None:
        self.server = server
        server.responder = lambda _e: ScriptedReply(transcript="hi there", audio=reply_pcm24())

    def options(self) -> dict[str, Any]:
        client = openai.AsyncOpenAI(api_key="test-key", base_url=self.server.base_url)
        return {"client": client, "retry": RetryPolicy(initial_delay=0.01)}

    async def heard_audio(self) -> None:
        await self.server.wait_for(lambda: self.server.audio_seconds > 0.1)

    async def speak(self, transcript: str) -> None:
        await self.server.respond(ScriptedReply(transcript=transcript, audio=reply_pcm24()))

    async def call_tool(self, name: str, args: dict[str, Any]) -> None:
        await self.server.respond(ScriptedReply(tool_calls=[(name, args)]))

    async def tool_output(self) -> Any:
        def outputs() -> list[dict[str, Any]]:
            return [
                e["item"]
                for e in self.server.received_of("conversation.item.create")
                if e["item"].get("type") == "function_call_output"
            ]

        await self.server.wait_for(lambda: bool(outputs()))
        return json.loads(outputs()[0]["output"])


@asynccontextmanager
async def backend(provider: str) -> AsyncIterator[Backend]:
    if provider == "gemini":
        async with GeminiLiveServer() as gemini_server:
            yield GeminiBackend(gemini_server)
    else:
        async with OpenAIRealtimeServer() as openai_server:
            yield OpenAIBackend(openai_server)


class Events:
    """Collects typed events and waits for them."""

    def __init__(self) -> None:
        self.items: list[BaseEvent] = []
        self._changed = asyncio.Event()

    def add(self, event: BaseEvent) -> None:
        self.items.append(event)
        self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)]

    async def wait(self, kind: type[Any], count: int = 1, within: float = 5.0) -> list[Any]:
        async with asyncio.timeout(within):
            while len(self.of(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind)

    async def wait_reply(self, transcript: str, turns: int = 1, within: float = 5.0) -> None:
        """A spoken reply: audio chunks, its transcript and the ``turns``-th done event."""
        async with asyncio.timeout(within):
            while not (
                any(e.text == transcript for e in self.of(RealtimeAgentSpeechTranscriptionEvent))
                and len(self.of(RealtimeAudioOutputDoneEvent)) >= turns
            ):
                self._changed.clear()
                await self._changed.wait()
        assert self.of(RealtimeAudioOutputEvent)
