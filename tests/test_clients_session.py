"""The session-style model (retry policy, session control, `generate_reply`) over both servers."""

from __future__ import annotations

import asyncio

import pytest

from tests.clients_kit import Events, backend, reply_audio
from vision_agents.clients import ConnectOptions, RealtimeSession, UnsupportedFeature
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.events import RealtimeDisconnectedEvent, RealtimeErrorEvent
from vision_agents.testing import GeminiLiveServer

pytestmark = pytest.mark.timeout(60)


def lookup(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city.
    """
    return f"sunny in {city}"


@pytest.mark.parametrize("provider", ["gemini", "openai"])
async def test_text_audio_tool_and_clean_close(provider: str) -> None:
    async with backend(provider) as be:
        options = ConnectOptions(max_retry=2, retry_interval=0.01, timeout=5.0)
        opts = {k: v for k, v in be.options().items() if not k.startswith("retry")}
        session = RealtimeSession(provider, conn_options=options, instructions="Be brief.", **opts)
        assert session.realtime.retry.max_retries == 2  # type: ignore[attr-defined]
        events = Events()

        @session.events.subscribe
        async def on_event(event: BaseEvent) -> None:
            events.add(event)

        async with session:
            reply = session.generate_reply(instructions="Say hi.", timeout=5.0)
            assert await reply == "hi there"
            await events.wait_reply("hi there", turns=1)

            await session.push_audio(reply_audio())
            await be.heard_audio()
            await be.speak("heard you")
            await events.wait_reply("heard you", turns=2)

            await session.update_tools([lookup])
            await be.call_tool("lookup", {"city": "Oslo"})
            assert await be.tool_output() == {"result": "sunny in Oslo"}

            await session.update_instructions("Be very brief.")
            if provider == "gemini":
                for call in (session.interrupt(), session.commit_audio(), session.clear_audio()):
                    with pytest.raises(UnsupportedFeature, match="gemini_realtime"):
                        await call
                with pytest.raises(ValueError, match="accepted: voice, response_modalities"):
                    await session.update_options(turn_detection=None)
        (gone,) = events.of(RealtimeDisconnectedEvent)
        assert gone.was_clean
        assert not events.of(RealtimeErrorEvent)


async def test_gemini_restarts_and_resumes_to_change_instructions_tools_and_voice() -> None:
    async with backend("gemini") as be:
        server: GeminiLiveServer = be.server  # type: ignore[attr-defined]
        async with RealtimeSession("gemini", instructions="Be brief.", **be.options()) as session:
            assert await session.generate_reply(timeout=5.0) == "hi there"  # a handle now exists
            handle = server.latest_handle
            await session.update_instructions("Speak French.")
            await session.update_tools([lookup])
            await session.update_options(voice="Puck")
            await server.wait_connected(4)
            setup = server.setups[-1]
            assert setup["systemInstruction"]["parts"][0]["text"] == "Speak French."
            assert [f["name"] for f in setup["tools"][0]["functionDeclarations"]] == ["lookup"]
            assert "'Puck'" in str(setup["generationConfig"]["speechConfig"])
            assert server.resumed_with[1] == handle  # the conversation carried over
            assert all(h is not None for h in server.resumed_with[1:])


async def test_gemini_generate_reply_fails_after_its_timeout() -> None:
    async with GeminiLiveServer() as server:  # no responder: the model never answers
        async with RealtimeSession("gemini", client=server.client()) as session:
            reply = session.generate_reply(instructions="Say hi.", timeout=0.2)
            with pytest.raises(TimeoutError, match=r"no reply within 0\.2 s"):
                await reply


async def test_openai_control_methods_reach_the_wire() -> None:
    async with backend("openai") as be:
        server = be.server  # type: ignore[attr-defined]
        session = RealtimeSession(
            "openai", max_session_duration=600.0, turn_detection=None, **be.options()
        )
        assert session.realtime.max_session_duration == 600.0  # type: ignore[attr-defined]
        async with session:
            await session.update_options(voice="cedar")
            await session.commit_audio()
            await session.clear_audio()
            await session.truncate(message_id="item_9", audio_end_ms=50)
            await session.interrupt()
            for kind in (
                "input_audio_buffer.commit",
                "input_audio_buffer.clear",
                "conversation.item.truncate",
            ):
                await server.wait_for(lambda k=kind: bool(server.received_of(k)))
            with pytest.raises(ValueError, match="cannot update speed"):
                await session.update_options(speed=1.2)


async def test_options_providers_cannot_honour_are_refused() -> None:
    with pytest.raises(UnsupportedFeature, match="gemini_realtime does not support max_session"):
        RealtimeSession("gemini", api_key="k", max_session_duration=60.0)
    with pytest.raises(ValueError, match="max_retry >= 0"):
        ConnectOptions(max_retry=-1)


async def test_start_gives_up_after_the_connect_timeout() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = RealtimeSession(
            "openai",
            api_key="k",
            base_url=f"http://127.0.0.1:{port}/v1",
            conn_options=ConnectOptions(timeout=0.3),
        )
        with pytest.raises(TimeoutError, match=r"not connected within 0\.3 s"):
            await session.start()
    finally:
        server.close()
        await server.wait_closed()
