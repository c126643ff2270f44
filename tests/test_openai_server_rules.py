"""The local OpenAI Realtime server against the service's documented behaviour.

Driven through the official ``openai`` SDK: the event sequences of a response (each event
checked with the SDK's own server event types), token usage, and the rules the service
enforces, each refused as the service refuses it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("openai")
pytest.importorskip("aiohttp")

import openai
from openai.resources.realtime.realtime import AsyncRealtimeConnection

from vision_agents.testing.openai_server import (
    BYTES_PER_MS,
    OpenAIRealtimeServer,
    ScriptedReply,
    Tokens,
)

TONE = b"\x10\x20" * (BYTES_PER_MS // 2) * 300  # 300 ms of 24 kHz s16 audio
Event = dict[str, Any]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIRealtimeServer]:
    async with OpenAIRealtimeServer() as srv:
        yield srv
        assert srv.invalid_events == []


@contextlib.asynccontextmanager
async def connect(server: OpenAIRealtimeServer) -> AsyncIterator[AsyncRealtimeConnection]:
    client = openai.AsyncOpenAI(api_key="test", base_url=server.base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        yield conn


async def until(
    conn: AsyncRealtimeConnection, kind: str, seen: list[Event] | None = None, within: float = 5
) -> Event:
    """Read events until one of ``kind`` (all of them kept in ``seen``)."""

    async def read() -> Event:
        while True:
            event: Event = (await conn.recv()).model_dump(exclude_unset=True)
            if seen is not None:
                seen.append(event)
            if event["type"] == kind:
                return event

    return await asyncio.wait_for(read(), within)


async def error_code(conn: AsyncRealtimeConnection) -> str:
    return str((await until(conn, "error"))["error"]["code"])


async def test_an_audio_reply_is_the_services_event_sequence(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="hello there you", audio=TONE))
    seen: list[Event] = []
    async with connect(server) as conn:
        await conn.response.create()
        done = await until(conn, "response.done", seen)
    kinds = [e["type"] for e in seen if e["type"] != "session.created"]
    deltas = kinds.count("response.output_audio.delta")
    assert deltas == 3  # 300 ms in 100 ms chunks
    assert [k for k in kinds if not k.endswith(".delta")] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    transcript = "".join(
        e["delta"] for e in seen if e["type"] == "response.output_audio_transcript.delta"
    )
    assert transcript == "hello there you"
    response = done["response"]
    assert response["status"] == "completed"
    [item] = response["output"]
    assert item["role"] == "assistant" and item["status"] == "completed"
    assert item["content"] == [{"type": "output_audio", "transcript": "hello there you"}]
    usage = response["usage"]
    assert usage["output_token_details"] == {"text_tokens": 4, "audio_tokens": 6}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] == 10


async def test_a_function_call_is_the_services_event_sequence(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(tool_calls=[("get_weather", {"city": "Paris"})]))
    seen: list[Event] = []
    async with connect(server) as conn:
        await conn.response.create()
        done = await until(conn, "response.done", seen)
    kinds = [e["type"] for e in seen if e["type"] != "session.created"]
    assert kinds == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    [item] = done["response"]["output"]
    assert item["type"] == "function_call" and item["status"] == "completed"
    assert json.loads(item["arguments"]) == {"city": "Paris"}
    added = next(e for e in seen if e["type"] == "response.output_item.added")
    assert added["item"]["call_id"] == item["call_id"]


async def test_usage_totals_match_the_response_done_events_and_count_cached_context(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(
        ScriptedReply(transcript="one two", audio=TONE), ScriptedReply(text="three four five")
    )
    usages: list[Event] = []
    async with connect(server) as conn:
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "twelve chars"}],
            }
        )
        await conn.input_audio_buffer.append(audio=base64.b64encode(TONE).decode())
        await conn.response.create()
        usages.append((await until(conn, "response.done"))["response"]["usage"])
        await conn.response.create()
        usages.append((await until(conn, "response.done"))["response"]["usage"])
    first, second = usages
    # Input: 12 chars of text (3 tokens) + 300 ms of user audio (3 tokens at 100 ms a token).
    assert first["input_token_details"]["text_tokens"] == 3
    assert first["input_token_details"]["audio_tokens"] == 3
    assert first["input_token_details"]["cached_tokens"] == 0
    # The second response re-reads the whole conversation; what the first read is cached.
    assert second["input_tokens"] == 3 + 3 + 2 + 6  # + the first reply's transcript and audio
    assert second["input_token_details"]["cached_tokens"] == second["input_tokens"]
    totals = server.usage
    assert totals.responses == 2
    assert totals.input_tokens == first["input_tokens"] + second["input_tokens"]
    assert totals.output_tokens == first["output_tokens"] + second["output_tokens"]
    assert totals.cached_tokens == second["input_token_details"]["cached_tokens"]
    assert totals.output == Tokens(text=2 + 4, audio=6)


async def test_the_session_expires_at_its_cap_and_keeps_answering_with_the_error() -> None:
    async with OpenAIRealtimeServer(session_limit_s=0.3) as server:
        server.script(ScriptedReply(transcript="never", audio=TONE * 10, pace=0.05))
        async with connect(server) as conn:
            await conn.response.create()
            await until(conn, "response.created")
            error = await until(conn, "error", within=3)
            assert error["error"]["code"] == "session_expired"
            assert "0.005 minutes" in error["error"]["message"]
            # The socket stays open; every later event gets the same error, nothing else.
            for _ in range(2):
                await conn.response.create()
                assert await error_code(conn) == "session_expired"
            current = server.current
            assert current is not None and current.expired and not current.closed
        assert len(server.received_of("response.create")) == 3
        assert server.invalid_events == []


async def test_the_default_cap_is_the_services_sixty_minutes(
    server: OpenAIRealtimeServer,
) -> None:
    assert server.session_limit_s == 3600
    async with connect(server) as conn:
        await server.wait_connections(1)
        await server.expire_session()
        error = await until(conn, "error")
    assert error["error"]["message"] == "Your session hit the maximum duration of 60 minutes."


async def test_response_create_is_refused_while_a_response_is_active(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="long", audio=TONE * 4, pace=0.1))
    async with connect(server) as conn:
        await conn.response.create()
        await until(conn, "response.output_audio.delta")
        await conn.response.create()
        assert await error_code(conn) == "conversation_already_has_active_response"
        done = await until(conn, "response.done")
        assert done["response"]["status"] == "completed"


async def test_cancel_with_nothing_active_is_an_error_and_cancel_ends_a_reply(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="one two three", audio=TONE * 4, pace=0.1))
    async with connect(server) as conn:
        await conn.response.cancel()
        assert await error_code(conn) == "response_cancel_not_active"
        await conn.response.create()
        await until(conn, "response.output_audio.delta")
        await conn.response.cancel()
        seen: list[Event] = []
        done = await until(conn, "response.done", seen)
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    [item] = done["response"]["output"]
    assert item["status"] == "incomplete"
    assert [e["type"] for e in seen][-3:] == [
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]


@pytest.mark.parametrize("interrupt_response", [True, False])
async def test_server_vad_cancels_the_reply_on_speech_start(
    server: OpenAIRealtimeServer, interrupt_response: bool
) -> None:
    server.script(ScriptedReply(transcript="one two three", audio=TONE * 4, pace=0.1))
    vad: Any = {"type": "server_vad", "interrupt_response": interrupt_response}
    async with connect(server) as conn:
        await conn.session.update(
            session={"type": "realtime", "audio": {"input": {"turn_detection": vad}}}
        )
        await until(conn, "session.updated")
        await conn.response.create()
        await until(conn, "response.output_audio.delta")
        await server.speech_started()
        done = await until(conn, "response.done")
    if interrupt_response:
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"
    else:
        assert done["response"]["status"] == "completed"


async def test_a_user_turn_commits_the_audio_and_server_vad_answers_it(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="heard you"))
    seen: list[Event] = []
    async with connect(server) as conn:
        await conn.input_audio_buffer.append(audio=base64.b64encode(TONE).decode())
        await server.wait_for(lambda: server.audio_bytes == len(TONE))
        await server.user_turn("hello")
        await until(conn, "response.done", seen)
    kinds = [e["type"] for e in seen]
    assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
    user = next(e for e in seen if e["type"] == "conversation.item.done")["item"]
    assert user["role"] == "user" and user["content"][0]["type"] == "input_audio"


async def test_tool_outputs_are_accepted_only_for_calls_in_the_conversation(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(tool_calls=[("lookup", {"q": 1})]))
    async with connect(server) as conn:
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_unknown", "output": "{}"}
        )
        assert await error_code(conn) == "invalid_tool_call_id"
        await conn.response.create()
        done = await until(conn, "response.done")
        call_id = done["response"]["output"][0]["call_id"]
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call_id, "output": "{}"}
        )
        added = await until(conn, "conversation.item.added")
        assert added["item"]["call_id"] == call_id
        # A call the client put in the conversation itself counts too.
        await conn.conversation.item.create(
            item={"type": "function_call", "call_id": "call_mine", "name": "f", "arguments": "{}"}
        )
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_mine", "output": "{}"}
        )
        await until(conn, "conversation.item.added")
        added = await until(conn, "conversation.item.added")
        assert added["item"]["call_id"] == "call_mine"
    assert [e["code"] for e in server.errors] == ["invalid_tool_call_id"]


async def test_only_assistant_audio_is_truncated_and_never_past_its_end(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="words", audio=TONE))  # 300 ms
    async with connect(server) as conn:
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x"}],
            }
        )
        user_id = (await until(conn, "conversation.item.added"))["item"]["id"]
        await conn.conversation.item.truncate(item_id=user_id, content_index=0, audio_end_ms=10)
        assert await error_code(conn) == "invalid_value"
        await conn.response.create()
        done = await until(conn, "response.done")
        reply_id = done["response"]["output"][0]["id"]
        await conn.conversation.item.truncate(item_id=reply_id, content_index=0, audio_end_ms=301)
        error = (await until(conn, "error"))["error"]
        assert error["message"] == "Audio content of 300ms is already shorter than 301ms"
        await conn.conversation.item.truncate(item_id=reply_id, content_index=0, audio_end_ms=120)
        truncated = await until(conn, "conversation.item.truncated")
        assert truncated["audio_end_ms"] == 120
        await conn.conversation.item.retrieve(item_id=reply_id)
        item = (await until(conn, "conversation.item.retrieved"))["item"]
        assert item["content"][0]["transcript"] == ""  # truncation drops the transcript
        await conn.conversation.item.truncate(item_id="item_nope", content_index=0, audio_end_ms=1)
        assert await error_code(conn) == "item_truncate_invalid_item_id"


async def test_the_voice_is_locked_once_the_session_produced_audio(
    server: OpenAIRealtimeServer,
) -> None:
    server.script(ScriptedReply(transcript="hi", audio=TONE))

    def voice(v: str) -> Any:
        return {"type": "realtime", "audio": {"output": {"voice": v}}}

    async with connect(server) as conn:
        await conn.session.update(session=voice("marin"))
        await until(conn, "session.updated")
        await conn.session.update(session=voice("cedar"))  # no audio yet: allowed
        updated = await until(conn, "session.updated")
        assert updated["session"]["audio"]["output"]["voice"] == "cedar"
        await conn.response.create()
        await until(conn, "response.done")
        await conn.session.update(session=voice("cedar"))  # the same voice: fine
        await until(conn, "session.updated")
        await conn.session.update(session=voice("marin"))
        assert await error_code(conn) == "cannot_update_voice"
    current = server.connections[0]
    assert current.voice == "cedar"


async def test_items_can_be_retrieved_and_unknown_ones_are_an_error(
    server: OpenAIRealtimeServer,
) -> None:
    async with connect(server) as conn:
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x"}],
            }
        )
        item_id = (await until(conn, "conversation.item.added"))["item"]["id"]
        await conn.conversation.item.retrieve(item_id=item_id)
        retrieved = await until(conn, "conversation.item.retrieved")
        assert retrieved["item"]["content"] == [{"type": "input_text", "text": "x"}]
        await conn.conversation.item.retrieve(item_id="item_missing", event_id="rci_item_missing")
        error = (await until(conn, "error"))["error"]
    assert error["code"] == "item_retrieve_invalid_item_id"
    assert error["event_id"] == "rci_item_missing"


async def test_a_sideband_websocket_joins_a_webrtc_call_by_call_id(
    server: OpenAIRealtimeServer,
) -> None:
    import aiohttp
    import aiortc
    import websockets

    server.script(ScriptedReply(text="over the sideband"))
    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("oai-events")
    on_channel: asyncio.Queue[str] = asyncio.Queue()
    channel.on("message", on_channel.put_nowait)
    pc.addTransceiver("audio", direction="sendrecv")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{server.base_url}/realtime/calls",
                data=pc.localDescription.sdp,
                headers={"Authorization": "Bearer k", "Content-Type": "application/sdp"},
            ) as resp:
                assert resp.status == 201
                answer = await resp.text()
                call_id = resp.headers["Location"].rsplit("/", 1)[1]
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(answer, "answer"))
        first = json.loads(await asyncio.wait_for(on_channel.get(), 10))
        assert first["type"] == "session.created"

        client = openai.AsyncOpenAI(api_key="test", base_url=server.base_url)
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with client.realtime.connect(call_id="rtc_unknown"):
                pass
        assert refused.value.response.status_code == 404
        async with client.realtime.connect(call_id=call_id) as side:
            await side.response.create(response={"output_modalities": ["text"]})
            done = await until(side, "response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "over the sideband"

        async def channel_saw_done() -> None:
            while json.loads(await on_channel.get())["type"] != "response.done":
                pass

        await asyncio.wait_for(channel_saw_done(), 5)  # the call sees the same session
        assert len(server.connections) == 1
    finally:
        await pc.close()


async def test_a_failed_response_and_a_failed_transcription_are_reported_as_the_service_does(
    server: OpenAIRealtimeServer,
) -> None:
    failure = {"type": "requests", "code": "rate_limit_exceeded", "message": "Slow down."}
    server.script(ScriptedReply(transcript="never said", audio=TONE, failure=failure))
    seen: list[Event] = []
    async with connect(server) as conn:
        await conn.response.create()
        done = await until(conn, "response.done", seen)
        await server.transcription_failed("Audio too noisy.")
        failed = await until(conn, "conversation.item.input_audio_transcription.failed")
    assert [e["type"] for e in seen[1:]] == ["response.created", "response.done"]
    assert done["response"]["status"] == "failed"
    assert done["response"]["status_details"] == {"type": "failed", "error": failure}
    assert done["response"]["output"] == []
    assert failed["error"]["message"] == "Audio too noisy."
    assert server.usage.output_tokens == 0
