"""The Gemini protocol object, fed messages directly (no sockets)."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import numpy as np
import pytest
from google.genai import types

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ProtocolViolation, UnsupportedFeature
from vision_agents.core.llm.protocol import (
    AgentTranscript,
    AudioDone,
    AudioOut,
    ErrorReported,
    ProtocolEvent,
    ReplyFinished,
    SwitchRequested,
    TextOut,
    ToolCall,
    ToolCancel,
    UserTranscript,
)
from vision_agents.core.llm.tools import ToolResult, ToolSchema
from vision_agents.plugins.gemini import protocol
from vision_agents.plugins.gemini.protocol import (
    ClientContent,
    GeminiProtocol,
    RealtimeInput,
    SessionSettings,
    ToolResponse,
)


def msg(body: Mapping[str, object]) -> types.LiveServerMessage:
    return types.LiveServerMessage.model_validate(body)


def audio_msg(samples: int = 480, rate: int = 24000) -> types.LiveServerMessage:
    data = base64.b64encode(np.arange(samples, dtype=np.int16).tobytes()).decode()
    blob = {"mimeType": f"audio/pcm;rate={rate}", "data": data}
    return msg({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})


TURN_COMPLETE = {"serverContent": {"turnComplete": True}}


class Feed:
    """A connected protocol object; ``feed(message)`` returns the events it produced."""

    def __init__(self) -> None:
        self.p = GeminiProtocol()
        self.p.connection_made()

    def feed(self, message: types.LiveServerMessage) -> list[ProtocolEvent]:
        self.p.receive(message)
        return self.p.events_received()


def test_audio_turn_becomes_audio_then_done_with_one_response_id() -> None:
    t = Feed()
    first = t.feed(audio_msg())
    second = t.feed(audio_msg())
    assert isinstance(first[0], AudioOut) and isinstance(second[0], AudioOut)
    assert first[0].pcm.sample_rate == 24000 and len(first[0].pcm) == 480
    assert np.array_equal(first[0].pcm.samples[0], np.arange(480, dtype=np.int16))
    assert first[0].response_id == second[0].response_id
    rid = first[0].response_id
    assert t.feed(msg(TURN_COMPLETE)) == [
        AudioDone(rid, interrupted=False),
        ReplyFinished(rid, "completed", "", None),
    ]
    nxt = t.feed(audio_msg())
    assert isinstance(nxt[0], AudioOut) and nxt[0].response_id != rid


def test_interrupted_closes_the_response_and_turn_complete_does_not_repeat_it() -> None:
    t = Feed()
    (out,) = t.feed(audio_msg())
    assert isinstance(out, AudioOut)
    assert t.feed(msg({"serverContent": {"interrupted": True}})) == [
        AudioDone(out.response_id, interrupted=True),
        ReplyFinished(out.response_id, "interrupted", "", None),
    ]
    assert t.feed(msg(TURN_COMPLETE)) == []
    assert t.p.response_id is None


def test_a_reply_cut_by_a_drop_or_go_away_is_closed_and_the_next_has_a_new_id() -> None:
    t = Feed()
    (out,) = t.feed(audio_msg())
    assert isinstance(out, AudioOut)
    assert t.feed(msg({"goAway": {"timeLeft": "1s"}})) == [
        SwitchRequested("goAway (time left 1s)", within_s=1.0)
    ]
    t.p.connection_lost(delivered=True)
    assert t.p.events_received() == [
        AudioDone(out.response_id, interrupted=True),
        ReplyFinished(out.response_id, "interrupted", "", None),
    ]
    t.p.connection_made()
    (nxt,) = t.feed(audio_msg())
    assert isinstance(nxt, AudioOut) and nxt.response_id != out.response_id


def test_a_text_turn_during_a_reply_is_sent_after_the_turn_completes() -> None:
    t = Feed()
    t.feed(audio_msg())
    t.p.send_text("and then?")
    assert t.p.data_to_send() == []  # it would cut the reply short
    t.feed(msg(TURN_COMPLETE))
    (sent,) = t.p.data_to_send()
    assert isinstance(sent, ClientContent) and sent.turns is not None
    assert sent.turns.parts is not None and sent.turns.parts[0].text == "and then?"
    t.feed(msg({"serverContent": {"outputTranscription": {"text": "then this"}}}))
    t.feed(msg(TURN_COMPLETE))
    # a tagged request resolves with the reply that answers it
    t.p.request_reply(tag="t1")
    t.p.data_to_send()
    t.feed(msg({"serverContent": {"outputTranscription": {"text": "sure"}}}))
    events = t.feed(msg(TURN_COMPLETE))
    finished = [e for e in events if isinstance(e, ReplyFinished)]
    assert [(f.text, f.tag) for f in finished] == [("sure", "t1")]


def test_transcripts_text_and_final_text() -> None:
    t = Feed()
    assert t.feed(msg({"serverContent": {"inputTranscription": {"text": "hi"}}})) == [
        UserTranscript("hi")
    ]
    out = t.feed(msg({"serverContent": {"outputTranscription": {"text": "hello"}}}))
    assert len(out) == 1 and isinstance(out[0], AgentTranscript) and out[0].text == "hello"
    a = t.feed(msg({"serverContent": {"modelTurn": {"parts": [{"text": "Hel"}]}}}))
    b = t.feed(
        msg(
            {
                "serverContent": {
                    "modelTurn": {"parts": [{"text": "lo"}, {"text": "x", "thought": True}]}
                }
            }
        )
    )
    assert [type(e) for e in a + b] == [TextOut, TextOut]
    end = t.feed(msg(TURN_COMPLETE))
    assert isinstance(a[0], TextOut)
    rid = a[0].response_id
    assert end[:2] == [TextOut("Hello", rid, is_complete=True), AudioDone(rid, False)]


def test_tool_calls_cancellations_and_handles() -> None:
    t = Feed()
    calls = t.feed(
        msg(
            {
                "toolCall": {
                    "functionCalls": [{"id": "c1", "name": "f", "args": {"a": 1}}, {"name": "g"}]
                }
            }
        )
    )
    assert calls[0] == ToolCall("c1", "f", {"a": 1})
    assert isinstance(calls[1], ToolCall) and calls[1].name == "g" and calls[1].call_id
    assert t.feed(msg({"toolCallCancellation": {"ids": ["c1"]}})) == [ToolCancel(("c1",))]
    # the handle is kept wherever it arrives, newest wins, non-resumable ones are ignored
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}}))
    both = t.feed(
        msg(
            {
                "sessionResumptionUpdate": {"newHandle": "h2", "resumable": True},
                "serverContent": {"inputTranscription": {"text": "x"}},
            }
        )
    )
    assert both == [UserTranscript("x")]
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h3", "resumable": False}}))
    t.feed(msg({"sessionResumptionUpdate": {}}))
    assert t.p.handle == "h2"


def test_tool_results_not_covered_by_the_resumed_handle_are_sent_again() -> None:
    t = Feed()
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h1"}}))
    first = ToolResult("c1", "f", True, 1, None, 0.0)
    t.p.send_tool_result(first)
    t.p.data_to_send()
    # a goAway: the next connection's config is built with h1...
    t.feed(msg({"goAway": {"timeLeft": "1s"}}))
    config = t.p.connect_config(SessionSettings(), instructions="", tools=[])
    assert config.session_resumption == types.SessionResumptionConfig(handle="h1")
    # ...while the old connection still checkpoints the result under h2
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h2"}}))
    t.p.connection_lost(delivered=True)
    t.p.connection_made()
    (resent,) = t.p.data_to_send()
    assert isinstance(resent, ToolResponse) and [r.id for r in resent.responses] == ["c1"]
    # once a connection resumed after the result's checkpoint, it is not sent again
    t.p.connect_config(SessionSettings(), instructions="", tools=[])
    t.p.connection_lost(delivered=True)
    t.p.connection_made()
    assert t.p.data_to_send() == []


def test_what_came_after_the_resumed_handle_is_given_again_and_lost_calls_are_reported() -> None:
    t = Feed()
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h1"}}))
    t.p.audio_acknowledged(t.p.audio_mark())
    t.p.send_audio(b"\1\0" * 320)  # after h1: the resumed session will not have heard it
    t.p.send_text("what time is it?")
    t.feed(msg({"toolCall": {"functionCalls": [{"id": "late", "name": "clock"}]}}))
    assert not t.p.ready_to_switch  # a call waits for its result: handles are not resumable
    t.p.data_to_send()
    t.p.connect_config(SessionSettings(), instructions="", tools=[])  # resumes from h1
    t.p.connection_lost(delivered=True)
    t.p.connection_made()
    out = t.p.data_to_send()
    assert [type(o) for o in out] == [RealtimeInput, ClientContent]  # audio, then the turn
    (event,) = [e for e in t.p.events_received() if isinstance(e, ErrorReported)]
    assert "late" in str(event.error) and t.p.lost_calls == ["late"]
    t.p.send_tool_result(ToolResult("late", "clock", True, "noon", None, 0.0))
    assert t.p.data_to_send() == []  # the resumed session never made that call


def test_audio_in_the_gap_is_held_and_sent_after_the_resumed_turns() -> None:
    t = Feed()
    t.p.connection_lost(delivered=False)
    t.p.send_audio(b"\1\0" * 1600)
    t.p.send_frame(b"\xff\xd8jpeg")  # stale video is not kept
    t.p.send_text("hello")
    assert t.p.data_to_send() == []
    t.p.connection_made()
    out = t.p.data_to_send()
    assert [type(o) for o in out] == [RealtimeInput, ClientContent]
    assert isinstance(out[0], RealtimeInput) and out[0].audio is not None
    assert out[0].audio.data == b"\1\0" * 1600
    assert t.p.frames_dropped == 1


def test_provider_audio_at_another_rate_or_too_big_is_refused_with_an_error() -> None:
    t = Feed()
    (event,) = t.feed(audio_msg(rate=1))
    assert isinstance(event, ErrorReported) and isinstance(event.error, ProtocolViolation)
    assert "1 Hz" in str(event.error)
    (event,) = t.feed(audio_msg(samples=protocol.MAX_AUDIO_PART_BYTES))
    assert isinstance(event, ErrorReported) and "limit" in str(event.error)


def test_interrupt_is_unsupported_and_says_why() -> None:
    with pytest.raises(UnsupportedFeature, match="activity detection"):
        Feed().p.interrupt()


def test_config_carries_modalities_transcription_resumption_compression_and_tools() -> None:
    schema = ToolSchema("f", "does f", {"type": "object", "properties": {"a": {"type": "string"}}})
    settings = SessionSettings(
        voice="Puck", compression_trigger_tokens=20000, compression_target_tokens=10000
    )
    config = protocol.build_config(settings, instructions="be brief", tools=[schema], handle="h9")
    assert config.response_modalities == [types.Modality.AUDIO]
    assert config.session_resumption == types.SessionResumptionConfig(handle="h9")
    assert config.input_audio_transcription is not None
    assert config.output_audio_transcription is not None
    assert config.context_window_compression is not None
    assert config.context_window_compression.trigger_tokens == 20000
    assert config.speech_config is not None
    assert config.tools
    tool = config.tools[0]
    assert isinstance(tool, types.Tool) and tool.function_declarations
    decl = tool.function_declarations[0]
    assert decl.name == "f" and decl.parameters_json_schema == schema.parameters
    default = protocol.build_config(SessionSettings())
    assert default.context_window_compression is not None  # on unless turned off
    assert default.context_window_compression.sliding_window is not None
    plain = protocol.build_config(
        SessionSettings(input_transcription=False, context_compression=False)
    )
    assert plain.input_audio_transcription is None and plain.context_window_compression is None
    assert plain.session_resumption is not None and plain.session_resumption.handle is None


def test_outgoing_payloads() -> None:
    pcm = PcmData(np.zeros(160, dtype=np.int16), 16000, 1)
    blob = protocol.audio_blob(pcm)
    assert blob.mime_type == "audio/pcm;rate=16000" and blob.data == bytes(320)
    with pytest.raises(ValueError, match="16000 Hz mono"):
        protocol.audio_blob(PcmData(np.zeros(480, dtype=np.int16), 48000, 1))
    with pytest.raises(ValueError, match="JPEG"):
        protocol.jpeg_blob(b"\x89PNG....")
    ok = ToolResult("c1", "f", True, {"x": 1}, None, 0.1)
    bad = ToolResult("c2", "f", False, None, "boom", 0.1)
    assert protocol.function_response(ok).response == {"result": {"x": 1}}
    assert protocol.function_response(bad).model_dump(exclude_none=True) == {
        "id": "c2",
        "name": "f",
        "response": {"error": "boom"},
    }


def handle_msg(handle: str, consumed: int | None = None) -> types.LiveServerMessage:
    update: dict[str, object] = {"newHandle": handle, "resumable": True}
    if consumed is not None:
        update["lastConsumedClientMessageIndex"] = str(consumed)
    return msg({"sessionResumptionUpdate": update})


def replayed_audio(p: GeminiProtocol) -> list[bytes]:
    return [
        m.audio.data or b""
        for m in p.data_to_send()
        if isinstance(m, RealtimeInput) and m.audio is not None
    ]


def test_a_transparent_handle_confirms_exactly_the_messages_it_names() -> None:
    f = Feed()
    p = f.p
    for value in (1, 2, 3):
        p.send_audio(bytes([value, 0]) * 320)  # messages 1, 2, 3 of this link
    p.data_to_send()
    f.feed(handle_msg("h1", consumed=2))
    p.connect_config(SessionSettings(), instructions="", tools=[], transparent=True)
    p.connection_lost(delivered=True)  # even in order: the next link resumes from h1
    p.connection_made()
    assert replayed_audio(p) == [b"\3\0" * 320]
    assert p.connect_config(
        SessionSettings(), instructions="", tools=[], transparent=True
    ).session_resumption == types.SessionResumptionConfig(handle="h1", transparent=True)


def test_a_handle_that_comes_while_the_next_link_opens_confirms_nothing_it_will_not_resume() -> (
    None
):
    f = Feed()
    p = f.p
    f.feed(handle_msg("h1", consumed=0))
    p.send_audio(b"\1\0" * 320)
    p.data_to_send()
    p.connect_config(SessionSettings(), instructions="", tools=[], transparent=True)  # from h1
    f.feed(handle_msg("h2", consumed=1))  # on the old link: h2 holds the audio, h1 does not
    p.connection_lost(delivered=True)
    p.connection_made()
    assert replayed_audio(p) == [b"\1\0" * 320]
    # A link that never opened: the old one goes on and its handle counts after all.
    p.send_audio(b"\2\0" * 320)
    p.data_to_send()
    p.connect_config(SessionSettings(), instructions="", tools=[], transparent=True)
    f.feed(handle_msg("h3", consumed=2))  # messages 1 (the replay) and 2 of this link
    p.connect_failed()
    p.connection_lost(delivered=False)
    p.connection_made()
    assert replayed_audio(p) == []
