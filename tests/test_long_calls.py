"""Long calls within the services' limits, time-scaled on the local servers.

Gemini: a 30-minute audio+video call (1 real second stands for one service minute) through
connections that live 10 minutes and end with a goAway: with the default settings (context
compression on) the session keeps going; with compression off the server cuts it at the
context window, as the service does after about 2 minutes of audio+video.

OpenAI: a 75-minute call against a 60-minute session cap (scaled): the expired session, whose
socket stays open answering errors, is left for a new one within 2 s and no turn is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import openai
import pytest

from tests.media_tracks import SyntheticVideoTrack
from vision_agents.core.errors import ProviderError
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeErrorEvent,
    RealtimeReconnectedEvent,
    UsageEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer, ScriptedReply, tone
from vision_agents.testing.gemini_limits import LiveLimits

pytestmark = pytest.mark.timeout(180)

SCALE = 60.0  # one real second is one service minute


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def stream_audio(llm: gemini.Realtime | openai_plugin.Realtime, seconds: float) -> None:
    pcm = tone(440, seconds, sample_rate=16000, amplitude=0.2)
    for chunk in pcm.chunks(20):
        await llm.simple_audio_response(chunk)
        await asyncio.sleep(0.02)


def replies(text: str) -> tuple[str, object]:
    return f"answer to {text}", tone(300, 0.2, sample_rate=24000)


async def test_thirty_gemini_minutes_of_audio_and_video_keep_going_with_the_defaults() -> None:
    # Connections live 10 s; goAway 2 s before the end: the service gives 60 s, but opening a
    # connection does not get 60x faster with the time scale, so the margin is scaled less.
    limits = LiveLimits(time_scale=SCALE, go_away_before_s=120)
    async with GeminiLiveServer(limits=limits, responder=replies) as server:  # type: ignore[arg-type]
        llm = gemini.Realtime(model="m", client=server.client(), fps=1)
        heard: list[str] = []
        usage: list[UsageEvent] = []

        @llm.events.subscribe
        async def on_event(event: RealtimeAgentSpeechTranscriptionEvent | UsageEvent) -> None:
            if isinstance(event, RealtimeAgentSpeechTranscriptionEvent):
                heard.append(event.text)
            else:
                usage.append(event)

        @llm.register_function
        def lookup(n: int) -> int:
            """Look a number up.

            Args:
                n: The number.
            """
            return n + 1

        await llm.connect()
        track = SyntheticVideoTrack(fps=15)
        await llm.watch_video_track(track)
        streaming = asyncio.create_task(stream_audio(llm, 30.0))
        calls: list[str] = []
        try:
            for minute in range(0, 30, 3):  # a turn and a tool call every 3 service minutes
                await llm.simple_response(f"question {minute}")
                if server._current is not None:
                    calls.append(await server.send_tool_call("lookup", {"n": minute}))
                await asyncio.sleep(3.0)
            await streaming
            await wait_until(
                lambda: len(heard) >= 10, 15, f"every reply heard ({len(heard)} of 10)"
            )
            lost = set(llm.protocol.lost_calls)
            answered = {r["id"] for r in server.tool_responses}
            await wait_until(
                lambda: set(calls) - lost <= {r["id"] for r in server.tool_responses},
                10,
                f"every tool result ({sorted(set(calls) - lost - answered)})",
            )
        finally:
            streaming.cancel()
            await llm.close()
            track.stop()

    print(
        f"30 service minutes: {server.go_aways_sent} goAways, {llm.reconnects} reconnects, "
        f"{server.ledger.compressions} compressions, {len(heard)} transcripts, "
        f"{len(server.tool_responses)} tool results, usage {llm.usage}"
    )
    assert server.context_cuts == 0, "the context window ended the session"
    assert server.ledger.compressions > 0, "compression never kicked in"
    assert server.go_aways_sent >= 2 and server.connection_count >= server.go_aways_sent
    assert llm.reconnects >= server.go_aways_sent
    assert lost == set(), f"goAways lost tool calls {sorted(lost)}"
    assert [h for h in heard if h.startswith("answer to")] == [
        f"answer to question {m}" for m in range(0, 30, 3)
    ]
    assert server.rejections == []


async def test_without_compression_the_server_cuts_the_call_as_the_service_would() -> None:
    limits = LiveLimits(time_scale=SCALE)
    async with GeminiLiveServer(limits=limits) as server:
        llm = gemini.Realtime(
            model="m",
            client=server.client(),
            fps=1,
            context_compression=False,
            retry=RetryPolicy(max_retries=2, initial_delay=0.05),
        )
        errors: list[RealtimeErrorEvent] = []

        @llm.events.subscribe
        async def on_error(event: RealtimeErrorEvent) -> None:
            errors.append(event)

        await llm.connect()
        track = SyntheticVideoTrack(fps=15)
        await llm.watch_video_track(track)
        streaming = asyncio.create_task(stream_audio(llm, 8.0))
        try:
            await wait_until(lambda: bool(errors), 15, "the session to be cut")
        finally:
            streaming.cancel()
            await llm.close()
            track.stop()
    assert server.context_cuts >= 1
    assert any(reason == "context window exhausted" for _code, reason in server.rejections)
    # the user is told why (the provider's close code and reason), not just reconnected
    error = errors[0].error
    assert isinstance(error, ProviderError) and error.code == "1008"
    assert "context window exhausted" in error.message


async def test_usage_totals_match_the_servers_own_accounting() -> None:
    async with GeminiLiveServer(responder=replies) as server:  # type: ignore[arg-type]
        llm = gemini.Realtime(model="m", client=server.client())
        await llm.connect()
        try:
            await stream_audio(llm, 1.0)
            for i in range(3):
                assert (await llm.generate_reply(f"turn {i}", timeout=10)).startswith("answer")
        finally:
            await llm.close()
    reported = server.usage_reported
    assert reported["AUDIO"] > 0 and reported["OUT_AUDIO"] > 0 and reported["TEXT"] > 0
    assert llm.usage.input_audio == reported["AUDIO"]
    assert llm.usage.input_text == reported["TEXT"]
    assert llm.usage.input_image == reported["IMAGE"]
    assert llm.usage.output_audio == reported["OUT_AUDIO"]
    assert llm.usage.output_text == reported["OUT_TEXT"]
    assert llm.usage.total == sum(reported.values())


async def test_seventy_five_openai_minutes_across_the_session_cap_lose_no_turn() -> None:
    # 60 service minutes last 6 real seconds: the call below is 7.5 s = 75 minutes.
    async with OpenAIRealtimeServer(session_limit_s=6.0) as server:
        server.responder = lambda request: ScriptedReply(transcript="ok", audio=b"\0\0" * 2400)
        client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client, turn_detection=None)
        switched: list[tuple[float, RealtimeReconnectedEvent]] = []

        @llm.events.subscribe
        async def on_switch(event: RealtimeReconnectedEvent) -> None:
            switched.append((time.monotonic(), event))

        await llm.connect()
        started = time.monotonic()
        streaming = asyncio.create_task(stream_audio(llm, 7.5))
        answers: list[str] = []
        try:
            for i in range(15):  # a turn every 5 service minutes
                answers.append(await llm.generate_reply(f"turn {i}", timeout=10))
                await asyncio.sleep(max(0.0, started + (i + 1) * 0.5 - time.monotonic()))
            await streaming
        finally:
            streaming.cancel()
            await llm.close()
    assert answers == ["ok"] * 15
    assert len(server.connections) >= 2 and switched
    expired_at = started + 6.0
    first_switch = switched[0][0]
    assert first_switch - expired_at < 2.0, f"new session {first_switch - expired_at:.2f} s late"
    assert "session_expired" in {e["code"] for e in server.errors}


async def test_openai_usage_totals_match_the_servers_own_accounting() -> None:
    async with OpenAIRealtimeServer() as server:
        server.responder = lambda request: ScriptedReply(transcript="fine", audio=b"\1\0" * 4800)
        client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client, turn_detection=None)
        await llm.connect()
        try:
            await stream_audio(llm, 0.5)
            for i in range(3):
                assert await llm.generate_reply(f"turn {i}", timeout=10) == "fine"
        finally:
            await llm.close()
    mine, theirs = llm.usage, server.usage
    assert theirs.responses == 3 and theirs.output.audio > 0 and theirs.cached_tokens > 0
    assert (mine.input_text, mine.input_audio, mine.input_image) == (
        theirs.input.text,
        theirs.input.audio,
        theirs.input.image,
    )
    assert mine.input_cached == theirs.cached_tokens
    assert (mine.output_text, mine.output_audio) == (theirs.output.text, theirs.output.audio)
    assert mine.total == theirs.total_tokens
