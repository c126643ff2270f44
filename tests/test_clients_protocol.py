"""The protocol-style client (`connect()`, `read_events()`, `send_*`) over both local servers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping

import pytest

from tests.clients_kit import LOOKUP_TOOL, Events, backend, user_pcm24
from vision_agents.clients import RealtimeClient, UnsupportedFeature, get_factory
from vision_agents.clients._common import build_realtime
from vision_agents.core.llm.events import (
    RealtimeDisconnectedEvent,
    RealtimeErrorEvent,
    ToolCallStartedEvent,
)
from vision_agents.plugins import gemini, openai, xai

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("provider", ["gemini", "openai"])
async def test_text_audio_tool_and_clean_close(provider: str) -> None:
    async with backend(provider) as be:
        client = RealtimeClient(build_realtime(provider, **be.options()))
        events = Events()

        async def read_all() -> None:
            async for event in client.read_events():
                events.add(event)

        async with client.connect():
            reader = asyncio.create_task(read_all())
            await client.session_update({"instructions": "Be brief.", "tools": [LOOKUP_TOOL]})

            await client.send_text(role="user", text="hello")
            await events.wait_reply("hi there", turns=1)

            await client.send_audio(base64.b64encode(user_pcm24()).decode())
            await be.heard_audio()
            await be.speak("heard you")
            await events.wait_reply("heard you", turns=2)

            await be.call_tool("lookup", {"city": "Oslo"})
            (call,) = await events.wait(ToolCallStartedEvent)
            assert (call.name, call.arguments) == ("lookup", {"city": "Oslo"})
            assert call.call_id is not None
            await client.send_function_result(call.call_id, "sunny")
            assert await be.tool_output() == {"result": "sunny"}

            with pytest.raises(UnsupportedFeature, match="send_text"):
                await client.send_text(role="system", text="x")
        await asyncio.wait_for(reader, 5)  # read_events() ends with the session
        (gone,) = events.of(RealtimeDisconnectedEvent)
        assert gone.was_clean
        assert not events.of(RealtimeErrorEvent)
        assert not client.realtime.is_connected


async def test_truncate_audio_goes_to_openai_and_is_refused_by_gemini() -> None:
    async with backend("openai") as be:
        client = RealtimeClient(build_realtime("openai", **be.options()))
        async with client.connect():
            await client.truncate_audio(audio_end_ms=120, content_index=0, item_id="item_1")
            server = be.server  # type: ignore[attr-defined]
            await server.wait_for(lambda: bool(server.received_of("conversation.item.truncate")))
            (sent,) = server.received_of("conversation.item.truncate")
            assert (sent["item_id"], sent["audio_end_ms"]) == ("item_1", 120)
    async with backend("gemini") as be:
        client = RealtimeClient(build_realtime("gemini", **be.options()))
        async with client.connect():
            with pytest.raises(UnsupportedFeature, match="gemini_realtime does not support"):
                await client.truncate_audio(120, 0, "item_1")


def test_factory_picks_the_provider_from_the_config() -> None:
    def made(config: Mapping[str, object]) -> object:
        factory = get_factory(config)
        assert factory is not None, config
        return factory().realtime

    assert isinstance(
        made({"model": "gemini-2.5-flash-native-audio", "api_key": "k"}), gemini.Realtime
    )
    assert isinstance(made({"api_type": "google", "model": "m", "api_key": "k"}), gemini.Realtime)
    rt = made({"model": "gpt-realtime", "api_key": "k"})
    assert isinstance(rt, openai.Realtime) and type(rt) is openai.Realtime
    assert rt.model == "gpt-realtime"
    assert type(made({"api_type": "openai", "model": "x", "api_key": "k"})) is openai.Realtime
    assert isinstance(made({"model": "grok-voice-agent", "api_key": "k"}), xai.Realtime)
    assert isinstance(made({"api_type": "xai", "api_key": "k"}), xai.Realtime)
    listed: dict[str, object] = {
        "config_list": [{"model": "claude-3"}, {"model": "gemini-live", "api_key": "k"}]
    }
    assert isinstance(made(listed), gemini.Realtime)
    assert get_factory({"model": "claude-3", "api_key": "k"}) is None
    assert get_factory({"api_type": "anthropic", "model": "gpt-realtime"}) is None
    assert get_factory({"model": "gpt-4o"}) is None
    assert RealtimeClient.get_factory({"model": "mistral"}) is None


async def test_read_events_needs_a_connection() -> None:
    client = RealtimeClient(build_realtime("openai", api_key="k"))
    with pytest.raises(RuntimeError, match="connect"):
        async for _event in client.read_events():
            pass
    with pytest.raises(ValueError, match="role must be"):
        await client.send_text(role="robot", text="x")  # type: ignore[arg-type]


def test_unknown_provider_names_the_accepted_ones() -> None:
    with pytest.raises(ValueError, match="gemini, openai, xai"):
        build_realtime("anthropic")
