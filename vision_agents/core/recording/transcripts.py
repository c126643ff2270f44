"""What was said, written next to the recording as it is said: WebVTT cues and JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

# A cue stays on screen for about the time the words take to say, within these bounds.
_SECONDS_PER_WORD = 0.4
_MIN_CUE_S, _MAX_CUE_S = 1.0, 8.0


class TranscriptWriter:
    """Appends each line of the conversation to ``<stem>.vtt`` and ``<stem>.jsonl``.

    Times are seconds since the recording started, the same clock as the media file, so a
    player shows the cues over the call. Each line is flushed at once: what was written
    survives a crash.
    """

    def __init__(self, vtt_path: Path, jsonl_path: Path) -> None:
        self.vtt_path, self.jsonl_path = vtt_path, jsonl_path
        self.lines = 0
        self._vtt: TextIO = vtt_path.open("w", encoding="utf-8")
        self._jsonl: TextIO = jsonl_path.open("w", encoding="utf-8")
        self._vtt.write("WEBVTT\n\n")
        self._vtt.flush()

    def add(self, at: float, who: str, text: str, speaker: str | None = None) -> None:
        """``who`` said ``text`` at ``at`` seconds (``speaker``: a participant's name)."""
        text = " ".join(text.split())
        if not text:
            return
        at = max(0.0, at)
        end = at + min(_MAX_CUE_S, max(_MIN_CUE_S, len(text.split()) * _SECONDS_PER_WORD))
        label = speaker or ("Agent" if who == "agent" else "User")
        self.lines += 1
        # "-->" inside a cue's text would end it early; the voice tag carries the speaker.
        safe = text.replace("-->", "->")
        self._vtt.write(
            f"{self.lines}\n{_vtt_time(at)} --> {_vtt_time(end)}\n<v {label}>{safe}\n\n"
        )
        self._vtt.flush()
        record = {"t": round(at, 3), "who": who, "speaker": label, "text": text}
        self._jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        self._vtt.close()
        self._jsonl.close()


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
