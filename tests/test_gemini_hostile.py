"""A Gemini server that misbehaves: each bad message is reported once, the session goes on."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import wait_until
from vision_agents.core.errors import ProtocolViolation
from vision_agents.core.llm.events import (
    RealtimeAudioOutputEvent,
    RealtimeErrorEvent,
    RealtimeReconnectedEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import gemini
from vision_agents.testing import GeminiLiveServer, tone

pytestmark = pytest.mark.timeout(60)


async def test_malformed_messages_and_audio_at_a_wrong_rate_are_reported_not_reconnected() -> None:
    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(model="m", client=server.client())
        errors: list[RealtimeErrorEvent] = []
        audio: list[RealtimeAudioOutputEvent] = []

        @llm.events.subscribe
        async def on_event(event: RealtimeErrorEvent | RealtimeAudioOutputEvent) -> None:
            (errors if isinstance(event, RealtimeErrorEvent) else audio).append(event)  # type: ignore[arg-type]

        await llm.connect()
        try:
            await server.wait_connected()
            conn = server._current
            assert conn is not None
            # not a server message at all, then a field of the wrong type
            await conn.ws.send("{not json")
            await conn.ws.send(json.dumps({"serverContent": {"turnComplete": "sometimes"}}))
            # 400 bytes claiming 1 Hz: trusted, that would be 200 s of audio
            blob = {"mimeType": "audio/pcm;rate=1", "data": base64.b64encode(b"\0" * 400).decode()}
            await server.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            await wait_until(lambda: len(errors) >= 3, 5, "three error events")
            # the session still works on the same connection
            await server.send_audio(tone(300, 0.1, sample_rate=24000))
            await wait_until(lambda: bool(audio), 5, "audio after the bad messages")
        finally:
            await llm.close()
    assert all(isinstance(e.error, ProtocolViolation) for e in errors[:3])
    assert "1 Hz" in str(errors[2].error)
    assert server.connection_count == 1 and llm.reconnects == 0
    assert all(a.audio_data.sample_rate == 24000 for a in audio)


async def test_a_message_over_the_socket_limit_is_one_error_then_a_new_connection() -> None:
    # google-genai opens its socket with websockets' default max_size (1 MiB): a bigger
    # message makes our side close with 1009, and no close code comes from the server.
    limit = 2**20
    async with GeminiLiveServer() as server:
        llm = gemini.Realtime(
            model="m", client=server.client(), retry=RetryPolicy(initial_delay=0.01)
        )
        seen: list[RealtimeErrorEvent | RealtimeReconnectedEvent] = []

        @llm.events.subscribe
        async def on_event(event: RealtimeErrorEvent | RealtimeReconnectedEvent) -> None:
            seen.append(event)

        await llm.connect()
        try:
            await server.wait_connected()
            await server.send({"serverContent": {"modelTurn": {"parts": [{"text": "x" * limit}]}}})
            await server.wait_connected(2)
            await wait_until(
                lambda: any(isinstance(e, RealtimeReconnectedEvent) for e in seen), 5, "a reconnect"
            )
        finally:
            await llm.close()
    # the SDK reports only a 1006 (abnormal closure): the runtime says why, once, before
    assert [type(e) for e in seen] == [RealtimeErrorEvent, RealtimeReconnectedEvent], seen
    error = seen[0].error  # type: ignore[union-attr]
    assert isinstance(error, ProtocolViolation)
    assert "1009" in str(error) and str(limit) in str(error)
    assert llm.reconnects == 1
