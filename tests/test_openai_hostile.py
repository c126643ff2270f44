"""An OpenAI Realtime server that sends what the service never would, through the real
``openai`` SDK: an audio delta over 30 s is reported once and the session goes on on the same
connection; a message over 16 MiB is refused by the socket at that bound (close 1009), never
parsed, and the session goes on on a new one."""

from __future__ import annotations

from typing import TypeVar

import openai
import pytest

from tests.conftest import wait_until
from vision_agents.core.errors import ProtocolViolation
from vision_agents.core.llm.events import (
    RealtimeAudioOutputEvent,
    RealtimeErrorEvent,
    RealtimeReconnectedEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import openai as openai_plugin
from vision_agents.plugins.openai import protocol
from vision_agents.plugins.openai.realtime import MAX_MESSAGE_BYTES
from vision_agents.testing import OpenAIRealtimeServer, ScriptedReply, tone

pytestmark = pytest.mark.timeout(60)

Seen = RealtimeErrorEvent | RealtimeAudioOutputEvent | RealtimeReconnectedEvent
E = TypeVar("E", RealtimeErrorEvent, RealtimeAudioOutputEvent, RealtimeReconnectedEvent)
REPLY = tone(440, 0.2, sample_rate=24000).to_int16().to_bytes()


class Session:
    """The plugin on the local server, with what it reported."""

    def __init__(self, server: OpenAIRealtimeServer) -> None:
        client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
        self.llm = openai_plugin.Realtime(client=client, retry=RetryPolicy(initial_delay=0.01))
        self.seen: list[Seen] = []

        @self.llm.events.subscribe
        async def on_event(event: Seen) -> None:
            self.seen.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.seen if isinstance(e, kind)]

    @property
    def audio_bytes(self) -> int:
        return sum(len(e.audio_data.to_bytes()) for e in self.of(RealtimeAudioOutputEvent))

    async def next_turn_is_answered(self, server: OpenAIRealtimeServer) -> None:
        before = self.audio_bytes
        server.script(ScriptedReply(transcript="still here", audio=REPLY))
        await self.llm.simple_response("are you there?")
        await wait_until(lambda: self.audio_bytes >= before + len(REPLY), 5, "the next reply")


async def test_an_audio_delta_over_30_s_is_one_error_and_the_session_goes_on() -> None:
    async with OpenAIRealtimeServer() as server:
        s = Session(server)
        await s.llm.connect()
        try:
            await server.wait_for(lambda: bool(server.received_of("session.update")))
            # a reply whose 31 s of audio comes in one delta (2 MB of base64)
            await server.respond(ScriptedReply(audio=bytes(2 * 24000 * 31), chunk_ms=31_000))
            await wait_until(lambda: bool(s.of(RealtimeErrorEvent)), 5, "an error event")
            await s.next_turn_is_answered(server)
        finally:
            await s.llm.close()
    (error,) = s.of(RealtimeErrorEvent)
    assert isinstance(error.error, ProtocolViolation)
    assert str(error.error) == (
        "an audio delta of 1984000 base64 chars, over the limit of "
        f"{protocol.MAX_AUDIO_DELTA_CHARS} (30 s of 24000 Hz audio)"
    )
    assert s.audio_bytes == len(REPLY)  # nothing of the refused delta was played
    assert len(server.connections) == 1 and s.llm.reconnects == 0
    assert server.invalid_events == []


async def test_a_message_over_16_mib_is_refused_unread_and_the_session_goes_on() -> None:
    async with OpenAIRealtimeServer() as server:
        s = Session(server)
        await s.llm.connect()
        try:
            await server.wait_for(lambda: bool(server.received_of("session.update")))
            await server.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": "resp_big",
                    "item_id": "item_big",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "A" * MAX_MESSAGE_BYTES,
                }
            )
            # the SDK's socket stops at the bound (inflating it, or from the frame header if
            # uncompressed) and closes with 1009: a new link
            await server.wait_connections(2)
            await wait_until(lambda: bool(s.of(RealtimeReconnectedEvent)), 5, "a reconnect")
            await s.next_turn_is_answered(server)
        finally:
            await s.llm.close()
    first = server.connections[0].ws
    assert first is not None and first.close_code == 1009
    (reconnected,) = s.of(RealtimeReconnectedEvent)
    assert "1009" in reconnected.reason and str(MAX_MESSAGE_BYTES) in reconnected.reason
    # our side closed it (the server sent no close code): still one error, before the reconnect
    (error,) = s.of(RealtimeErrorEvent)
    assert isinstance(error.error, ProtocolViolation)
    assert "1009" in str(error.error) and str(MAX_MESSAGE_BYTES) in str(error.error)
    assert s.seen.index(error) < s.seen.index(reconnected)
    assert s.audio_bytes == len(REPLY) and s.llm.reconnects == 1
    assert server.invalid_events == []
