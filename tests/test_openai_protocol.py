"""The OpenAI Realtime protocol object, driven by feeding dicts (no network)."""

from __future__ import annotations

import base64
import json
import tracemalloc

import pytest

from vision_agents.core.errors import ProtocolViolation, ProviderError
from vision_agents.core.llm import protocol as ev
from vision_agents.core.llm.tools import ToolResult, ToolSchema
from vision_agents.plugins.openai import messages as m
from vision_agents.plugins.openai import protocol as p
from vision_agents.testing.openai_server import ValidationFailed, validate_client_event


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def connected(**kwargs: object) -> p.OpenAIProtocol:
    proto = p.OpenAIProtocol(**kwargs)  # type: ignore[arg-type]
    proto.connection_made()
    proto.data_to_send()
    return proto


def sent(proto: p.OpenAIProtocol) -> list[str]:
    return [e["type"] for e in proto.data_to_send()]


def created(rid: str, tag: str | None = None) -> dict[str, object]:
    return {"type": "response.created", "response": {"id": rid, "metadata": {p.REPLY_TAG: tag}}}


def done(rid: str, status: str = "completed") -> dict[str, object]:
    return {"type": "response.done", "response": {"id": rid, "status": status}}


def audio_delta(rid: str, item: str, ms: int) -> dict[str, object]:
    pcm = b"\0\0" * (24 * ms)
    return {
        "type": "response.output_audio.delta",
        "response_id": rid,
        "item_id": item,
        "delta": base64.b64encode(pcm).decode(),
    }


def test_every_client_event_we_build_passes_the_strict_validator() -> None:
    tool = ToolSchema("get", "d", {"type": "object", "properties": {"x": {"type": "string"}}})
    events = [
        m.session_update(m.SessionSettings(tools=[tool], instructions="hi")),
        m.session_update(m.SessionSettings(turn_detection=None, output_modalities=["text"])),
        m.audio_append(b"\1\0" * 10),
        m.audio_commit(),
        m.audio_clear(),
        m.image_item(b"\xff\xd8"),
        m.item_create(m.user_text_item("hi")),
        m.item_create(m.assistant_text_item("yo")),
        m.item_create(m.function_call_item("c", "get", "{}")),
        m.item_create(m.function_output_item("c", "{}")),
        m.response_create(),
        m.response_create("be brief", {p.REPLY_TAG: "t"}),
        m.response_cancel(),
        m.truncate("item_1", 1234),
    ]
    for event in events:
        validate_client_event(json.loads(m.dumps(event)))


@pytest.mark.parametrize(
    "event",
    [
        {"type": "session.update", "session": {"type": "realtime", "voice_typo": "x"}},
        {"type": "session.update", "session": {"model": "m"}},
        {"type": "response.create", "response": {"instructions": 3}},
        {"type": "input_audio_buffer.append"},
        {"type": "unknown.event"},
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
        },
    ],
)
def test_validator_rejects_bad_events(event: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        validate_client_event(event)


def test_session_settings_on_the_wire() -> None:
    s = m.SessionSettings(model="m", instructions="I", voice="ara").to_session()
    assert s["type"] == "realtime" and s["model"] == "m" and s["instructions"] == "I"
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "ara"}
    assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"


def test_audio_transcripts_and_one_done_per_response() -> None:
    st = connected()
    st.receive(created("r1"))
    st.receive(audio_delta("r1", "i1", 100))
    st.receive(audio_delta("r1", "i1", 100))
    out = st.events_received()
    assert [type(e) for e in out] == [ev.AudioOut, ev.AudioOut]
    assert len(out[0].pcm) == 2400  # type: ignore[union-attr]
    st.receive(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r1",
            "item_id": "i1",
            "transcript": "hello",
        }
    )
    assert st.events_received() == [ev.AgentTranscript("hello", "r1")]
    st.receive(done("r1"))
    assert st.events_received() == [
        ev.AudioDone("r1", False),
        ev.ReplyFinished("r1", "completed", "hello", None),
    ]
    assert st.history[-1] == m.assistant_text_item("hello")
    st.receive(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u",
            "transcript": "hi there",
        }
    )
    assert st.events_received() == [ev.UserTranscript("hi there")]


