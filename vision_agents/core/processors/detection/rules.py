"""Speak rules: when the stable scene changes in a given way, ask the agent to say something.

A rule compares the previous and the new stable counts per label (see ``DetectionProcessor``:
counts become stable once seen in ``stable_rounds`` detection rounds in a row, so a flicker
never triggers speech). After it fires, a rule stays quiet for ``cooldown_s`` seconds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from vision_agents.core.processors.detection.types import describe_counts

CountChange = Callable[[Counter[str], Counter[str]], bool]
Message = str | Callable[[Counter[str], Counter[str]], str]


@dataclass(frozen=True)
class SpeakRule:
    """Say ``message`` when ``when(previous_counts, new_counts)`` is true, at most every
    ``cooldown_s`` seconds (per participant). ``message`` is an instruction for the model;
    a callable gets the same counts. ``{counts}`` in a string becomes "2 people, 1 cup"."""

    name: str
    when: CountChange
    message: Message
    cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if self.cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, got {self.cooldown_s!r}")

    def render(self, before: Counter[str], after: Counter[str]) -> str:
        if callable(self.message):
            return self.message(before, after)
        return self.message.replace("{counts}", describe_counts(after))


def someone_entered(
    label: str = "person",
    message: Message = "Someone just came into view (now {counts}). Say so in one short sentence.",
    cooldown_s: float = 20.0,
) -> SpeakRule:
    """Fires when more ``label``s are in view than before."""
    return SpeakRule(f"{label}_entered", lambda b, a: a[label] > b[label], message, cooldown_s)


def object_appeared(
    label: str,
    message: Message | None = None,
    cooldown_s: float = 30.0,
) -> SpeakRule:
    """Fires when a ``label`` is in view and none was before."""
    text = message or f"A {label} just appeared (now {{counts}}). Mention it briefly."
    return SpeakRule(f"{label}_appeared", lambda b, a: b[label] == 0 < a[label], text, cooldown_s)


def count_reached(
    label: str,
    threshold: int,
    message: Message | None = None,
    cooldown_s: float = 60.0,
) -> SpeakRule:
    """Fires when the count of ``label`` rises from below ``threshold`` to at least it."""
    if threshold < 1:
        raise ValueError(f"threshold must be >= 1, got {threshold!r}")
    text = message or f"There are now {threshold} or more {label}s in view ({{counts}}). Say so."
    return SpeakRule(
        f"{label}_count_{threshold}",
        lambda b, a: b[label] < threshold <= a[label],
        text,
        cooldown_s,
    )
