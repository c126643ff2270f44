"""The Gemini translation layer, fed messages directly (no sockets)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from google.genai import types

from vision_agents.core.audio import PcmData
from vision_agents.core.llm.tools import ToolResult, ToolSchema
from vision_agents.plugins.gemini import protocol
from vision_agents.plugins.gemini.protocol import (
    AgentTranscript,
    AudioOut,
    GoAway,
    HandleUpdate,
    LiveTranslator,
    ResponseDone,
    SessionSettings,
    TextOut,
    ToolCall,
    ToolCancel,
    UserTranscript,
)


def msg(body: dict[str, object]) -> types.LiveServerMessage:
    return types.LiveServerMessage.model_validate(body)


def audio_msg(samples: int = 480) -> types.LiveServerMessage:
    data = base64.b64encode(np.arange(samples, dtype=np.int16).tobytes()).decode()
    blob = {"mimeType": "audio/pcm;rate=24000", "data": data}
    return msg({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})


def test_audio_turn_becomes_audio_then_done_with_one_response_id() -> None:
    t = LiveTranslator()
    first = t.feed(audio_msg())
    second = t.feed(audio_msg())
    assert isinstance(first[0], AudioOut) and isinstance(second[0], AudioOut)
    assert first[0].pcm.sample_rate == 24000 and len(first[0].pcm) == 480
    assert np.array_equal(first[0].pcm.samples[0], np.arange(480, dtype=np.int16))
    assert first[0].response_id == second[0].response_id
    done = t.feed(msg({"serverContent": {"turnComplete": True}}))
    assert done == [ResponseDone(first[0].response_id, interrupted=False)]
    nxt = t.feed(audio_msg())
    assert isinstance(nxt[0], AudioOut) and nxt[0].response_id != first[0].response_id


def test_interrupted_closes_the_response_and_turn_complete_does_not_repeat_it() -> None:
    t = LiveTranslator()
    rid = t.feed(audio_msg())[0]
    assert isinstance(rid, AudioOut)
    assert t.feed(msg({"serverContent": {"interrupted": True}})) == [
        ResponseDone(rid.response_id, interrupted=True)
    ]
    assert t.feed(msg({"serverContent": {"turnComplete": True}})) == []
    assert t.response_id is None


def test_transcripts_text_and_final_text() -> None:
    t = LiveTranslator()
    assert t.feed(msg({"serverContent": {"inputTranscription": {"text": "hi"}}})) == [
        UserTranscript("hi")
    ]
    out = t.feed(msg({"serverContent": {"outputTranscription": {"text": "hello"}}}))
    assert out == [AgentTranscript("hello")]
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
    end = t.feed(msg({"serverContent": {"turnComplete": True}}))
    rid = a[0].response_id  # type: ignore[union-attr]
    assert end == [TextOut("Hello", rid, is_complete=True), ResponseDone(rid, False)]


def test_tool_calls_cancellations_go_away_and_handles() -> None:
    t = LiveTranslator()
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
    assert t.feed(msg({"goAway": {"timeLeft": "10s"}})) == [GoAway("10s")]
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
    assert both == [HandleUpdate("h2"), UserTranscript("x")]
    t.feed(msg({"sessionResumptionUpdate": {"newHandle": "h3", "resumable": False}}))
    t.feed(msg({"sessionResumptionUpdate": {}}))
    assert t.handle == "h2"


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
    plain = protocol.build_config(SessionSettings(input_transcription=False))
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