def test_a_text_turn_during_an_active_reply_asks_for_its_reply_after_response_done() -> None:
    st = connected()
    st.receive(created("r1"))
    st.receive(audio_delta("r1", "i1", 100))
    st.send_text("and also?")
    # the item goes now; response.create would be refused while r1 is active
    assert sent(st) == ["conversation.item.create"]
    st.receive(done("r1"))
    out = st.data_to_send()
    assert [e["type"] for e in out] == ["response.create"]
    tag = out[0]["response"]["metadata"][p.REPLY_TAG]
    # a second request while the first is asked for (no response.created yet) waits too
    st.request_reply("more", "t2")
    assert sent(st) == []
    st.receive(created("r2", tag))
    st.receive(done("r2"))
    out = st.data_to_send()
    assert [(e["type"], e["response"]["instructions"]) for e in out] == [
        ("response.create", "more")
    ]


def test_a_request_that_lost_the_race_with_a_server_started_response_is_sent_again() -> None:
    st = connected()
    st.send_text("hi")
    assert sent(st) == ["conversation.item.create", "response.create"]
    st.receive(created("auto"))  # server VAD started one of its own first
    st.receive({"type": "error", "error": {"code": "conversation_already_has_active_response"}})
    assert st.events_received() == []  # not an error for the user
    st.receive(done("auto"))
    assert sent(st) == ["response.create"]


def test_tool_call_arguments_assembled_from_deltas_and_one_reply_after_all_outputs() -> None:
    st = connected()
    st.receive(created("r"))
    st.receive(
        {
            "type": "response.output_item.added",
            "response_id": "r",
            "item": {"id": "it", "type": "function_call", "name": "get"},
        }
    )
    for piece in ('{"x":', '"y"}'):
        st.receive(
            {
                "type": "response.function_call_arguments.delta",
                "response_id": "r",
                "item_id": "it",
                "delta": piece,
            }
        )
    st.receive(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r",
            "item_id": "it",
            "call_id": "c1",
        }
    )
    assert st.events_received() == [ev.ToolCall("c1", "get", '{"x":"y"}')]
    # a result while the response is active: output now, response.create after response.done
    st.send_tool_result(ToolResult("c1", "get", True, 1, None, 0.0))
    assert sent(st) == ["conversation.item.create"]
    st.receive(done("r"))
    (create,) = st.data_to_send()
    assert create["type"] == "response.create"
    st.receive(created("r1x", create["response"]["metadata"][p.REPLY_TAG]))
    st.receive(done("r1x"))
    # two calls in one response: a single response.create once both are answered
    st.receive(created("r2"))
    for cid in ("a", "b"):
        st.receive(
            {
                "type": "response.function_call_arguments.done",
                "response_id": "r2",
                "item_id": cid,
                "call_id": cid,
                "name": "get",
                "arguments": "{}",
            }
        )
    st.receive(done("r2"))
    st.data_to_send()
    st.send_tool_result(ToolResult("a", "get", True, {}, None, 0.0))
    assert sent(st) == ["conversation.item.create"]
    st.send_tool_result(ToolResult("b", "get", True, {}, None, 0.0))
    assert sent(st) == ["conversation.item.create", "response.create"]


def test_barge_in_with_server_vad_sends_no_cancel_and_truncates_at_the_played_position() -> None:
    clock = Clock()
    st = connected(clock=clock)
    assert st.server_interrupts
    st.receive(created("r"))
    for _ in range(30):  # 3 s of audio arrives at once
        st.receive(audio_delta("r", "i", 100))
    st.events_received()
    clock.now += 1.25  # 1.25 s of it played
    st.receive({"type": "input_audio_buffer.speech_started", "item_id": "u"})
    # the service cancels the response itself: a response.cancel would earn an error
    assert st.data_to_send() == [m.truncate("i", 1250)]
    # the model is told the user speaks (a fresh frame goes), and the reply is cut
    assert st.events_received() == [ev.AudioDone("r", True), ev.UserSpeechStarted()]
    # audio still in flight for the cancelled response is never played
    st.receive(audio_delta("r", "i", 100))
    assert st.events_received() == []
    # the cancelled response.done does not send a second audio done
    st.receive(done("r", "cancelled"))
    assert st.events_received() == [ev.ReplyFinished("r", "cancelled", "", None)]
    # a benign race error never surfaces
    st.receive({"type": "error", "error": {"code": "response_cancel_not_active"}})
    assert st.events_received() == []


