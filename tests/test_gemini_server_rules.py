"""The local Gemini Live server enforces the service's documented session rules (with limits).

Each test drives the server with the real SDK directly (no plugin), doing what the service
refuses or ends, and checks the server answers as the service would.
"""

from __future__ import annotations

import asyncio

import pytest
from google.genai import errors as genai_errors
from google.genai import types

from vision_agents.testing import GeminiLiveServer, tone
from vision_agents.testing.gemini_limits import LiveLimits

pytestmark = pytest.mark.timeout(60)


async def next_message(session: object, within: float = 5.0) -> types.LiveServerMessage:
    async with asyncio.timeout(within):
        return await session._receive()  # type: ignore[attr-defined, no-any-return]


async def test_a_go_away_is_followed_by_the_close_when_its_time_runs_out() -> None:
    async with GeminiLiveServer() as server:
        async with server.client().aio.live.connect(model="m") as session:
            await server.wait_connected()
            await server.send_go_away("0.3s")
            with pytest.raises(genai_errors.APIError):
                for _ in range(10):
                    message = await next_message(session)
                    assert message.go_away is None or message.go_away.time_left == "0.3s"


async def test_the_connection_lifetime_ends_with_a_go_away_then_a_close() -> None:
    limits = LiveLimits(time_scale=600)  # 10 service minutes last 1 s; goAway 0.1 s before
    async with GeminiLiveServer(limits=limits) as server:
        config = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig())
        async with server.client().aio.live.connect(model="m", config=config) as session:
            seen: list[str] = []
            with pytest.raises(genai_errors.APIError):
                while True:
                    message = await next_message(session)
                    if message.go_away is not None:
                        seen.append("goAway")
    assert seen == ["goAway"] and server.go_aways_sent == 1


async def test_handles_are_not_resumable_while_a_tool_call_waits() -> None:
    async with GeminiLiveServer(limits=LiveLimits(connection_lifetime_s=None)) as server:
        config = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig())
        async with server.client().aio.live.connect(model="m", config=config) as session:
            first = await next_message(session)
            assert first.session_resumption_update is not None
            assert first.session_resumption_update.resumable
            call_id = await server.send_tool_call("f", {})
            assert (await next_message(session)).tool_call is not None
            assert await server.send_resumption_update() is None  # not while the call waits
            update = (await next_message(session)).session_resumption_update
            assert update is not None and update.resumable is False and not update.new_handle
            await session.send_tool_response(
                function_responses=[types.FunctionResponse(id=call_id, name="f", response={})]
            )
            update = (await next_message(session)).session_resumption_update
            assert update is not None and update.resumable and update.new_handle


async def test_a_resumed_session_refuses_results_for_calls_it_never_made() -> None:
    async with GeminiLiveServer(limits=LiveLimits(connection_lifetime_s=None)) as server:
        config = types.LiveConnectConfig(session_resumption=types.SessionResumptionConfig())
        async with server.client().aio.live.connect(model="m", config=config) as session:
            handle = (await next_message(session)).session_resumption_update
            assert handle is not None and handle.new_handle
            call_id = await server.send_tool_call("f", {})  # made after the handle
        resumed = types.LiveConnectConfig(
            session_resumption=types.SessionResumptionConfig(handle=handle.new_handle)
        )
        async with server.client().aio.live.connect(model="m", config=resumed) as session:
            await session.send_tool_response(
                function_responses=[types.FunctionResponse(id=call_id, name="f", response={})]
            )
            with pytest.raises(genai_errors.APIError, match="unknown call id"):
                for _ in range(5):
                    await next_message(session)
    assert server.tool_responses == []


async def test_without_compression_the_context_window_ends_the_session() -> None:
    limits = LiveLimits(time_scale=600, connection_lifetime_s=None)
    async with GeminiLiveServer(limits=limits) as server:
        async with server.client().aio.live.connect(model="m") as session:
            # 1 s of audio stands for 10 minutes here; 2 s pass the 15-minute audio limit
            for chunk in tone(440, 2.0, sample_rate=16000).chunks(100):
                blob = types.Blob(data=chunk.to_bytes(), mime_type="audio/pcm;rate=16000")
                try:
                    await session.send_realtime_input(audio=blob)
                except Exception:
                    break
            with pytest.raises(genai_errors.APIError, match="context window"):
                for _ in range(5):
                    await next_message(session)
    assert server.context_cuts == 1
    assert server.ledger.context > limits.context_window_tokens


async def test_with_compression_the_context_stays_under_the_window() -> None:
    limits = LiveLimits(time_scale=600, connection_lifetime_s=None)
    async with GeminiLiveServer(limits=limits) as server:
        config = types.LiveConnectConfig(
            context_window_compression=types.ContextWindowCompressionConfig(
                sliding_window=types.SlidingWindow()
            )
        )
        async with server.client().aio.live.connect(model="m", config=config):
            await server.wait_connected()
        async with server.client().aio.live.connect(model="m", config=config) as session:
            for chunk in tone(440, 3.0, sample_rate=16000).chunks(100):
                blob = types.Blob(data=chunk.to_bytes(), mime_type="audio/pcm;rate=16000")
                await session.send_realtime_input(audio=blob)
            await server.wait_for(lambda: server.ledger.compressions >= 2)
    assert server.context_cuts == 0
    assert server.ledger.context <= 0.8 * limits.context_window_tokens + 1
