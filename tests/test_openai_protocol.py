"""The OpenAI Realtime translation layer, driven by feeding dicts (no network)."""

from __future__ import annotations

import base64
import json

import pytest

from vision_agents.core.llm.tools import ToolSchema
from vision_agents.plugins.openai import protocol as p
from vision_agents.testing.openai_server import ValidationFailed, validate_client_event


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


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
        p.session_update(p.SessionSettings(tools=[tool], instructions="hi")),
        p.session_update(p.SessionSettings(turn_detection=None, output_modalities=["text"])),
        p.audio_append(b"\1\0" * 10),
        p.audio_commit(),
        p.audio_clear(),
        p.image_item(b"\xff\xd8"),
        p.item_create(p.user_text_item("hi")),
        p.item_create(p.assistant_text_item("yo")),
        p.item_create(p.function_call_item("c", "get", "{}")),
        p.item_create(p.function_output_item("c", "{}")),
        p.response_create(),
        p.response_create("be brief", p.new_reply_tag()),
        p.response_cancel(),
        p.truncate("item_1", 1234),
    ]
    for event in events:
        validate_client_event(json.loads(p.dumps(event)))


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
    s = p.SessionSettings(model="m", instructions="I", voice="ara").to_session()
    assert s["type"] == "realtime" and s["model"] == "m" and s["instructions"] == "I"
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"] == {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "ara"}
    assert s["audio"]["input"]["turn_detection"]["type"] == "server_vad"


def test_audio_transcripts_and_one_done_per_response() -> None:
    st = p.ProtocolState()
    assert st.feed({"type": "response.created", "response": {"id": "r1"}}) == []
    out = st.feed(audio_delta("r1", "i1", 100)) + st.feed(audio_delta("r1", "i1", 100))
    assert [type(e) for e in out] == [p.AudioDelta, p.AudioDelta]
    assert len(out[0].pcm) == 4800  # type: ignore[union-attr]
    out = st.feed(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "r1",
            "item_id": "i1",
            "transcript": "hello",
        }
    )
    assert out == [p.AgentTranscript("hello", "r1", "i1")]
    out = st.feed({"type": "response.done", "response": {"id": "r1", "status": "completed"}})
    assert out == [p.AudioDone("r1", False), p.ResponseFinished("r1", "completed", "hello", None)]
    assert st.history[-1] == p.assistant_text_item("hello")
    out = st.feed(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "u",
            "transcript": "hi there",
        }
    )
    assert out == [p.UserTranscript("hi there", "u")]


def test_tool_call_arguments_assembled_from_deltas_and_output_deferred() -> None:
    st = p.ProtocolState()
    st.feed({"type": "response.created", "response": {"id": "r"}})
    st.feed(
        {
            "type": "response.output_item.added",
            "response_id": "r",
            "item": {"id": "it", "type": "function_call", "name": "get"},
        }
    )
    for piece in ('{"x":', '"y"}'):
        st.feed(
            {
                "type": "response.function_call_arguments.delta",
                "response_id": "r",
                "item_id": "it",
                "delta": piece,
            }
        )
    out = st.feed(
        {
            "type": "response.function_call_arguments.done",
            "response_id": "r",
            "item_id": "it",
            "call_id": "c1",
        }
    )
    assert out == [p.ToolCall("c1", "get", '{"x":"y"}')]
    # a result while the response is active: output now, response.create after response.done
    events = st.tool_output("c1", '{"result": 1}')
    assert [e["type"] for e in events] == ["conversation.item.create"]
    out = st.feed({"type": "response.done", "response": {"id": "r", "status": "completed"}})
    assert out[-1] == p.Send(p.response_create())
    # two calls in one response: a single response.create once both are answered
    for cid in ("a", "b"):
        st.feed(
            {
                "type": "response.function_call_arguments.done",
                "response_id": "r2",
                "item_id": cid,
                "call_id": cid,
                "name": "get",
                "arguments": "{}",
            }
        )
    st.feed({"type": "response.done", "response": {"id": "r2", "status": "completed"}})
    assert [e["type"] for e in st.tool_output("a", "{}")] == ["conversation.item.create"]
    assert [e["type"] for e in st.tool_output("b", "{}")] == [
        "conversation.item.create",
        "response.create",
    ]


