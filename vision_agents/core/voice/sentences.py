"""Cuts a stream of LLM text deltas into sentences, so each can be spoken as soon as it ends."""

from __future__ import annotations

import re

# A sentence ends at . ! ? ; : or a newline, followed by whitespace; "e.g. " and numbers like
# "3.5" do not end one (the split needs whitespace after the mark and a word before it).
_END = re.compile(r"(?<=[^\s.][.!?;:])\s+|(?<=[.!?][\"')\]])\s+|\n+")
_ABBREVIATIONS = {"e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "etc.", "no."}


class SentenceSplitter:
    """``feed(delta)`` returns the sentences completed by ``delta``; ``flush()`` the rest.

    Fragments shorter than ``min_chars`` are merged with the next sentence, so TTS is not
    asked to speak "Yes." on its own with an audible gap after it.
    """

    def __init__(self, min_chars: int = 12) -> None:
        self.min_chars = min_chars
        self._buffer = ""

    def feed(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            candidate = self._buffer[start : match.start()].strip()
            last_word = candidate.rsplit(maxsplit=1)[-1].lower() if candidate else ""
            if len(candidate) < self.min_chars or last_word in _ABBREVIATIONS:
                continue
            out.append(candidate)
            start = match.end()
        self._buffer = self._buffer[start:]
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []
