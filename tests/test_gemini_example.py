"""The Gemini example's own code path, run against the local Gemini Live server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from vision_agents.plugins import gemini
from vision_agents.testing import GeminiLiveServer, tone

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(60)


async def test_gemini_example_runs_against_the_local_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "gemini_example", ROOT / "examples/gemini_realtime/main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with GeminiLiveServer(
        responder=lambda text: (f"I see a test picture ({text})", tone(700, 0.4))
    ) as server:
        heard = await module.main(client=server.client(), seconds=3.0)
        assert server.rejections == []
        setup = server.setups[0]
        assert setup["model"] == f"models/{gemini.DEFAULT_MODEL}"
        assert setup["tools"][0]["functionDeclarations"][0]["name"] == "room_temperature"
        assert server.texts == ["Describe what you see in one sentence."]
        assert server.audio_seconds() > 1.0  # the participant's speech reached the model
        assert len(server.frames) >= 1
    out = capsys.readouterr().out
    assert "agent: I see a test picture" in out
    assert heard["audio_s"] == pytest.approx(0.4, abs=0.02)
