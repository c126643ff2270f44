"""`python -m vision_agents.testing.serve` lets the examples run, unchanged, with no key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("examples/gemini_realtime/main.py", "agent: Local Gemini Live server here; you said:"),
        ("examples/xai_realtime/xai_agent.py", "agent: Local xAI Grok voice server here."),
    ],
)
def test_examples_run_against_the_served_local_servers(
    tmp_path: Path, example: str, expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    server = subprocess.Popen(
        [sys.executable, "-m", "vision_agents.testing.serve", "--ca-file", str(tmp_path / "ca")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "ready":
            line = server.stdout.readline()
            assert line, f"the servers ended before ready: {lines}"
            lines.append(line.strip())
        exported = dict(line.split("=", 1) for line in lines[:-1])
        assert set(exported) >= {"GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE", "XAI_BASE_URL"}
        done = subprocess.run(
            [sys.executable, example],
            cwd=ROOT,
            env={**env, **exported},
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert expected in done.stdout, done.stdout
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