def test_barge_in_truncates_at_the_played_position() -> None:
    clock = Clock()
    st = p.ProtocolState(clock=clock)
    st.feed({"type": "response.created", "response": {"id": "r"}})
    for _ in range(30):  # 3 s of audio arrives at once
        st.feed(audio_delta("r", "i", 100))
    clock.now += 1.25  # 1.25 s of it played
    out = st.feed({"type": "input_audio_buffer.speech_started", "item_id": "u"})
    assert out == [
        p.SpeechStarted("u"),
        p.Send(p.response_cancel()),
        p.Send(p.truncate("i", 1250)),
        p.AudioDone("r", True),
    ]
    # the cancelled response.done does not send a second audio done
    out = st.feed({"type": "response.done", "response": {"id": "r", "status": "cancelled"}})
    assert out == [p.ResponseFinished("r", "cancelled", "", None)]


def test_barge_in_after_response_done_truncates_what_still_plays() -> None:
    clock = Clock()
    st = p.ProtocolState(clock=clock)
    st.feed({"type": "response.created", "response": {"id": "r"}})
    st.feed(audio_delta("r", "i", 2000))
    st.feed({"type": "response.done", "response": {"id": "r", "status": "completed"}})
    clock.now += 0.5
    assert st.interrupt() == [p.Send(p.truncate("i", 500)), p.AudioDone("r", True)]
    assert st.interrupt() == []  # nothing plays any more


def test_truncation_never_passes_the_audio_received() -> None:
    clock = Clock()
    st = p.ProtocolState(clock=clock)
    st.feed(audio_delta("r", "i", 200))
    clock.now += 5
    out = st.interrupt()  # all of it played already: nothing to truncate
    assert not any(
        isinstance(e, p.Send) and e.event["type"] == "conversation.item.truncate" for e in out
    )


def test_replay_gives_settings_then_the_conversation() -> None:
    st = p.ProtocolState()
    st.remember(p.user_text_item("one"))
    st.tool_output("c", "{}")
    events = st.replay(p.SessionSettings())
    assert [e["type"] for e in events] == ["session.update"] + ["conversation.item.create"] * 2
    assert events[1]["item"] == p.user_text_item("one")


def test_error_event() -> None:
    out = p.ProtocolState().feed(
        {"type": "error", "error": {"message": "bad", "code": "x", "event_id": "e"}}
    )
    assert out == [p.ServerError("bad", "x", "e")]


def test_player_position_wins_over_the_clock_estimate() -> None:
    clock = Clock()
    st = p.ProtocolState(clock=clock)
    st.response_played_ms = {"r": 400.0}.get
    st.feed({"type": "response.created", "response": {"id": "r"}})
    st.feed(audio_delta("r", "i", 2000))
    clock.now += 1.5  # the clock says 1.5 s, the player says 0.4 s
    out = st.interrupt()
    assert p.Send(p.truncate("i", 400)) in out


def test_webrtc_audio_comes_from_the_track_while_the_buffer_streams() -> None:
    clock = Clock()
    st = p.ProtocolState(clock=clock, media_audio=True)
    pcm = b"\1\0" * 2400  # 100 ms
    assert st.track_audio(pcm) == []  # silence between responses is not the model's voice
    st.feed({"type": "response.created", "response": {"id": "r"}})
    item = {"id": "i", "type": "message", "role": "assistant", "content": []}
    st.feed({"type": "response.output_item.added", "response_id": "r", "item": item})
    st.feed({"type": "output_audio_buffer.started", "response_id": "r"})
    assert st.track_audio(pcm) == [p.AudioDelta(pcm, "r", "i")]
    # response.done comes before the audio finished streaming: no done event yet
    out = st.feed({"type": "response.done", "response": {"id": "r", "status": "completed"}})
    assert out == [p.ResponseFinished("r", "completed", "", None)]
    st.track_audio(pcm)
    clock.now += 0.15
    out = st.feed({"type": "input_audio_buffer.speech_started", "item_id": "u"})
    assert out == [
        p.SpeechStarted("u"),
        p.Send(p.truncate("i", 150)),
        p.Send(p.output_audio_clear()),
        p.AudioDone("r", True),
    ]
    assert st.track_audio(pcm) == []  # the rest of the stream is dropped


def test_webrtc_stopped_buffer_ends_the_audio() -> None:
    st = p.ProtocolState(media_audio=True)
    st.feed({"type": "response.created", "response": {"id": "r"}})
    st.feed({"type": "output_audio_buffer.started", "response_id": "r"})
    st.track_audio(b"\1\0" * 480)
    out = st.feed({"type": "output_audio_buffer.stopped", "response_id": "r"})
    assert out == [p.AudioDone("r", False)]
    assert st.feed({"type": "output_audio_buffer.stopped", "response_id": "r"}) == []
