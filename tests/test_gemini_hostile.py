"""A Gemini server that misbehaves: each bad message is reported once, the session goes on."""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import wait_until
from vision_agents.core.errors import ProtocolViolation
from vision_agents.core.llm.events import RealtimeAudioOutputEvent, RealtimeErrorEvent
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
