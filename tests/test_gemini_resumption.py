"""Sessions that last: goAway and dropped sockets resume with the newest handle."""

from __future__ import annotations

import asyncio
import random

import pytest

from vision_agents.core.llm.events import RealtimeAudioOutputDoneEvent, ToolCallStartedEvent
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import gemini
from vision_agents.testing import GeminiLiveServer, tone

pytestmark = pytest.mark.timeout(60)


async def test_twenty_go_aways_and_drops_resume_with_the_latest_handle_and_lose_no_tool_result() -> (
    None
):
    rng = random.Random(7)
    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(
            model="m", client=server.client(), retry=RetryPolicy(initial_delay=0.01)
        )
        started: set[str] = set()
        done: list[RealtimeAudioOutputDoneEvent] = []
        changed = asyncio.Condition()

        @llm.events.subscribe
        async def on_event(event: ToolCallStartedEvent | RealtimeAudioOutputDoneEvent) -> None:
            if isinstance(event, ToolCallStartedEvent) and event.call_id:
                started.add(event.call_id)
            elif isinstance(event, RealtimeAudioOutputDoneEvent):
                done.append(event)
            async with changed:
                changed.notify_all()

        @llm.register_function
        async def work(n: int, delay: float) -> int:
            """Square a number slowly.

            Args:
                n: The number.
                delay: Seconds to take.
            """
            await asyncio.sleep(delay)
            return n * n

        async def until(predicate) -> None:
            async with asyncio.timeout(15), changed:  # a bound, not a wait
                await changed.wait_for(predicate)

        await llm.connect()
        calls: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(20):
            call_id = await server.send_tool_call("work", {"n": i, "delay": rng.uniform(0, 0.03)})
            calls[call_id] = i
            await until(lambda cid=call_id: cid in started)
            if i % 2:
                await server.drop()
            else:
                await server.send_go_away("1s")
            await server.wait_connected(count=i + 2)
        elapsed = loop.time() - t0
        # the session still talks after all that
        await server.send_audio(tone(300, 0.1, sample_rate=24000))
        await until(lambda: len(done) == 1)
        lost = set(llm.protocol.lost_calls)
        await server.wait_for(lambda: {r["id"] for r in server.tool_responses} >= set(calls) - lost)
        await llm.close()

    assert llm.reconnects == 20 and server.connection_count == 21
    assert server.resumed_with[0] is None
    assert all(h is not None for h in server.resumed_with[1:])
    # Make-before-break: a newer handle may arrive on the old connection while the new one
    # opens, so each resume uses the newest handle the client had, never an older one than
    # the resume before it (and the results sent after it are sent again: checked below).
    order = [server.handles_issued.index(h) for h in server.resumed_with[1:] if h is not None]
    assert order == sorted(order)
    # A goAway waits for a resumable point (the result in, a handle after it): nothing lost.
    # A drop resumes from the last handle: a call made after it is not in the resumed
    # session, so its result is not sent there (the user's turn is given again instead).
    assert not lost & {cid for cid, n in calls.items() if n % 2 == 0}
    results = {r["id"]: r["response"]["result"] for r in server.tool_responses}
    assert {cid: v for cid, v in results.items() if cid not in lost} == {
        cid: n * n for cid, n in calls.items() if cid not in lost
    }
    assert server.rejections == []
    assert elapsed / 20 < 1.0, f"{elapsed / 20:.3f} s per resume"  # a short pause each time
