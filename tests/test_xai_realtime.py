"""xAI preset and the OpenAI/xAI examples, through the real SDK against the local server."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import openai
import pytest

from vision_agents.plugins import openai as openai_plugin
from vision_agents.plugins import xai
from vision_agents.testing import OpenAIRealtimeServer, ScriptedReply, XAIRealtimeServer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(60)


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_xai_preset_speaks_xai_s_own_session_layout() -> None:
    async with XAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="xai-test", base_url=server.base_url)
        llm = xai.Realtime(voice="Rex", client=client)
        assert llm.provider_name == "xai_realtime"
        await llm.connect()
        try:
            await server.wait_for(lambda: bool(server.received_of("session.update")))
            server.script(ScriptedReply(transcript="hi", audio=b"\0\0" * 2400))
            assert await llm.generate_reply(timeout=5) == "hi"
        finally:
            await llm.close()
        assert server.connections[0].model == xai.XAI_MODEL == "grok-voice-latest"
        session = server.received_of("session.update")[0]["session"]
        assert session["voice"] == "rex"
        assert session["turn_detection"] == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
        }
        assert session["audio"]["input"]["transcription"] == {"model": "grok-transcribe"}
        assert server.errors == []
        assert server.invalid_events == []  # what the server sent is valid too


async def test_the_xai_server_refuses_openai_s_layout_and_unknown_models() -> None:
    async with XAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="xai-test", base_url=server.base_url)
        llm = openai_plugin.Realtime(client=client, model="grok-voice-latest", voice="ara")
        await llm.connect()
        try:
            await server.wait_for(lambda: bool(server.errors))
        finally:
            await llm.close()
        assert server.errors[0]["code"] == "invalid_value"
        with pytest.raises(Exception, match="400"):
            await xai.Realtime(client=client, model="gpt-realtime").connect()


async def test_xai_turn_detection_none_turns_server_vad_off() -> None:
    async with XAIRealtimeServer() as server:
        client = openai.AsyncOpenAI(api_key="xai-test", base_url=server.base_url)
        llm = xai.Realtime(client=client, turn_detection=None)
        await llm.connect()
        try:
            await server.wait_for(lambda: bool(server.received_of("session.update")))
        finally:
            await llm.close()
        assert server.received_of("session.update")[0]["session"]["turn_detection"] is None
        assert server.errors == []


async def test_xai_key_and_voice_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="XAI_API_KEY"):
        xai.Realtime()
    with pytest.raises(ValueError, match="ara, eve, leo, rex, sal"):
        xai.Realtime(voice="alloy")
    monkeypatch.setenv("XAI_API_KEY", "k")
    client = await xai.Realtime()._client_for_connect()
    assert str(client.base_url).rstrip("/") == xai.XAI_BASE_URL


@pytest.mark.parametrize(
    ("path", "factory", "server_type"),
    [
        ("examples/openai_realtime/openai_agent.py", openai_plugin.Realtime, OpenAIRealtimeServer),
        ("examples/xai_realtime/xai_agent.py", xai.Realtime, XAIRealtimeServer),
    ],
)
async def test_examples_run_against_the_local_server(
    path: str, factory: type, server_type: type[OpenAIRealtimeServer]
) -> None:
    module = load(path)
    async with server_type() as server:
        server.script(ScriptedReply(transcript="a numbered test picture", audio=b"\0\0" * 2400))
        client = openai.AsyncOpenAI(api_key="k", base_url=server.base_url)
        said = await module.run(factory(client=client, fps=2), seconds=1.0)
        assert said == ["a numbered test picture"]
        assert server.audio_seconds > 0.5
        images = [
            e
            for e in server.received_of("conversation.item.create")
            if e["item"]["content"][0]["type"] == "input_image"
        ]
        assert len(images) >= 1
        assert server.received_of("session.update")[0]["session"]["tools"][0]["name"] == (
            "room_temperature"
        )
        assert server.errors == []
