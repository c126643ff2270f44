"""Examples run as written."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from vision_agents.cli import main as cli_main

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
    assert len(model.frames) >= 3 and model.audio_received > 0.5


def test_demo_command_runs_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "OFFLINE" in out
    assert "agent says: I received" in out
    assert (tmp_path / "agent_reply.wav").stat().st_size > 48000
