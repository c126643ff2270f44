"""openai.LLM against a local OpenAI-compatible chat completions server: streaming, tools,
the latest video frame as an image, history; the sentence splitter; the offline responder."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
from openai import AsyncOpenAI

from vision_agents.core.llm.events import RealtimeResponseEvent, ToolCallCompletedEvent
from vision_agents.core.voice import OfflineResponder, SentenceSplitter
from vision_agents.plugins import openai
from vision_agents.testing import ChatReply, OpenAIChatServer, ToolCallReply


async def test_streams_text_runs_tools_and_sends_the_frame() -> None:
    replies = [
        ChatReply(tool_calls=[ToolCallReply("get_weather", {"city": "Oslo"})]),
        ChatReply(text="It is sunny in Oslo, twenty one degrees. Anything else?", chunk_chars=5),
        ChatReply(text="You asked about Oslo."),
    ]
    async with OpenAIChatServer(replies, api_key="sk-test") as server:
        llm = openai.LLM(
            model="local-model", client=AsyncOpenAI(api_key="sk-test", base_url=server.base_url)
        )
        llm.set_instructions("Be brief.")
        llm.context = lambda: {"detections": {"alice": {"counts": {"person": 1}}}}
        calls: list[str] = []

        @llm.register_function
        def get_weather(city: str) -> dict[str, object]:
            """The weather now.

            Args:
                city: the city name
            """
            calls.append(city)
            return {"sky": "sunny", "celsius": 21}

        events: list[RealtimeResponseEvent | ToolCallCompletedEvent] = []

        @llm.events.subscribe
        async def on_event(event: RealtimeResponseEvent | ToolCallCompletedEvent) -> None:
            events.append(event)

        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8), format="rgb24")
        llm.set_latest_frame(frame)
        deltas = [d async for d in llm.stream_response("What's the weather in Oslo?")]
        await llm.events.wait(2)

        assert calls == ["Oslo"]
        assert len(deltas) > 3 and "".join(deltas).startswith("It is sunny in Oslo")
        first, second = server.requests[0], server.requests[1]
        assert first["stream"] is True and first["model"] == "local-model"
        assert first["tools"][0]["function"]["name"] == "get_weather"
        assert first["messages"][0]["role"] == "system"
        assert "Be brief." in first["messages"][0]["content"]
        assert '"person": 1' in first["messages"][0]["content"]
        parts = first["messages"][-1]["content"]
        assert parts[0] == {"type": "text", "text": "What's the weather in Oslo?"}
        assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        tool_msg = second["messages"][-1]
        assert tool_msg["role"] == "tool"
        assert json.loads(tool_msg["content"]) == {"result": {"sky": "sunny", "celsius": 21}}
        assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "get_weather"

        partial = [e for e in events if isinstance(e, RealtimeResponseEvent) and not e.is_complete]
        complete = [e for e in events if isinstance(e, RealtimeResponseEvent) and e.is_complete]
        assert len(partial) == len(deltas)
        assert complete[0].text == "".join(deltas)
        assert any(isinstance(e, ToolCallCompletedEvent) and e.ok for e in events)

        # The next turn carries the history (plain text, no stale tool messages).
        llm.attach_video = False
        await llm.simple_response("What did I ask?")
        third = server.requests[2]["messages"]
        assert [m["role"] for m in third] == ["system", "user", "assistant", "user"]
        assert third[2]["content"].startswith("It is sunny")
        assert third[-1]["content"] == "What did I ask?"
        assert server.errors == []


async def test_local_server_without_a_key_and_a_bad_key() -> None:
    async with OpenAIChatServer([ChatReply(text="Hi there.")]) as server:
        llm = openai.LLM(model="m", base_url=server.base_url, attach_video=False)
        assert "".join([d async for d in llm.stream_response("hello")]) == "Hi there."
    async with OpenAIChatServer([ChatReply(text="x")], api_key="right") as server:
        llm = openai.LLM(model="m", base_url=server.base_url, api_key="wrong")
        with pytest.raises(Exception, match=r"401|bad API key"):
            await llm.simple_response("hello")


def test_openai_llm_needs_a_key_or_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        openai.LLM()


def test_sentence_splitter_cuts_at_sentence_ends_only() -> None:
    splitter = SentenceSplitter()
    out: list[str] = []
    for delta in "Hello there! I see 3.5 cats, e.g. two. Yes. OK then.\nLast".split(" "):
        out += splitter.feed(delta + " ")
    assert out == ["Hello there!", "I see 3.5 cats, e.g. two.", "Yes. OK then."]
    assert splitter.flush() == ["Last"]


async def test_offline_responder_answers_from_processor_state() -> None:
    llm = OfflineResponder()
    llm.context = lambda: {
        "detections": {"detections": {"a": {"counts": {"person": 2, "cat": 1}}}},
    }
    first = "".join([d async for d in llm.stream_response("What do you see?")])
    assert first.startswith("Offline mode")
    assert "one cat and two people" in first
    assert llm.answer("How many people are there?") == "I see two people."
    assert llm.answer("count to three") == "one, two, three."
    assert "Offline mode" in llm.answer("Write me a poem")
    llm.context = lambda: {"doorcam": {"detections": {"door": {"counts": {"face": 1}}}}}
    assert llm.answer("How many people are at the door?") == "I see one person."  # by face


def test_chat_llm_takes_the_same_image_option_name_as_the_realtime_models() -> None:
    llm = openai.LLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k", max_image_side=512)
    assert llm.max_image_side == 512
    with pytest.raises(ValueError, match="max_image_side must be at least 16 pixels, got 4"):
        openai.LLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k", max_image_side=4)