def test_barge_in_without_server_vad_cancels_only_what_is_active() -> None:
    clock = Clock()
    st = connected(clock=clock, settings=m.SessionSettings(turn_detection=None))
    st.receive(created("r"))
    st.receive(audio_delta("r", "i", 2000))
    clock.now += 0.5
    st.interrupt()
    assert st.data_to_send() == [m.response_cancel(), m.truncate("i", 500)]
    st.receive(done("r", "cancelled"))
    st.interrupt()  # nothing active, nothing playing: nothing to send
    assert st.data_to_send() == []


def test_barge_in_after_response_done_truncates_what_still_plays() -> None:
    clock = Clock()
    st = connected(clock=clock)
    st.receive(created("r"))
    st.receive(audio_delta("r", "i", 2000))
    st.receive(done("r"))
    st.events_received()
    clock.now += 0.5
    st.interrupt()
    assert st.data_to_send() == [m.truncate("i", 500)]
    assert st.events_received() == [ev.AudioDone("r", True)]
    st.interrupt()
    assert st.data_to_send() == [] and st.events_received() == []


def test_truncation_never_passes_the_audio_received() -> None:
    clock = Clock()
    st = connected(clock=clock)
    st.receive(created("r"))
    st.receive(audio_delta("r", "i", 200))
    clock.now += 5
    st.interrupt()  # all of it played already: nothing to truncate
    assert "conversation.item.truncate" not in sent(st)


def test_a_reply_cut_by_a_drop_is_closed_as_interrupted_and_asked_for_again() -> None:
    st = connected()
    st.send_text("tell me")
    tag = st.data_to_send()[-1]["response"]["metadata"][p.REPLY_TAG]
    st.receive(created("r1", tag))
    st.receive(audio_delta("r1", "i1", 100))
    st.events_received()
    st.connection_lost(delivered=False)
    assert st.events_received() == [
        ev.AudioDone("r1", True),
        ev.ReplyFinished("r1", "interrupted", "", None),
    ]
    st.connection_made()
    out = st.data_to_send()
    assert [e["type"] for e in out] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert out[-1]["response"]["metadata"][p.REPLY_TAG] == tag  # the same reply future
    # the new reply has its own id and its audio is not taken for the old one's
    st.receive(created("r2", tag))
    st.receive(audio_delta("r2", "i2", 100))
    assert [e.response_id for e in st.events_received()] == ["r2"]  # type: ignore[union-attr]


def test_replay_order_after_a_reconnect_never_sends_an_output_without_its_call() -> None:
    st = connected(max_history=4)
    st.send_text("one")
    st.receive(created("r", None))
    st.receive(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r",
            "item_id": "f",
            "call_id": "c",
            "name": "get",
            "arguments": "{}",
        }
    )
    st.receive(done("r"))
    st.send_tool_result(ToolResult("c", "get", True, 1, None, 0.0))
    st.connection_lost(delivered=False)
    st.send_text("two")  # while no link is up: kept, replayed in order
    st.send_audio(b"\1\0" * 2400)  # the user's audio in the gap: held
    st.connection_made()
    out = st.data_to_send()
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in out]
    assert kinds == [
        ("session.update", None),
        ("conversation.item.create", "message"),
        ("conversation.item.create", "function_call"),
        ("conversation.item.create", "function_call_output"),
        ("conversation.item.create", "message"),
        ("input_audio_buffer.append", None),
        ("response.create", None),
    ]
    # trimming the history never leaves an output whose call was cut away
    st.send_text("three")
    items = st.replay_items()
    assert items[0]["type"] != "function_call_output"
    assert {i.get("call_id") for i in items if i["type"] == "function_call_output"} <= {
        i.get("call_id") for i in items if i["type"] == "function_call"
    }


def appended_audio(st: p.OpenAIProtocol) -> list[bytes]:
    return [
        base64.b64decode(e["audio"])
        for e in st.data_to_send()
        if e["type"] == "input_audio_buffer.append"
    ]


def test_only_audio_past_the_last_commit_point_is_sent_again_on_a_new_link() -> None:
    st = connected()  # server VAD
    st.send_audio(b"\1\0" * 240)  # 10 ms each at 24 kHz
    st.send_audio(b"\2\0" * 240)
    st.data_to_send()
    st.audio_acknowledged(st.audio_mark())  # a pong proves the socket, not the model
    # server VAD: speech stopped 15 ms in, and that much became an item
    st.receive({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 15, "item_id": "i"})
    st.receive({"type": "input_audio_buffer.committed", "item_id": "i"})
    st.send_audio(b"\3\0" * 240)
    st.connection_lost(delivered=False)
    st.connection_made()
    assert appended_audio(st) == [b"\2\0" * 120 + b"\3\0" * 240]
    # A planned switch too: the new session never holds the old one's uncommitted buffer.
    st.send_audio(b"\4\0" * 240)
    st.connection_lost(delivered=True)
    st.connection_made()
    assert appended_audio(st) == [b"\2\0" * 120 + b"\3\0" * 240 + b"\4\0" * 240]


