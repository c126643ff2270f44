"""gemini.LLM through the real google-genai SDK against a small strict local server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import av
import numpy as np
import pytest
from aiohttp import web
from google import genai
from google.genai import types

from vision_agents.core.llm.events import RealtimeResponseEvent
from vision_agents.plugins import gemini

_KEYS = {"contents", "systemInstruction", "tools", "generationConfig", "toolConfig"}


class GeminiChatServer:
    """``streamGenerateContent?alt=sse``: validates each body with the SDK's own models
    (unknown fields are rejected) and streams the next scripted list of chunks."""

    def __init__(self, script: list[list[dict[str, Any]]]) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert request.path.endswith(":streamGenerateContent"), request.path
        body = await request.json()
        try:
            if set(body) - _KEYS:
                raise ValueError(f"unknown keys {sorted(set(body) - _KEYS)}")
            for content in body["contents"]:
                if types.Content.model_validate(content).role not in ("user", "model"):
                    raise ValueError(f"bad role in {content}")
            for tool in body.get("tools", []):
                types.Tool.model_validate(tool)
        except Exception as exc:
            self.errors.append(str(exc))
            return web.json_response({"error": {"code": 400, "message": str(exc)}}, status=400)
        self.bodies.append(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in self.script.pop(0):
            types.GenerateContentResponse.model_validate(chunk)
            await response.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
        await response.write_eof()
        return response


@pytest.fixture
async def server() -> AsyncIterator[GeminiChatServer]:
    def text(t: str, finish: bool = False) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": t}]}}
        if finish:
            candidate["finishReason"] = "STOP"
        return {"candidates": [candidate]}

    call = {"functionCall": {"id": "c1", "name": "count_people", "args": {"room": "hall"}}}
    srv = GeminiChatServer(
        [
            [{"candidates": [{"content": {"role": "model", "parts": [call]}}]}],
            [text("There are "), text("three people "), text("in the hall.", finish=True)],
        ]
    )
    app = web.Application()
    app.router.add_post("/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    srv.base_url = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


async def test_gemini_llm_streams_and_runs_tools(server: GeminiChatServer) -> None:
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.base_url))
    llm = gemini.LLM(model="gemini-test", client=client)
    llm.set_instructions("Be brief.")
    rooms: list[str] = []

    @llm.register_function
    def count_people(room: str) -> int:
        """People in a room.

        Args:
            room: the room name
        """
        rooms.append(room)
        return 3

    events: list[RealtimeResponseEvent] = []

    @llm.events.subscribe
    async def on_response(event: RealtimeResponseEvent) -> None:
        events.append(event)

    llm.set_latest_frame(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24"))
    deltas = [d async for d in llm.stream_response("How many people are in the hall?")]
    await llm.events.wait(2)
    assert server.errors == []
    assert rooms == ["hall"]
    assert deltas == ["There are ", "three people ", "in the hall."]
    first, second = server.bodies
    assert first["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert first["tools"][0]["functionDeclarations"][0]["name"] == "count_people"
    parts = first["contents"][0]["parts"]
    assert parts[0]["text"] == "How many people are in the hall?"
    assert parts[1]["inlineData"]["mime_type"] == "image/jpeg"
    answer = second["contents"][-1]["parts"][0]["functionResponse"]
    assert answer["name"] == "count_people" and answer["response"] == {"result": 3}
    assert second["contents"][-2]["role"] == "model"
    assert [e.text for e in events if e.is_complete] == ["There are three people in the hall."]


def test_gemini_llm_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="GOOGLE_API_KEY"):
        gemini.LLM()
