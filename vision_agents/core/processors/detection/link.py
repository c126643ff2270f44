"""`DetectionAgentLink`: lets an agent's model use a detection processor.

It registers a "what is in view" tool, turns ``SpeakRequestEvent``s into
``llm.simple_response(text)`` (the model then speaks) and, optionally, keeps a one-line
summary of the scene at the end of the model's instructions. The Agent itself needs no
change: create the link with the processor and the LLM, and close it when done (or let
``async with`` do it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from vision_agents.core.llm.llm import LLM
from vision_agents.core.processors.detection.processor import DetectionProcessor
from vision_agents.core.processors.detection.types import SceneSummaryEvent, SpeakRequestEvent

logger = logging.getLogger(__name__)

SUMMARY_MARKER = "\n\n[What the camera sees now] "


class DetectionAgentLink:
    """Connects ``processor`` to ``llm``: a tool, speech on events, an optional scene summary.

    ``push_summary`` appends the latest stable summary to the instructions; providers apply
    instructions from their next turn or session, so it is context, never a prompt to speak.
    ``say`` voices a speak request (default ``llm.simple_response``); an Agent whose chat LLM
    speaks through the voice pipeline passes ``say=agent.simple_response``.
    """

    def __init__(
        self,
        processor: DetectionProcessor,
        llm: LLM,
        *,
        tool_name: str = "what_is_in_view",
        speak: bool = True,
        push_summary: bool = False,
        say: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.processor = processor
        self.llm = llm
        self.tool_name = tool_name
        self.speak = speak
        self.push_summary = push_summary
        self.say = say
        self.spoken: list[str] = []
        """Texts handed to the model, in order."""
        llm.register_function(
            name=tool_name,
            description=(
                "Describe what the camera currently shows: object labels with counts, scores "
                "and boxes (x1, y1, x2, y2 as fractions of the frame), per participant."
            ),
        )(self._what_is_in_view)
        processor.events.subscribe(self._on_event)
        self._closed = False

    def _what_is_in_view(self) -> dict[str, Any]:
        """What the object detector sees now in each participant's video."""
        scene = self.processor.scene()
        return scene if scene else {"note": "no video analysed yet"}

    async def _on_event(self, event: SpeakRequestEvent | SceneSummaryEvent) -> None:
        if isinstance(event, SpeakRequestEvent):
            if self.speak:
                self.spoken.append(event.text)
                if self.say is not None:
                    await self.say(event.text)
                else:
                    await self.llm.simple_response(event.text, event.participant)
        elif self.push_summary:
            base = self.llm.instructions.split(SUMMARY_MARKER)[0]
            who = event.participant.user_id
            self.llm.set_instructions(f"{base}{SUMMARY_MARKER}{who}: {event.summary}")

    def close(self) -> None:
        """Unregister the tool and stop listening; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.processor.events.unsubscribe(self._on_event)
        try:
            self.llm.tools.unregister(self.tool_name)
        except KeyError:
            pass

    def __enter__(self) -> DetectionAgentLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
