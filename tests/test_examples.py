"""Examples run as written."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from pathlib import Path

import pytest

from tests.browser.python_peer import PythonPeer, SolidColourTrack
from tests.conftest import wait_until
from vision_agents.cli import main as cli_main
from vision_agents.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]


async def test_offline_agent_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "offline_agent", ROOT / "examples/offline_agent/main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = await module.main(seconds=2.0)
    out = capsys.readouterr().out
    assert "agent: You said: What do you see?" in out
    # Video flowed: at least three frames offered at the model's fps, the first of them sent
    # (the rest only when the clip shows a change: the default frame policy).
    offered = model.frames_sent + model.frames_unchanged
    assert offered >= 3 and len(model.frames) >= 1, (offered, len(model.frames))
    assert model.audio_received > 0.5


def test_demo_command_runs_offline(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    assert cli_main(["demo", "--duration", "1", "--no-browser", "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert "OFFLINE" in out
    assert "join the call: http://127.0.0.1:" in out and "#token=" in out
    assert "demo finished" in out


@pytest.mark.timeout(90)
async def test_demo_agent_describes_what_a_participant_shows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    peers: list[PythonPeer] = []

    async def join_with_a_red_camera(url: str) -> None:
        peers.append(await PythonPeer.join(url, video=SolidColourTrack((210, 20, 20))))

    out = ""

    def said(text: str) -> bool:
        nonlocal out
        out += capsys.readouterr().out
        return text in out

    demo = asyncio.create_task(
        run_demo(port=0, open_browser=False, every_s=2.0, on_ready=join_with_a_red_camera)
    )
    try:
        await wait_until(lambda: said("py joined the call"), 30, "the participant joining")
        await wait_until(
            lambda: said("agent says: Hello, I am the offline demo agent"), 30, "the greeting"
        )
        await wait_until(lambda: said("I see a mostly red"), 30, "the description")
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
        for peer in peers:
            await peer.leave()


async def test_video_call_example_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    spec = importlib.util.spec_from_file_location(
        "video_call", ROOT / "examples/video_call/video_call.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.main(seconds=0.5, port=0)
    out = capsys.readouterr().out
    assert "Join the call: http://127.0.0.1:" in out and "/call/my-call#token=" in out


@pytest.mark.timeout(120)
async def test_phone_agent_example_answers_a_simulated_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "phone_agent", ROOT / "examples/phone_agent/main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    heard = (await module.main(port=0, simulated_question="What can you do?")).lower()
    assert "count" in heard and "time" in heard, heard
    assert "/twilio/voice" in capsys.readouterr().out


async def test_speak_up_example_remarks_once_when_someone_walks_in(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vision_agents.core.agents.speak_up import DEFAULT_INSTRUCTIONS
    from vision_agents.testing import GeminiLiveServer, tone

    spec = importlib.util.spec_from_file_location("speak_up", ROOT / "examples/speak_up/main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with GeminiLiveServer(
        responder=lambda _text: ("Someone just walked in.", tone(500, 0.3))
    ) as server:
        counts = await module.main(client=server.client(), seconds=4.0, visitor_after=2.0)
        # The still hallway asked for nothing; the visitor for one remark.
        assert server.texts == [DEFAULT_INSTRUCTIONS]
        assert server.rejections == []
    assert counts["changes"] == counts["requests"] == 1
    assert "agent: Someone just walked in." in capsys.readouterr().out
