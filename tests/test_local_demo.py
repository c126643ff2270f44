"""The webcam demo runs headless with file inputs and exits cleanly after the set time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from vision_agents.testing import make_test_video, synthesize_speech, write_wav

ROOT = Path(__file__).resolve().parents[1]


def test_webcam_demo_runs_headless_on_files_and_exits_after_duration(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "clip.mkv", seconds=2.0, size=(320, 240))
    question = write_wav(tmp_path / "question.wav", synthesize_speech("What do you see?"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/webcam_demo.py"),
            "--video",
            str(clip),
            "--audio",
            str(question),
            "--speaker",
            "none",
            "--preview",
            "auto",
            "--duration",
            "3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "model: fake_realtime" in out
    assert "agent video: http://127.0.0.1:" in out  # no GUI here: the local page
    assert "agent says: Offline mode. I see a 320 by 240 picture." in out
    assert out.rstrip().endswith("done")
    assert "Traceback" not in done.stderr
    assert elapsed < 60, elapsed