def test_without_turn_detection_a_reply_request_commits_the_turn_first() -> None:
    st = connected(settings=p.SessionSettings(turn_detection=None))
    st.send_audio(b"\1\0" * 2400)  # 100 ms
    st.data_to_send()
    st.request_reply(tag="t1")
    assert sent(st) == ["input_audio_buffer.commit", "response.create"]
    st.receive({"type": "input_audio_buffer.committed", "item_id": "i"})
    st.receive(created("r1", "t1"))
    st.receive(done("r1"))
    st.send_audio(b"\2\0" * 240)
    st.data_to_send()
    st.request_reply()  # 10 ms since the commit: too little to commit (the API refuses < 100 ms)
    assert sent(st) == ["response.create"]
    st.connection_lost(delivered=False)
    st.connection_made()
    assert appended_audio(st) == [b"\2\0" * 240]


def test_cleared_audio_is_never_sent_again() -> None:
    st = connected(settings=p.SessionSettings(turn_detection=None))
    st.send_audio(b"\1\0" * 240)
    st.clear_audio()
    st.data_to_send()
    st.receive({"type": "input_audio_buffer.cleared"})
    st.send_audio(b"\2\0" * 240)
    st.connection_lost(delivered=False)
    st.connection_made()
    assert appended_audio(st) == [b"\2\0" * 240]


def test_user_audio_goes_out_in_chunks_of_audio_chunk_ms() -> None:
    st = connected(audio_chunk_ms=100)
    frames = [bytes([i, 0]) * 480 for i in range(12)]  # 20 ms each at 24 kHz
    for frame in frames[:4]:
        st.send_audio(frame)
    assert appended_audio(st) == [] and st.audio_pending
    st.send_audio(frames[4])
    assert appended_audio(st) == [b"".join(frames[:5])]
    for frame in frames[5:7]:
        st.send_audio(frame)
    # any other message first sends what is gathered: the service hears it in order
    st.commit_audio()
    out = st.data_to_send()
    assert [e["type"] for e in out] == ["input_audio_buffer.append", "input_audio_buffer.commit"]
    assert base64.b64decode(out[0]["audio"]) == b"".join(frames[5:7])
    assert not st.audio_pending and st.audio_messages == 2


def test_gathered_audio_survives_a_dead_link_after_the_audio_sent_before_it() -> None:
    st = connected(audio_chunk_ms=100)
    first = b"\1\0" * 2400  # 100 ms: sent, never acknowledged
    st.send_audio(first)
    tail = b"\2\0" * 960  # 40 ms: still gathered when the link dies
    st.send_audio(tail)
    st.data_to_send()
    st.connection_lost(delivered=False)
    gap = b"\3\0" * 480  # said while no link was up
    st.send_audio(gap)
    st.connection_made()
    assert b"".join(appended_audio(st)) == first + tail + gap


def test_over_webrtc_audio_is_never_gathered() -> None:
    st = connected(audio_chunk_ms=100, media_audio=True)
    st.send_audio(b"\1\0" * 480)
    assert not st.audio_pending
    assert len(st.data_to_send()) == 1


def test_audio_chunk_ms_out_of_range_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="audio_chunk_ms"):
        p.OpenAIProtocol(audio_chunk_ms=5000)


def test_session_expired_asks_for_a_new_connection_once() -> None:
    st = connected()
    for _ in range(3):
        st.receive({"type": "error", "error": {"code": "session_expired", "message": "x"}})
    assert st.events_received() == [ev.SwitchRequested("the session expired", usable=False)]


def test_errors_keep_the_provider_code() -> None:
    st = connected()
    st.receive({"type": "error", "error": {"message": "bad", "code": "x", "event_id": "e"}})
    (event,) = st.events_received()
    assert isinstance(event, ev.ErrorReported) and isinstance(event.error, ProviderError)
    assert (event.error.code, event.error.message, event.error.event_id) == ("x", "bad", "e")


