"""The OpenAI Realtime plugin through the real ``openai`` SDK against the local server."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import numpy as np
import openai
import pytest

from tests.media_tracks import SyntheticVideoTrack
from vision_agents.core.errors import MissingApiKeyError
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
    RealtimeErrorEvent,
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
    ToolCallCompletedEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import OpenAIRealtimeServer, ScriptedReply, dominant_hz, tone

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def server() -> AsyncIterator[OpenAIRealtimeServer]:
    async with OpenAIRealtimeServer() as s:
        yield s


@pytest.fixture(params=["websocket", "webrtc"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_llm(server: OpenAIRealtimeServer, **kwargs: object) -> openai_plugin.Realtime:
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    return openai_plugin.Realtime(client=client, retry=RetryPolicy(initial_delay=0.01), **kwargs)  # type: ignore[arg-type]


def pcm24(seconds: float) -> bytes:
    return tone(440, seconds, sample_rate=24000).to_int16().to_bytes()


async def test_session_settings_audio_and_transcripts(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    llm = make_llm(server, voice="cedar", instructions="Be brief.", transport=transport)

    @llm.register_function
    async def get_time(city: str) -> str:
        """Time in a city.

        Args:
            city: The city.
        """
        return "noon"

    user: list[str] = []
    agent: list[str] = []
    audio: list[RealtimeAudioOutputEvent] = []
    done: list[RealtimeAudioOutputDoneEvent] = []

    @llm.events.subscribe
    async def on_user(e: RealtimeUserSpeechTranscriptionEvent) -> None:
        user.append(e.text)

    @llm.events.subscribe
    async def on_agent(e: RealtimeAgentSpeechTranscriptionEvent) -> None:
        agent.append(e.text)

    @llm.events.subscribe
    async def on_audio(e: RealtimeAudioOutputEvent) -> None:
        audio.append(e)

    @llm.events.subscribe
    async def on_done(e: RealtimeAudioOutputDoneEvent) -> None:
        done.append(e)

    await llm.connect()
    try:
        await server.wait_for(lambda: bool(server.received_of("session.update")))
        session = server.received_of("session.update")[0]["session"]
        assert session["type"] == "realtime" and session["model"] == "gpt-realtime"
        assert session["instructions"] == "Be brief."
        assert session["audio"]["output"]["voice"] == "cedar"
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert [t["name"] for t in session["tools"]] == ["get_time"]

        assert server.connections[0].transport == transport
        # 1 s of 48 kHz stereo goes out as 1 s at 24 kHz mono (WebRTC: on the audio track,
        # played at real time among silence: the server decodes and measures what it heard)
        sent = tone(440, 1.0, sample_rate=48000).to_channels(2)
        for chunk in sent.chunks(20):
            await llm.simple_audio_response(chunk)
        if transport == "websocket":
            await server.wait_for(lambda: server.audio_seconds > 0.98)
            assert server.audio_seconds == pytest.approx(1.0, abs=0.01)
            # in 100 ms appends (the default audio_chunk_ms), the clip's tail included
            appends = server.received_of("input_audio_buffer.append")
            assert 10 <= len(appends) <= 11, len(appends)
        else:
            await server.wait_for(lambda: server.audio_seconds > 1.3, within=5)
        assert server.voiced_seconds() == pytest.approx(1.0, abs=0.06)
        heard = bytes(server.connections[0].audio)
        assert dominant_hz(heard, 24000) == pytest.approx(440, abs=5)

        await server.user_transcript("what time is it")
        server.script(ScriptedReply(transcript="it is noon", audio=pcm24(0.5)))
        await llm.simple_response("hello")
        await server.wait_for(lambda: bool(done) and bool(agent))
        assert user == ["what time is it"] and agent == ["it is noon"]
        received = sum(e.audio_data.duration for e in audio)
        assert received == pytest.approx(0.5, abs=0.001 if transport == "websocket" else 0.06)
        reply = b"".join(e.audio_data.to_bytes() for e in audio)
        assert dominant_hz(reply, 24000) == pytest.approx(440, abs=5)
        assert audio[0].audio_data.sample_rate == 24000
        assert len(done) == 1 and not done[0].interrupted
        assert server.errors == []
    finally:
        await llm.close()


async def test_text_responses_and_generate_reply(server: OpenAIRealtimeServer) -> None:
    llm = make_llm(server, output_modalities=["text"], turn_detection=None)
    texts: list[RealtimeResponseEvent] = []

    @llm.events.subscribe
    async def on_text(e: RealtimeResponseEvent) -> None:
        texts.append(e)

    await llm.connect()
    try:
        server.script(ScriptedReply(text="forty two"))
        assert await llm.generate_reply("answer", timeout=5) == "forty two"
        assert [t.text for t in texts if t.is_complete] == ["forty two"]
        assert server.received_of("response.create")[0]["response"]["instructions"] == "answer"
        await llm.commit_audio()
        await llm.clear_audio()
        await server.wait_for(lambda: bool(server.received_of("input_audio_buffer.clear")))
        # asked for while the connection drops: answered on the next connection, not lost
        server.responder = lambda _e: ScriptedReply(text="late", tool_calls=[])
        server.script()
        await server.drop()
        assert await llm.generate_reply(timeout=5) == "late"
        # a reply that cannot come in time (it needs a round trip): the future times out
        fut = llm.generate_reply(timeout=0)
        with pytest.raises(TimeoutError):
            await fut
    finally:
        await llm.close()


async def test_tool_round_trip_including_a_tool_that_raises(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    llm = make_llm(server, transport=transport)
    completed: list[ToolCallCompletedEvent] = []

    @llm.register_function
    async def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: First.
            b: Second.
        """
        return a + b

    @llm.register_function
    def explode() -> None:
        """Always fails."""
        raise RuntimeError("boom")

    @llm.events.subscribe
    async def on_tool(e: ToolCallCompletedEvent) -> None:
        completed.append(e)

    await llm.connect()
    try:
        server.script(
            ScriptedReply(tool_calls=[("add", {"a": 2, "b": 3}), ("explode", {})]),
            ScriptedReply(transcript="5, and the other failed", audio=pcm24(0.1)),
        )
        await llm.simple_response("add and explode")
        await server.wait_for(lambda: len(server.received_of("response.create")) >= 2)
        await asyncio.sleep(0.3)
        outputs = [
            e["item"]
            for e in server.received_of("conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert len(outputs) == 2
        by_payload = [json.loads(o["output"]) for o in outputs]
        assert {"result": 5} in by_payload
        assert any("boom" in str(p.get("error")) for p in by_payload)
        assert {c.name: c.ok for c in completed} == {"add": True, "explode": False}
        # one response.create, after both outputs
        kinds = [e["type"] for e in server.received if e["type"] != "session.update"]
        assert kinds[-3:] == ["conversation.item.create"] * 2 + ["response.create"]
        assert len(server.received_of("response.create")) == 2
        assert server.errors == []
    finally:
        await llm.close()


async def test_barge_in_truncates_at_the_played_position(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    llm = make_llm(server, transport=transport)
    done: list[RealtimeAudioOutputDoneEvent] = []

    @llm.events.subscribe
    async def on_done(e: RealtimeAudioOutputDoneEvent) -> None:
        done.append(e)

    await llm.connect()
    try:
        # WebSocket: 3 s of audio arrives faster than real time. WebRTC: it streams on the
        # track at real time. Either way the user talks over it after ~1 s.
        server.script(ScriptedReply(transcript="long", audio=pcm24(3.0), pace=0.0))
        await llm.simple_response("talk")
        await server.wait_for(lambda: server.received_of("response.create") != [])
        await asyncio.sleep(1.0)
        await server.speech_started()
        # the player is told to stop with an interrupted done event
        await server.wait_for(lambda: any(d.interrupted for d in done))
        # server VAD cancels by itself: a response.cancel would only earn an error
        assert server.received_of("response.cancel") == []
        if transport == "websocket":
            # only the client knows what was played: it truncates there
            await server.wait_for(lambda: bool(server.received_of("conversation.item.truncate")))
            truncate = server.received_of("conversation.item.truncate")[0]
            assert 900 <= truncate["audio_end_ms"] <= 1200, truncate
            assert [d.interrupted for d in done] == [False, True]
        else:  # the server played it, so the server clears and truncates by itself
            assert [d.interrupted for d in done] == [True]
            assert server.received_of("output_audio_buffer.clear") == []
            assert server.received_of("conversation.item.truncate") == []
            assert server.connections[0].rtc is not None
            assert server.connections[0].rtc.audio_out.buffered_ms == 0
        assert server.errors == []
    finally:
        await llm.close()


async def test_twenty_drops_recovered_with_the_conversation_intact(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    llm = make_llm(server, transport=transport)
    errors: list[RealtimeErrorEvent] = []

    @llm.events.subscribe
    async def on_error(e: RealtimeErrorEvent) -> None:
        errors.append(e)

    await llm.connect()
    try:
        for turn in range(20):
            server.script(ScriptedReply(transcript=f"answer {turn}", audio=pcm24(0.02)))
            await llm.simple_response(f"question {turn}")
            await server.wait_for(lambda t=turn: len(llm.conversation) >= 2 * (t + 1))  # type: ignore[misc]
            await server.drop()
            await server.wait_connections(turn + 2)
        await server.wait_for(
            lambda: len(server.current.received) >= 41 if server.current else False
        )
        assert llm.reconnects == 20 and llm.is_connected
        last = server.current
        assert last is not None
        assert last.received[0]["type"] == "session.update"
        replayed = [e["item"] for e in last.received[1:] if e["type"] == "conversation.item.create"]
        texts = [c.get("text") for i in replayed for c in i["content"]]
        expected: list[str] = []
        for turn in range(20):
            expected += [f"question {turn}", f"answer {turn}"]
        assert texts == expected
        assert server.errors == []
    finally:
        await llm.close()


async def test_frames_at_fps(server: OpenAIRealtimeServer) -> None:
    """Both transports, 0.5/1/5 fps, all six sessions at once over the same 10 s."""
    seconds = 10.0
    llms = {
        (transport, fps): make_llm(server, fps=fps, max_image_side=320, transport=transport)
        for transport in ("websocket", "webrtc")
        for fps in (0.5, 1.0, 5.0)
    }
    tracks = [SyntheticVideoTrack(fps=30, width=1280, height=720) for _ in llms]
    for llm in llms.values():
        llm.frame_policy = None  # fixed rate: every frame fps offers
        await llm.connect()
    try:
        for llm, track in zip(llms.values(), tracks, strict=True):
            await llm.watch_video_track(track)
        window_start = time.monotonic()
        await asyncio.sleep(seconds)
        for llm in llms.values():
            await llm.stop_watching_video_track()
        window = time.monotonic() - window_start  # the sleep overruns on a loaded machine

        # Frames already sent may still be in flight to the server: wait for them, not a while.
        def received() -> list[int]:
            return [
                sum(e["type"] == "conversation.item.create" for e in c.received)
                for c in server.connections
            ]

        sent = [llm.frames_sent for llm in llms.values()]
        try:
            await server.wait_for(lambda: received() == sent, within=10)
        except TimeoutError:
            raise AssertionError(f"the server received {received()} of {sent} frames") from None
        # The forwarder offers frames at fps; a frame the link is not ready for (the one before
        # it still unconfirmed, as on a starved machine) is skipped, never queued.
        for (transport, fps), llm in llms.items():
            expected = fps * window
            offered = llm.frames_sent + llm.frames_skipped
            assert expected * 0.9 <= offered <= expected * 1.1 + 1, (
                transport,
                fps,
                llm.frames_sent,
                llm.frames_skipped,
            )
        # the server received every frame sent, per session (sessions connected in order)
        for conn, ((transport, _fps), llm) in zip(server.connections, llms.items(), strict=True):
            assert conn.transport == transport
            images = [e for e in conn.received if e["type"] == "conversation.item.create"]
            assert len(images) == llm.frames_sent
        import cv2

        for transport in ("websocket", "webrtc"):
            conn = next(c for c in server.connections if c.transport == transport)
            image = next(e for e in conn.received if e["type"] == "conversation.item.create")
            url = image["item"]["content"][0]["image_url"]
            assert url.startswith("data:image/jpeg;base64,")
            jpeg = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
            decoded = cv2.imdecode(jpeg, 1)
            assert decoded is not None and max(decoded.shape[:2]) == 320
        assert server.errors == []
    finally:
        for llm in llms.values():
            await llm.close()
        for track in tracks:
            track.stop()


async def test_max_session_duration_recycles_between_turns(server: OpenAIRealtimeServer) -> None:
    llm = make_llm(server, max_session_duration=0.3)
    await llm.connect()
    try:
        await llm.simple_response("remember me")
        await server.wait_connections(2, within=5)
        await server.wait_for(lambda: bool(server.current and len(server.current.received) >= 2))
        assert server.current is not None
        assert server.current.received[1]["item"] == {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "remember me"}],
        }
    finally:
        await llm.close()


async def test_strict_server_answers_bad_events_with_error(server: OpenAIRealtimeServer) -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.send({"type": "session.update", "session": {"type": "realtime", "bogus": 1}})  # type: ignore[arg-type]
        while True:
            event = await conn.recv()
            if event.type == "error":
                assert event.error.code == "unknown_parameter"
                assert "bogus" in event.error.message
                break
    assert server.received == []


async def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # at construction, as on every provider (not at the first connect)
    with pytest.raises(MissingApiKeyError, match="OPENAI_API_KEY"):
        openai_plugin.Realtime()


async def test_client_secret_carries_the_agent_session(server: OpenAIRealtimeServer) -> None:
    llm = make_llm(server, voice="cedar", instructions="Hi")

    @llm.register_function
    def ping() -> str:
        """Ping."""
        return "pong"

    secret = await openai_plugin.create_client_secret(llm, expires_in=60)
    assert secret.value.startswith("ek_")
    assert secret.session["instructions"] == "Hi"
    assert secret.session["audio"]["output"]["voice"] == "cedar"
    assert [t["name"] for t in secret.session["tools"]] == ["ping"]
    # the browser's key opens a session
    client = openai.AsyncOpenAI(api_key=secret.value, base_url=server.base_url)
    server.api_key = "server-only"
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"


async def test_session_updates_and_interrupt_on_the_wire(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    llm = make_llm(server, transport=transport)
    done: list[RealtimeAudioOutputDoneEvent] = []
    first_audio: list[float] = []

    @llm.events.subscribe
    async def on_done(e: RealtimeAudioOutputDoneEvent | RealtimeAudioOutputEvent) -> None:
        if isinstance(e, RealtimeAudioOutputDoneEvent):
            done.append(e)
        elif not first_audio:
            first_audio.append(time.monotonic())

    await llm.connect()
    try:
        await server.wait_for(lambda: len(server.received_of("session.update")) == 1)
        await llm.update_instructions("Speak French.")

        @llm.register_function
        def lookup(term: str) -> str:
            """Look a term up.

            Args:
                term: The term.
            """
            return term

        await llm.update_tools()
        await llm.update_options(voice="verse", turn_detection=None, output_modalities=["audio"])
        await server.wait_for(lambda: len(server.received_of("session.update")) == 4)
        first, instructions, tools, options = (
            e["session"] for e in server.received_of("session.update")
        )
        assert "model" in first and "model" not in instructions  # the model is set once
        assert instructions["instructions"] == "Speak French." and instructions["tools"] == []
        assert [t["name"] for t in tools["tools"]] == ["lookup"]
        assert tools["tools"][0]["parameters"]["required"] == ["term"]
        assert options["audio"]["output"]["voice"] == "verse"
        assert options["audio"]["input"]["turn_detection"] is None
        assert options["instructions"] == "Speak French."  # earlier settings are kept
        assert server.connections[-1].session["audio"]["output"]["voice"] == "verse"

        # interrupt() while the model is still producing its reply
        server.script(ScriptedReply(transcript="long", audio=pcm24(3.0), pace=0.05))
        await llm.simple_response("talk")
        await server.wait_for(lambda: bool(first_audio))
        await asyncio.sleep(0.4)
        interrupted_after_ms = (time.monotonic() - first_audio[0]) * 1000
        await llm.interrupt()
        await server.wait_for(lambda: bool(server.received_of("conversation.item.truncate")))
        # over WebSocket the reply is still being produced; over WebRTC it may be done while
        # its audio still plays on the track (then there is nothing to cancel, only to clear)
        cancels = len(server.received_of("response.cancel"))
        assert cancels == 1 if transport == "websocket" else cancels <= 1
        end_ms = server.received_of("conversation.item.truncate")[0]["audio_end_ms"]
        # cut where the audio had got to (real time since its first chunk, on a busy machine)
        assert 0 < end_ms <= interrupted_after_ms + 20, (end_ms, interrupted_after_ms)
        assert end_ms >= interrupted_after_ms - 250, (end_ms, interrupted_after_ms)
        if transport == "webrtc":
            assert len(server.received_of("output_audio_buffer.clear")) == 1
        await server.wait_for(lambda: any(d.interrupted for d in done))
        assert [d.interrupted for d in done] == [True]
        assert server.errors == []
    finally:
        await llm.close()


async def test_calls_endpoint_takes_raw_sdp_and_checks_the_session(
    server: OpenAIRealtimeServer,
) -> None:
    import aiohttp
    import aiortc

    pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("oai-events")
        await pc.setLocalDescription(await pc.createOffer())
        url = f"{server.base_url}/realtime/calls"
        auth = {"Authorization": "Bearer k"}
        async with aiohttp.ClientSession() as http:
            raw = {**auth, "Content-Type": "application/sdp"}
            async with http.post(url, data=pc.localDescription.sdp, headers=raw) as resp:
                assert resp.status == 201 and resp.content_type == "application/sdp"
                assert (await resp.text()).startswith("v=0")
                assert resp.headers["Location"].startswith("/v1/realtime/calls/rtc_")
            form = aiohttp.FormData()
            form.add_field("sdp", pc.localDescription.sdp, content_type="application/sdp")
            bad = json.dumps({"type": "realtime", "bogus": True})
            form.add_field("session", bad, content_type="application/json")
            async with http.post(url, data=form, headers=auth) as resp:
                assert resp.status == 400
                assert "bogus" in (await resp.json())["error"]["message"]
    finally:
        await pc.close()
