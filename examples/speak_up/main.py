"""An agent that speaks up when something changes: a doorway camera and Gemini Live.

    GOOGLE_API_KEY=... python examples/speak_up/main.py

A participant's camera shows an empty hallway; after a few seconds someone walks in. Nobody
asks the agent anything: with ``speak_up=SpeakUp()`` it asks the model for a remark when the
frame policy sends a frame because the scene changed (at most once every 10 s, never while
someone talks, never over its own reply). The still hallway before costs no reply at all.
Swap ``InMemoryEdge`` for a real edge to watch a real camera. The test suite runs this same
``main`` against the local Gemini Live server by passing ``client=server.client()``.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import aiortc
import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError
from google import genai

from vision_agents.core import Agent, SpeakUp, User
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeResponseEvent,
)
from vision_agents.plugins import gemini
from vision_agents.testing import InMemoryEdge


class DoorwayCamera(aiortc.MediaStreamTrack):
    """15 frames a second of a hallway; someone walks in after ``visitor_after`` s."""

    kind = "video"

    def __init__(self, visitor_after: float) -> None:
        super().__init__()
        self.visitor_after = visitor_after
        y, x = np.mgrid[0:360, 0:640]
        hallway = np.stack([90 + x // 8, 100 + y // 6, 110 + x // 10], axis=-1)
        self._empty = np.clip(hallway, 0, 255).astype(np.uint8)
        cv2.rectangle(self._empty, (260, 60), (380, 330), (70, 50, 40), -1)  # the door
        self._visitor = self._empty.copy()
        cv2.ellipse(self._visitor, (320, 220), (45, 110), 0, 0, 360, (30, 30, 160), -1)
        cv2.circle(self._visitor, (320, 90), 32, (150, 170, 210), -1)
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent / 15 - time.monotonic()))
        someone = time.monotonic() - self._start >= self.visitor_after
        image = self._visitor if someone else self._empty
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = self._sent, Fraction(1, 15)
        self._sent += 1
        return frame


async def main(
    client: genai.Client | None = None, seconds: float = 8.0, visitor_after: float = 4.0
) -> dict[str, int]:
    """Watch the doorway for ``seconds``; returns the speak-up counts."""
    llm = gemini.Realtime(fps=2, client=client)
    edge = InMemoryEdge()
    agent = Agent(
        edge=edge,
        agent_user=User(name="Doorman"),
        instructions="You watch a doorway camera. Keep remarks to one short sentence.",
        llm=llm,
        speak_up=SpeakUp(interval=10.0),
    )

    @llm.events.subscribe
    async def on_words(
        event: RealtimeAgentSpeechTranscriptionEvent | RealtimeResponseEvent,
    ) -> None:
        if isinstance(event, RealtimeAgentSpeechTranscriptionEvent) or event.is_complete:
            print(f"agent: {event.text}", flush=True)

    camera = DoorwayCamera(visitor_after)
    try:
        async with agent.join(await agent.create_call("default", "doorway")):
            await edge.add_participant("doorway-camera", tracks=[camera])
            await asyncio.sleep(seconds)
            assert agent.speak_up is not None
            counts = {
                "changes": agent.speak_up.changes,
                "requests": agent.speak_up.requests,
                **agent.speak_up.skipped,
            }
    finally:
        camera.stop()
    print(f"scene changes seen: {counts['changes']}, remarks asked for: {counts['requests']}")
    return counts


if __name__ == "__main__":
    asyncio.run(main())
