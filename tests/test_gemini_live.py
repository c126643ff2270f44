"""The Gemini plugin through the real google-genai SDK against the strict local server."""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.media_tracks import SyntheticVideoTrack
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.core.utils.video_forwarder import VideoForwarder
from vision_agents.plugins import gemini
from vision_agents.testing import GeminiLiveServer, tone

pytestmark = pytest.mark.timeout(60)


class Collector:
    def __init__(self, llm: gemini.Realtime) -> None:
        self.events: list[Any] = []
        self.changed = asyncio.Condition()

        @llm.events.subscribe
        async def on_any(
            event: RealtimeAudioOutputEvent
            | RealtimeAudioOutputDoneEvent
            | RealtimeResponseEvent
            | RealtimeUserSpeechTranscriptionEvent
            | RealtimeAgentSpeechTranscriptionEvent,
        ) -> None:
            self.events.append(event)
            async with self.changed:
                self.changed.notify_all()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, kind: type, count: int = 1, within: float = 5.0) -> list[Any]:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.of(kind)) >= count)
        return self.of(kind)


@pytest.fixture
async def server() -> AsyncIterator[GeminiLiveServer]:
    async with GeminiLiveServer() as srv:
        yield srv


@pytest.fixture
async def llm(server: GeminiLiveServer) -> AsyncIterator[gemini.Realtime]:
    model = gemini.Realtime(
        model="gemini-live-test", client=server.client(), retry=RetryPolicy(initial_delay=0.01)
    )
    model.set_instructions("Be brief.")
    yield model
    await model.close()


def test_missing_key_error_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        gemini.Realtime()
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    assert gemini.Realtime().provider_name == "gemini_realtime"


async def test_setup_carries_settings_and_audio_arrives_as_16k_pcm(
    server: GeminiLiveServer, llm: gemini.Realtime
) -> None:
    @llm.register_function
    def lookup(city: str) -> str:
        """Look a city up.

        Args:
            city: The city.
        """
        return city

    await llm.connect()
    assert llm.is_connected
    setup = server.setups[0]
    assert setup["model"] == "models/gemini-live-test"
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert "inputAudioTranscription" in setup and "outputAudioTranscription" in setup
    assert setup["sessionResumption"] == {}
    assert setup["systemInstruction"]["parts"][0]["text"] == "Be brief."
    decl = setup["tools"][0]["functionDeclarations"][0]
    assert decl["name"] == "lookup" and "city" in decl["parameters_json_schema"]["properties"]

    # 1 s of 48 kHz stereo in 20 ms blocks arrives as 16 kHz mono s16 PCM
    source = tone(440, 1.0, sample_rate=48000).resample(48000, 2)
    for block in source.chunks(20):
        await llm.simple_audio_response(block)
    # All of it, not most of it: under load the last blocks arrive later.
    await server.wait_for(lambda: abs(server.audio_seconds() - 1.0) <= 0.02)
    assert {a.mime_type for a in server.audio} == {"audio/pcm;rate=16000"}
    pcm = np.frombuffer(b"".join(a.data for a in server.audio), np.int16)
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float32)))
    assert abs(np.fft.rfftfreq(len(pcm), 1 / 16000)[spectrum.argmax()] - 440) < 3
    assert server.audio_seconds() == pytest.approx(1.0, abs=0.02)
    assert server.rejections == []
    # in 100 ms messages, not one a 20 ms block; the tail went out on its own, unfilled
    sizes = [len(a.data) for a in server.audio]
    assert all(3200 <= n < 3200 + 1280 for n in sizes[:-1]) and 0 < sizes[-1] <= 3200 + 1280
    assert 8 <= len(sizes) <= 11, sizes


async def test_audio_transcripts_text_and_tools_round_trip(
    server: GeminiLiveServer, llm: gemini.Realtime
) -> None:
    server.responder = lambda text: (f"You said {text}", tone(600, 0.5, sample_rate=24000))
    started = asyncio.Event()

    @llm.register_function
    async def slow(seconds: float) -> str:
        """Wait.

        Args:
            seconds: How long.
        """
        started.set()
        await asyncio.sleep(seconds)
        return "done"

    @llm.register_function
    def fail() -> str:
        """Always fails."""
        raise RuntimeError("broken thermometer")

    got = Collector(llm)
    await llm.connect()
    await llm.simple_response("hello")
    [done] = await got.wait(RealtimeAudioOutputDoneEvent)
    assert not done.interrupted
    audio = got.of(RealtimeAudioOutputEvent)
    assert sum(e.audio_data.duration for e in audio) == pytest.approx(0.5, abs=0.01)
    assert {e.audio_data.sample_rate for e in audio} == {24000}
    assert {e.response_id for e in audio} == {done.response_id}
    assert [e.text for e in got.of(RealtimeAgentSpeechTranscriptionEvent)] == ["You said hello"]
    assert server.texts == ["hello"]

    await server.send_input_transcript("what is the weather")
    [heard] = await got.wait(RealtimeUserSpeechTranscriptionEvent)
    assert heard.text == "what is the weather"

    # a slow tool does not block the receive loop; results and errors go back by id
    slow_id = await server.send_tool_call("slow", {"seconds": 0.3})
    fail_id = await server.send_tool_call("fail", {})
    await server.send_text("still talking")
    await got.wait(RealtimeResponseEvent, 2)  # the text arrived while the tool ran
    assert not any(r.get("id") == slow_id for r in server.tool_responses)
    await server.wait_for(lambda: len(server.tool_responses) == 2)
    by_id = {r["id"]: r for r in server.tool_responses}
    assert by_id[slow_id]["response"] == {"result": "done"}
    assert "broken thermometer" in by_id[fail_id]["response"]["error"]

    # the model withdraws a call: the tool is cancelled and nothing is sent
    started.clear()
    gone = await server.send_tool_call("slow", {"seconds": 5})
    await asyncio.wait_for(started.wait(), 2)
    assert gone in llm.pending_tool_calls
    await server.send_tool_cancellation(gone)
    await asyncio.sleep(0.2)
    assert gone not in llm.pending_tool_calls
    assert gone not in {r["id"] for r in server.tool_responses}
    assert server.rejections == []


async def test_interruption_stops_output_at_once(
    server: GeminiLiveServer, llm: gemini.Realtime
) -> None:
    got = Collector(llm)
    await llm.connect()
    await server.send_audio(tone(500, 0.4, sample_rate=24000), turn_complete=False)
    await server.send_interrupted()
    [done] = await got.wait(RealtimeAudioOutputDoneEvent)
    assert done.interrupted
    await server.send_turn_complete()
    await asyncio.sleep(0.1)
    assert len(got.of(RealtimeAudioOutputDoneEvent)) == 1  # no second, uninterrupted done
    await server.send_audio(tone(500, 0.1, sample_rate=24000))
    done2 = (await got.wait(RealtimeAudioOutputDoneEvent, 2))[1]
    assert not done2.interrupted and done2.response_id != done.response_id


async def test_frames_are_jpeg_within_the_size_limit_at_fps() -> None:
    """fps 0.5, 1 and 5 side by side for 10 s: counts within 10%, JPEG, long side capped."""
    seconds = 10.0
    cases = [(0.5, 1024), (1.0, 1024), (5.0, 640)]
    async with (
        GeminiLiveServer() as s1,
        GeminiLiveServer() as s2,
        GeminiLiveServer() as s3,
    ):
        servers = [s1, s2, s3]
        track = SyntheticVideoTrack(fps=15, width=1280, height=720)
        forwarder = VideoForwarder(track, fps=15)
        llms = [
            gemini.Realtime(model="m", fps=fps, max_image_side=side, client=srv.client())
            for (fps, side), srv in zip(cases, servers, strict=True)
        ]
        try:
            for model in llms:
                model.frame_policy = None  # fixed rate: every frame fps offers
                await model.connect()
            for model in llms:
                await model.watch_video_track(track, shared_forwarder=forwarder)
            window_start = time.monotonic()
            await asyncio.sleep(seconds)
            for model in llms:
                await model.stop_watching_video_track()
            window = time.monotonic() - window_start  # the sleep overruns on a loaded machine
            counts = [len(srv.frames) for srv in servers]
            await asyncio.sleep(0.5)
            assert [len(srv.frames) for srv in servers] == counts  # nothing after stop
        finally:
            for model in llms:
                await model.close()
            await forwarder.stop()
    for (fps, side), srv in zip(cases, servers, strict=True):
        frames = srv.frames
        assert {f.mime_type for f in frames} == {"image/jpeg"}
        assert all(max(f.width, f.height) == min(side, 1280) for f in frames)
        if len(frames) > 2:
            # The typical interval: one frame late on a loaded machine does not change it.
            gaps = [b.at - a.at for a, b in itertools.pairwise(frames)]
            assert statistics.median(gaps) == pytest.approx(1 / fps, rel=0.1), (fps, gaps)
        assert len(frames) == pytest.approx(fps * window, abs=max(1, 0.1 * fps * window)), fps


async def test_server_rejects_what_the_service_would(server: GeminiLiveServer) -> None:
    url = f"wss://127.0.0.1:{server.port}/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    ctx: ssl.SSLContext = server.tls.client_context()
    headers = {"x-goog-api-key": "k"}

    async def close_code(*messages: dict[str, Any]) -> int | None:
        async with ws_connect(url, ssl=ctx, additional_headers=headers) as ws:
            for m in messages:
                await ws.send(json.dumps(m))
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else None

    setup = {"setup": {"model": "models/x"}}
    assert await close_code({"realtime_input": {"audio": {"data": "AAAA"}}}) == 1007
    assert await close_code({"setup": {"model": "models/x", "bogus": 1}}) == 1007
    assert (
        await close_code({"setup": {"model": "models/x", "realtimeInputConfig": {"nope": 1}}})
        == 1007
    )
    assert (
        await close_code(
            setup, {"realtime_input": {"video": {"data": "AAAA", "mime_type": "image/jpeg"}}}
        )
        == 1007
    )
    assert (
        await close_code(
            setup, {"tool_response": {"functionResponses": [{"id": "zz", "response": {}}]}}
        )
        == 1007
    )
    assert (
        await close_code(
            {"setup": {"model": "models/x", "sessionResumption": {"handle": "forged"}}}
        )
        == 1008
    )
    ok = {
        "setup": {
            "model": "models/x",
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
        }
    }
    async with ws_connect(url, ssl=ctx, additional_headers=headers) as ws:
        await ws.send(json.dumps(ok))
        assert json.loads(await ws.recv()) == {"setupComplete": {}}
    server.models = ("only-this",)
    assert await close_code(setup) == 1008
    assert len(server.rejections) == 7
