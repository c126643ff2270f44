"""The webcam demo runs headless with file inputs and exits cleanly after the set time; with no
key it runs the offline voice pipeline (Silero VAD, Whisper, a local TTS) for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from vision_agents.testing import make_test_video, synthesize_speech, write_wav

ROOT = Path(__file__).resolve().parents[1]


def test_webcam_demo_runs_offline_voice_headless_on_files_and_exits_after_duration(
    tmp_path: Path,
) -> None:
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
            "5",
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
    assert "model: offline_describer" in out
    assert "OFFLINE mode" in out
    assert "agent video: http://127.0.0.1:" in out  # no GUI here: the local page
    assert "agent says: Hello, I am the offline demo agent, with no AI model." in out
    # The spoken question from --audio went through the VAD and Whisper, and was answered
    # from the picture and the detector's counts.
    heard = out.index("you said: ")
    assert "see" in out[heard:].split("\n", 1)[0].lower(), out
    answer = out[heard:].split("agent says: ", 1)[1].split("\n", 1)[0]
    assert answer.startswith("I see a mostly "), out
    assert "I do not see anything I recognise right now." in answer, out
    assert out.rstrip().endswith("done")
    assert "Traceback" not in done.stderr
    assert elapsed < 60, elapsed
