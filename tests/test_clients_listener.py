"""The listener-style model (`add_listener`, typed `send_event`, connection options) over both
local servers, including a key function awaited on every reconnect."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.genai import types

from tests.clients_kit import LOOKUP_TOOL, Events, backend, user_pcm24
from vision_agents.clients.listener import (
    RealtimeModel,
    RealtimeModelListener,
    SendAudio,
    SendInterrupt,
    SendSessionUpdate,
    SendToolOutput,
    SendUserInput,
)
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.events import (
    RealtimeConnectedEvent,
    RealtimeDisconnectedEvent,
    RealtimeErrorEvent,
    ToolCallStartedEvent,
)
from vision_agents.core.llm.realtime import UnsupportedFeature
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer

pytestmark = pytest.mark.timeout(60)


class Collecting(RealtimeModelListener):
    def __init__(self) -> None:
        self.events = Events()

    async def on_event(self, event: BaseEvent) -> None:
        self.events.add(event)


class Failing(RealtimeModelListener):
    async def on_event(self, event: BaseEvent) -> None:
        raise RuntimeError("a broken listener")


@pytest.mark.parametrize("provider", ["gemini", "openai"])
async def test_text_audio_tool_and_clean_close(provider: str) -> None:
    async with backend(provider) as be:
        model = RealtimeModel(provider, **be.options())
        listener, removed = Collecting(), Collecting()
        model.add_listener(Failing())  # a raise is logged; the others still get everything
        model.add_listener(listener)
        model.add_listener(removed)
        model.remove_listener(removed)
        await model.connect(
            {"initial_model_settings": {"instructions": "Be brief.", "tools": [LOOKUP_TOOL]}}
        )
        events = listener.events
        await events.wait(RealtimeConnectedEvent)

        await model.send_event(SendUserInput("hello"))
        await events.wait_reply("hi there", turns=1)

        await model.send_event(SendAudio(user_pcm24(), sample_rate=24000))
        await be.heard_audio()
        await be.speak("heard you")
        await events.wait_reply("heard you", turns=2)

        await be.call_tool("lookup", {"city": "Oslo"})
        (call,) = await events.wait(ToolCallStartedEvent)
        await model.send_event(SendToolOutput(call.call_id, {"sky": "clear"}))
        assert await be.tool_output() == {"result": {"sky": "clear"}}

        if provider == "gemini":
            with pytest.raises(
                UnsupportedFeature, match="gemini_realtime does not support interrupt"
            ):
                await model.send_event(SendInterrupt())
        else:
            # the service refuses a new voice once it has spoken: a clear error, not a
            # server error event later
            with pytest.raises(ConfigurationError, match="voice cannot change"):
                await model.send_event(SendSessionUpdate({"voice": "cedar"}))
            await model.send_event(SendSessionUpdate({"transcription_model": "gpt-4o-transcribe"}))
            server = be.server  # type: ignore[attr-defined]
            await server.wait_for(
                lambda: any(
                    (e["session"].get("audio", {}).get("input", {}).get("transcription") or {}).get(
                        "model"
                    )
                    == "gpt-4o-transcribe"
                    for e in server.received_of("session.update")
                )
            )
        await model.close()
        (gone,) = events.of(RealtimeDisconnectedEvent)
        assert gone.was_clean
        assert not events.of(RealtimeErrorEvent)
        assert not removed.events.items
        with pytest.raises(RuntimeError, match="not connected"):
            await model.send_event(SendUserInput("late"))


class KeyRing:
    """An async key function that hands out a new key on each call."""

    def __init__(self) -> None:
        self.calls = 0
        self._seq = itertools.count(1)

    async def __call__(self) -> str:
        self.calls += 1
        return f"key-{next(self._seq)}"


async def test_openai_key_function_is_awaited_on_every_reconnect() -> None:
    async with OpenAIRealtimeServer() as server:
        keys = KeyRing()
        model = RealtimeModel("openai", retry=RetryPolicy(initial_delay=0.01))
        await model.connect({"api_key": keys, "url": server.base_url})
        for count in (2, 3):
            await server.drop()
            await server.wait_connections(count)
        assert keys.calls == 3
        assert [c.authorization for c in server.connections] == [
            "Bearer key-1",
            "Bearer key-2",
            "Bearer key-3",
        ]
        await model.close()


async def test_gemini_key_function_is_awaited_on_every_reconnect() -> None:
    async with GeminiLiveServer() as server:
        keys = KeyRing()
        http = types.HttpOptions(
            base_url=server.base_url, async_client_args={"ssl": server.tls.client_context()}
        )
        model = RealtimeModel("gemini", http_options=http, retry=RetryPolicy(initial_delay=0.01))
        await model.connect({"api_key": keys})
        await server.wait_connected(1)
        for count in (2, 3):
            await server.drop()
            await server.wait_connected(count)
        assert keys.calls == 3
        await model.close()


async def test_a_sync_key_function_and_a_bad_key() -> None:
    async with OpenAIRealtimeServer() as server:
        model = RealtimeModel("openai")
        await model.connect({"api_key": lambda: "sync-key", "url": server.base_url})
        assert server.connections[0].authorization == "Bearer sync-key"
        await model.close()
        empty = RealtimeModel("openai")
        with pytest.raises(ValueError, match="api_key function returned ''"):
            await empty.connect({"api_key": lambda: "", "url": server.base_url})


async def test_send_event_rejects_what_it_does_not_know() -> None:
    async with backend("openai") as be:
        model = RealtimeModel("openai", **be.options())
        await model.connect()
        bad: Any = object()
        with pytest.raises(TypeError, match="accepted: SendUserInput"):
            await model.send_event(bad)
        await model.close()
