"""Both providers through the real SDKs and a fault proxy: 20 failures of each kind, one session.

Kinds: a clean close (1000), a server error close (1011), a planned end (Gemini ``goAway``;
OpenAI's ``session_expired`` with the socket left open), a peer that stops reading before
finishing the close, and a blackholed TCP path (the proxy stops forwarding, sockets stay
open). Across each, 3 s of a 1 kHz tone is streamed, a user turn is sent and a tool runs:
>= 90% of the tone must reach the server, every turn and tool result must arrive, and the new
connection must be up within 2 s (8 s for a blackhole).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from tests.fault_kit import gemini_client, inject_gemini, inject_openai
from vision_agents.core.audio import PcmData
from vision_agents.core.llm.events import RealtimeReconnectedEvent, ToolCallCompletedEvent
from vision_agents.core.llm.protocol_realtime import ProtocolRealtime
from vision_agents.core.llm.runtime import Keepalive, RetryPolicy
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer, ScriptedReply, tone
from vision_agents.testing.fault_proxy import FaultProxy

pytestmark = pytest.mark.timeout(240)

KINDS = ["close", "error_1011", "go_away", "stalled_close", "blackhole"]
FAILURES = 20
TONE_S = 3.0
CHUNK_MS = 20
PACE = 4.0  # stream the tone 4x faster than real time to keep the suite short
# Tighter than the defaults (1 s / 3 s) so 20 blackholes fit in a test; the default-settings
# bound (new link within 8 s) is checked once in test_default_keepalive_notices_a_blackhole.
KEEPALIVE = Keepalive(interval=0.25, timeout=1.0)


@dataclass
class Rig:
    provider: str
    llm: ProtocolRealtime
    proxy: FaultProxy
    rate: int
    audio_bytes: Callable[[], int]
    connections: Callable[[], int]
    inject: Callable[[str], Any]
    turns_seen: Callable[[], set[str]]
    results_seen: Callable[[], set[str]]
    calls: set[str] = field(default_factory=set)
    completed: list[ToolCallCompletedEvent] = field(default_factory=list)


async def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def gemini_rig(keepalive: Keepalive = KEEPALIVE) -> AsyncIterator[Rig]:
    async with GeminiLiveServer() as server, FaultProxy(server.port) as proxy:
        llm = gemini.Realtime(
            model="m",
            client=gemini_client(server, proxy),
            keepalive=keepalive,
            retry=RetryPolicy(initial_delay=0.05),
        )

        async def inject(kind: str) -> None:
            await inject_gemini(server, proxy, kind)

        rig = Rig(
            "gemini",
            llm,
            proxy,
            16000,
            lambda: server.audio_bytes,
            lambda: server.connection_count,
            inject,
            lambda: set(server.texts),
            lambda: {str(r["id"]) for r in server.tool_responses},
        )

        async def issue_call(i: int) -> None:
            rig.calls.add(await server.send_tool_call("echo", {"i": i}))

        rig.issue_call = issue_call  # type: ignore[attr-defined]
        yield rig


@asynccontextmanager
async def openai_rig(keepalive: Keepalive = KEEPALIVE) -> AsyncIterator[Rig]:
    async with OpenAIRealtimeServer() as server, FaultProxy(server.port) as proxy:
        client = openai.AsyncOpenAI(api_key="k", base_url=f"http://127.0.0.1:{proxy.port}/v1")
        llm = openai_plugin.Realtime(
            client=client,
            turn_detection=None,
            keepalive=keepalive,
            retry=RetryPolicy(initial_delay=0.05),
        )
        calls: set[str] = set()

        def responder(request: dict[str, Any]) -> ScriptedReply:
            conn = server.current
            last = conn.items[-1] if conn is not None and conn.items else {}
            if last.get("type") == "message" and last.get("role") == "user":
                return ScriptedReply(tool_calls=[("echo", {"i": len(calls)})])
            return ScriptedReply(transcript="ok")

        server.responder = responder

        async def inject(kind: str) -> None:
            assert server.current is not None
            await inject_openai(server, proxy, kind)

        def turns_seen() -> set[str]:
            return {
                part["text"]
                for c in server.connections
                for e in c.received
                if e["type"] == "conversation.item.create"
                for part in e["item"].get("content") or []
                if part.get("type") == "input_text"
            }

        def results_seen() -> set[str]:
            return {
                e["item"]["call_id"]
                for c in server.connections
                for e in c.received
                if e["type"] == "conversation.item.create"
                and e["item"]["type"] == "function_call_output"
            }

        rig = Rig(
            "openai",
            llm,
            proxy,
            24000,
            lambda: server.audio_bytes,
            lambda: len(server.connections),
            inject,
            turns_seen,
            results_seen,
            calls,
        )
        yield rig


async def stream_tone(llm: ProtocolRealtime, rate: int, seconds: float, pace: float) -> None:
    pcm = tone(1000, seconds, sample_rate=rate)
    for chunk in pcm.chunks(CHUNK_MS):
        await llm.simple_audio_response(chunk)
        await asyncio.sleep(CHUNK_MS / 1000 / pace)


async def run_failures(rig: Rig, kind: str, failures: int) -> list[tuple[float, float]]:
    """Returns (seconds to the new connection, share of the tone delivered) per failure."""
    llm = rig.llm

    @llm.register_function
    def echo(i: int) -> int:
        """Echo a number.

        Args:
            i: The number.
        """
        return i

    @llm.events.subscribe
    async def on_done(event: ToolCallCompletedEvent) -> None:
        rig.completed.append(event)
        if event.call_id:
            rig.calls.add(event.call_id)

    reconnects: list[RealtimeReconnectedEvent] = []

    @llm.events.subscribe
    async def on_reconnect(event: RealtimeReconnectedEvent) -> None:
        reconnects.append(event)

    await llm.connect()
    results: list[tuple[float, float]] = []
    bound = 8.0 if kind == "blackhole" else 2.0
    try:
        for i in range(failures):
            before_bytes, before_conns = rig.audio_bytes(), rig.connections()
            streaming = asyncio.create_task(stream_tone(llm, rig.rate, TONE_S, PACE))
            await asyncio.sleep(TONE_S / PACE / 3)
            await llm.simple_response(f"turn {i}")
            if rig.provider == "gemini":
                await rig.issue_call(i)  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            await rig.inject(kind)

            def reconnected(b: int = before_conns) -> bool:
                return rig.connections() > b

            await wait_until(reconnected, bound + 2, f"{kind} #{i} reconnect")
            recovered = time.monotonic() - t0
            await streaming
            expected = int(TONE_S * rig.rate) * 2

            def delivered_enough(b: int = before_bytes, e: int = expected) -> bool:
                return rig.audio_bytes() - b >= 0.9 * e

            await wait_until(
                delivered_enough,
                10.0,
                f"{kind} #{i}: 90% of the tone ({(rig.audio_bytes() - before_bytes) / expected:.0%})",
            )
            delivered = (rig.audio_bytes() - before_bytes) / expected
            results.append((recovered, delivered))
            assert recovered < bound, f"{kind} #{i}: new connection after {recovered:.2f} s"
        turns = {f"turn {i}" for i in range(failures)}
        await wait_until(lambda: turns <= rig.turns_seen(), 15.0, f"every turn ({kind})")
        # Gemini resumes from its last resumable point: a call made after it does not exist
        # in the resumed session (the service refuses its result); the user's turn is given
        # again instead. A planned switch waits for a resumable point, so it loses none.
        lost = set(getattr(llm.protocol, "lost_calls", []))
        if kind == "go_away":
            assert not lost, f"goAway lost tool calls {sorted(lost)}"
        owed = rig.calls - lost
        await wait_until(
            lambda: bool(owed) and owed <= rig.results_seen(),
            15.0,
            f"every tool result ({kind}): {sorted(owed - rig.results_seen())}",
        )
        assert llm.reconnects >= failures
        # Every reconnect is told, once, with what it cost.
        await wait_until(lambda: len(reconnects) == llm.reconnects, 2.0, "an event a reconnect")
        # Gemini's goAway gives notice (a planned switch); OpenAI's expiry ends the session.
        planned = kind == "go_away" and rig.provider == "gemini"
        assert all(e.planned == planned for e in reconnects), reconnects
        if planned:
            assert all(e.downtime_s == 0 for e in reconnects), reconnects
        else:
            assert all(0 < e.downtime_s < bound for e in reconnects), reconnects
        if kind == "blackhole":  # what the dead link swallowed goes again
            assert all(e.audio_replayed_s > 0 for e in reconnects), reconnects
        assert all(e.audio_dropped_s == 0 for e in reconnects), reconnects
    finally:
        await llm.close()
    return results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("provider", ["gemini", "openai"])
async def test_twenty_failures_of_each_kind_lose_no_turn_tool_result_or_audio(
    provider: str, kind: str
) -> None:
    rig_cm = gemini_rig() if provider == "gemini" else openai_rig()
    async with rig_cm as rig:
        results = await run_failures(rig, kind, FAILURES)
    assert len(results) == FAILURES
    worst = min(d for _t, d in results)
    assert worst >= 0.9, f"{provider}/{kind}: only {worst:.0%} of a tone delivered"


@pytest.mark.parametrize("provider", ["gemini", "openai"])
async def test_default_keepalive_notices_a_blackhole_within_eight_seconds(provider: str) -> None:
    from vision_agents.core.llm.runtime import DEFAULT_KEEPALIVE

    rig_cm = (
        gemini_rig(DEFAULT_KEEPALIVE) if provider == "gemini" else openai_rig(DEFAULT_KEEPALIVE)
    )
    async with rig_cm as rig:
        results = await run_failures(rig, "blackhole", 1)
    (recovered, delivered), *_ = results
    assert recovered < 8.0 and delivered >= 0.9


def test_tone_helper_is_what_we_think() -> None:
    pcm = tone(1000, 0.1, sample_rate=16000)
    assert isinstance(pcm, PcmData) and pcm.sample_rate == 16000 and len(pcm) == 1600


async def test_a_new_session_gets_what_the_old_one_had_not_committed_and_nothing_it_had() -> None:
    # Without pings too: a commit point, not a pong, says what the model took.
    async with OpenAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
        llm = openai_plugin.Realtime(
            client=client, keepalive=None, retry=RetryPolicy(initial_delay=0.05)
        )
        await llm.connect()
        try:
            await stream_tone(llm, 24000, 1.0, PACE)
            await wait_until(lambda: server.audio_bytes >= 48000, 5, "the tone at the server")
            await server.user_turn("one", respond=False)  # server VAD commits the second
            await wait_until(
                lambda: llm.protocol.audio.unconfirmed_bytes == 0, 5, "the commit at the client"
            )
            await stream_tone(llm, 24000, 0.5, PACE)
            await wait_until(lambda: server.audio_bytes >= 72000, 5, "the rest at the server")
            await server.drop()
            await wait_until(lambda: len(server.connections) == 2, 5, "a new connection")
            # the uncommitted half second goes again, the committed second does not
            await wait_until(
                lambda: server.connections[1].audio_bytes >= 24000, 5, "the uncommitted audio"
            )
            assert server.connections[1].audio_bytes == 24000
            assert [len(c) for c in server.heard_audio()] == [48000, 24000]
        finally:
            await llm.close()
