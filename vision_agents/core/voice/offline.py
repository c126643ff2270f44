"""`OfflineResponder`: answers with no language model at all, from what the processors know.

For demos and tests with no key and no network. It recognises a few kinds of question
(greetings, what is in view, how many of something, counting, the time, what it can do) and
answers from the processors' ``state()`` (e.g. the detection processor's counts). It says it
is offline in its first reply and whenever it does not understand.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from vision_agents.core.llm.chat import ChatLLM, ChatRequest

OFFLINE_LABEL = "Offline mode"
_NUMBERS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip


def number_word(n: int) -> str:
    return _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)


def _plural(label: str, n: int) -> str:
    if n == 1:
        return label
    if label == "person":
        return "people"
    return label if label.endswith("s") else label + "s"


class OfflineResponder(ChatLLM):
    """A rule-based stand-in for an LLM, clearly labelled as offline mode.

    ``delay_s`` between streamed words imitates a model's pace (0: as fast as possible).
    """

    provider_name: ClassVar[str] = "offline"

    introduction: str = f"{OFFLINE_LABEL}, with no AI model."

    def __init__(self, *, delay_s: float = 0.0, attach_video: bool = False) -> None:
        super().__init__(attach_video=attach_video)
        self.delay_s = delay_s
        self._introduced = False

    async def _generate(self, request: ChatRequest) -> AsyncIterator[str]:
        reply = self.answer(request.messages[-1].text)
        if not self._introduced:
            self._introduced = True
            reply = f"{self.introduction} {reply}"
        for i, word in enumerate(reply.split(" ")):
            if self.delay_s and i:
                await asyncio.sleep(self.delay_s)
            yield word if i == 0 else " " + word

    def counts(self) -> dict[str, int]:
        """Objects in view, summed over participants, from the processors' state."""
        state: dict[str, Any] = self.context() if self.context is not None else {}
        totals: dict[str, int] = {}
        for value in state.values():
            if not isinstance(value, dict):
                continue
            scenes = value.get("detections", value)
            if not isinstance(scenes, dict):
                continue
            for scene in scenes.values():
                counts = scene.get("counts") if isinstance(scene, dict) else None
                if isinstance(counts, dict):
                    for label, n in counts.items():
                        totals[str(label)] = totals.get(str(label), 0) + int(n)
        return totals

    def describe_view(self) -> str:
        counts = {k: v for k, v in self.counts().items() if v > 0}
        if not counts:
            return "I do not see anything I recognise right now."
        parts = [f"{number_word(n)} {_plural(label, n)}" for label, n in sorted(counts.items())]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"I see {listed}."

    def answer(self, question: str) -> str:
        """The reply to ``question`` (without the offline introduction)."""
        q = question.lower()
        if m := re.search(r"count (?:from one )?to (\w+)", q):
            target = _parse_number(m.group(1)) or 10
            return ", ".join(number_word(i) for i in range(1, min(target, 20) + 1)) + "."
        if m := re.search(r"how many (\w+)", q):
            wanted = m.group(1).rstrip("s")
            wanted = "person" if wanted in ("people", "person", "face") else wanted
            counts = self.counts()
            n = sum(v for k, v in counts.items() if k.rstrip("s") == wanted)
            if n == 0 and wanted == "person":  # a face detector counts people by their faces
                n = counts.get("face", 0)
            return f"I see {number_word(n)} {_plural(wanted, n)}."
        if re.search(r"\b(see|view|look|front of|camera|there)\b", q):
            return self.describe_view()
        if re.search(r"\btime\b", q):
            return "It is " + time.strftime("%H:%M") + "."
        if re.search(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", q):
            return "Hello! Ask me what I see."
        if re.search(r"\b(what can you do|help)\b", q):
            return "I can tell you what I see, count things in view, count to a number and say the time."
        return (
            f"{OFFLINE_LABEL}: I have no language model, so I can only say what I see, "
            "count, or tell the time."
        )


def _parse_number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBERS.index(word) if word in _NUMBERS else None