def test_player_position_wins_over_the_clock_estimate() -> None:
    clock = Clock()
    st = connected(clock=clock)
    st.response_played_ms = {"r": 400.0}.get
    st.receive(created("r"))
    st.receive(audio_delta("r", "i", 2000))
    clock.now += 1.5  # the clock says 1.5 s, the player says 0.4 s
    st.interrupt()
    assert m.truncate("i", 400) in st.data_to_send()


def test_webrtc_audio_comes_from_the_track_and_server_vad_barge_in_is_left_to_the_server() -> None:
    clock = Clock()
    st = connected(clock=clock, media_audio=True)
    pcm = b"\1\0" * 2400  # 100 ms
    st.track_audio(pcm)
    assert st.events_received() == []  # silence between responses is not the model's voice
    st.receive(created("r"))
    item = {"id": "i", "type": "message", "role": "assistant", "content": []}
    st.receive({"type": "response.output_item.added", "response_id": "r", "item": item})
    st.receive({"type": "output_audio_buffer.started", "response_id": "r"})
    st.track_audio(pcm)
    assert [type(e) for e in st.events_received()] == [ev.AudioOut]
    # response.done comes before the audio finished streaming: no done event yet
    st.receive(done("r"))
    assert st.events_received() == [ev.ReplyFinished("r", "completed", "", None)]
    st.track_audio(pcm)
    st.events_received()
    clock.now += 0.15
    st.receive({"type": "input_audio_buffer.speech_started", "item_id": "u"})
    assert st.data_to_send() == []  # the server clears and truncates by itself
    assert st.events_received() == [ev.AudioDone("r", True), ev.UserSpeechStarted()]
    st.track_audio(pcm)
    assert st.events_received() == []  # the rest of the stream is dropped
    # an explicit interrupt over WebRTC does tell the server
    st.receive(created("r2"))
    st.receive({"type": "output_audio_buffer.started", "response_id": "r2"})
    st.track_audio(pcm)
    st.interrupt()
    assert [e["type"] for e in st.data_to_send()] == [
        "response.cancel",
        "conversation.item.truncate",
        "output_audio_buffer.clear",
    ]


def test_webrtc_stopped_buffer_ends_the_audio() -> None:
    st = connected(media_audio=True)
    st.receive(created("r"))
    st.receive({"type": "output_audio_buffer.started", "response_id": "r"})
    st.track_audio(b"\1\0" * 480)
    st.events_received()
    st.receive({"type": "output_audio_buffer.stopped", "response_id": "r"})
    assert st.events_received() == [ev.AudioDone("r", False)]
    st.receive({"type": "output_audio_buffer.stopped", "response_id": "r"})
    assert st.events_received() == []


def test_failed_responses_and_transcriptions_are_typed_errors() -> None:
    st = connected()
    st.receive(
        {
            "type": "response.done",
            "response": {
                "id": "r",
                "status": "failed",
                "status_details": {"error": {"code": "rate_limit_exceeded", "message": "slow"}},
            },
        }
    )
    st.receive(
        {
            "type": "conversation.item.input_audio_transcription.failed",
            "error": {"code": "audio_unintelligible", "message": "?"},
        }
    )
    errors = [e.error for e in st.events_received() if isinstance(e, ev.ErrorReported)]
    assert [(e.code, e.message) for e in errors] == [  # type: ignore[attr-defined]
        ("rate_limit_exceeded", "slow"),
        ("audio_unintelligible", "?"),
    ]


@pytest.mark.parametrize(
    "event",
    [
        {"type": "response.created", "response": "not an object"},
        {"type": "response.done", "response": {"id": "r", "status": "failed", "status_details": 1}},
        {"type": "error", "error": ["x"]},
        {"type": "response.output_audio.delta", "response_id": "r", "delta": {"a": 1}},
        {"type": "response.output_item.added", "response_id": "r", "item": 3},
        {"type": "conversation.item.input_audio_transcription.failed", "error": "x"},
    ],
)
def test_a_malformed_event_is_refused_as_a_protocol_violation(event: dict[str, object]) -> None:
    from vision_agents.core.errors import ProtocolViolation

    st = connected()
    st.receive(created("r"))  # output events are for a response the server opened
    with pytest.raises(ProtocolViolation, match="malformed"):
        st.receive(event)
    st.receive(created("r2"))  # the session goes on
    st.receive(audio_delta("r2", "i", 20))
    assert [type(e) for e in st.events_received()][-1] is ev.AudioOut


def test_an_audio_delta_over_30_s_is_refused_undecoded_and_the_reply_goes_on() -> None:
    st = connected()
    st.receive(created("r"))
    st.receive(audio_delta("r", "i", 30_000))  # 30 s in one delta: the most the service sends
    (whole,) = st.events_received()
    assert isinstance(whole, ev.AudioOut) and len(whole.pcm) == p.MAX_AUDIO_DELTA_BYTES // 2
    # 31 s of silence, valid base64: refused on its length, before any of it is decoded
    over = dict(audio_delta("r", "i", 0), delta="A" * (2 * 24000 * 31 * 4 // 3))
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolViolation) as refused:
            st.receive(over)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"{peak} bytes taken to refuse it (decoding it takes over 1.4 MB)"
    assert str(refused.value) == (
        f"an audio delta of 1984000 base64 chars, over the limit of {p.MAX_AUDIO_DELTA_CHARS}"
        " (30 s of 24000 Hz audio)"
    )
    assert st.events_received() == [] and st.data_to_send() == []
    # the same reply goes on, then the next turn
    st.receive(audio_delta("r", "i", 100))
    st.receive(done("r"))
    events = st.events_received()
    assert [type(e) for e in events] == [ev.AudioOut, ev.AudioDone, ev.ReplyFinished]
    assert len(events[0].pcm) == 2400  # type: ignore[union-attr]
    st.send_text("still there?")
    assert sent(st) == ["conversation.item.create", "response.create"]


@pytest.mark.parametrize(
    "event",
    [
        audio_delta("ghost", "i", 10),
        dict(audio_delta("ghost", "i", 0), delta="A" * 2_000_000),  # oversize as well
        {"type": "response.output_text.delta", "response_id": "ghost", "delta": "hi"},
        {"type": "response.function_call_arguments.delta", "response_id": "ghost", "delta": "{"},
    ],
    ids=["audio", "oversize-audio", "text", "call-arguments"],
)
def test_output_for_a_response_never_created_is_refused_and_leaves_no_response(
    event: dict[str, object],
) -> None:
    # The API sends response.created before any of a response's output: output for any
    # other id is refused, and neither blocks the next reply nor is owed one after a drop.
    st = connected()
    with pytest.raises(ProtocolViolation, match=r"'ghost', which no response\.created opened"):
        st.receive(event)
    assert st.events_received() == [] and not st.response_active
    st.send_text("hi")
    assert sent(st) == ["conversation.item.create", "response.create"]
    st.connection_lost(delivered=False)
    st.connection_made()
    assert sent(st).count("response.create") == 1 and st.pending_replies == 1
    # while a response is active, it stays the one its own output goes to
    st.receive(created("r"))
    with pytest.raises(ProtocolViolation):
        st.receive(event)
    st.receive(audio_delta("r", "i", 100))
    st.receive(done("r"))
    assert [type(e) for e in st.events_received()] == [ev.AudioOut, ev.AudioDone, ev.ReplyFinished]


def test_frames_count_as_in_flight_until_the_service_confirms_them() -> None:
    clock = Clock()
    proto = connected(clock=clock)
    proto.send_frame(b"\xff\xd8one")
    first = proto.data_to_send()[-1]
    assert first["type"] == "conversation.item.create"
    first_id = first["item"]["id"]
    assert first_id.startswith("va_frame_") and len(first_id) <= 32
    validate_client_event(first)
    # Before the service has confirmed any frame nothing is held back (one that never
    # confirms must not stop the video).
    proto.send_frame(b"\xff\xd8two")
    assert proto.frames_in_flight == 0
    proto.receive({"type": "conversation.item.added", "item": {"id": first_id}})
    assert proto.frames_in_flight == 1  # the second is still unconfirmed
    proto.send_frame(b"\xff\xd8three")
    assert proto.frames_in_flight == 2
    # A confirmation that never comes stops counting after FRAME_CONFIRM_TIMEOUT_S.
    clock.now += p.FRAME_CONFIRM_TIMEOUT_S + 0.1
    assert proto.frames_in_flight == 0
    # A new link starts from nothing: confirmations are per link.
    proto.send_frame(b"\xff\xd8four")
    proto.connection_lost(delivered=False)
    proto.connection_made()
    assert proto.frames_in_flight == 0
