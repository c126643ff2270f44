"""The demo behind `vision-agents demo`: an agent in a browser call on this machine.

It starts the embedded WebRTC call server, prints (and opens, if it can) a join link, and
runs an agent in the call with the best model available: Gemini Live with GOOGLE_API_KEY or
GEMINI_API_KEY, OpenAI Realtime with OPENAI_API_KEY, otherwise an offline stand-in that
describes the colours and motion it sees, spoken by espeak-ng, and says that it is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
import numpy as np

from vision_agents.core.agents.agent import Agent
from vision_agents.core.audio import PcmData
from vision_agents.core.edge.events import ParticipantJoinedEvent
from vision_agents.core.llm.events import RealtimeAgentSpeechTranscriptionEvent
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.types import User
from vision_agents.core.utils.video import reformat_frame
from vision_agents.testing import FakeRealtime, synthesize_speech, tone

INSTRUCTIONS = (
    "You are a friendly video-call assistant. Say briefly what you see and hear, "
    "and answer questions in one or two sentences."
)
COLOURS = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 200),
    "yellow": (230, 210, 40),
    "orange": (240, 140, 30),
    "purple": (130, 50, 160),
    "pink": (240, 130, 180),
    "brown": (120, 80, 40),
    "teal": (30, 150, 150),
}


@dataclass
class ModelChoice:
    llm: Realtime
    label: str
    offline: bool


def pick_model(fps: float, prefer: str = "auto") -> ModelChoice:
    """The best model this machine can use; plugins are imported only when a key is set."""
    google = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    if prefer in ("auto", "gemini") and google:
        try:
            from vision_agents.plugins import gemini

            return ModelChoice(gemini.Realtime(fps=fps), "Gemini Live", False)
        except Exception as exc:
            print(f"Gemini Live is not available ({type(exc).__name__}: {exc}); trying the next")
    if prefer in ("auto", "openai") and os.environ.get("OPENAI_API_KEY"):
        try:
            from vision_agents.plugins import openai

            return ModelChoice(openai.Realtime(fps=fps), "OpenAI Realtime", False)
        except Exception as exc:
            print(f"OpenAI Realtime is not available ({type(exc).__name__}: {exc})")
    return ModelChoice(OfflineDescriber(fps=fps), "offline describer", True)


def _speak(text: str) -> PcmData:
    try:
        return synthesize_speech(text)
    except RuntimeError:
        return tone(440, 0.3, sample_rate=22050)


def describe_frames(frames: list[av.VideoFrame]) -> str:
    """A sentence about the dominant colour, the brightness and the motion in ``frames``."""
    if not frames:
        return "I cannot see any video yet. Is your camera on?"
    small = [
        reformat_frame(f, width=64, height=48, format="rgb24").to_ndarray().astype(np.float32)
        for f in frames[-2:]
    ]
    mean = small[-1].reshape(-1, 3).mean(axis=0)
    name = min(COLOURS, key=lambda c: float(np.sum((mean - np.array(COLOURS[c])) ** 2)))
    brightness = float(mean.mean()) / 255
    light = "bright" if brightness > 0.6 else "dim" if brightness < 0.25 else "evenly lit"
    motion = float(np.abs(small[-1] - small[0]).mean()) if len(small) == 2 else 0.0
    moving = "a lot of movement" if motion > 12 else "some movement" if motion > 3 else "stillness"
    return f"I see a mostly {name}, {light} picture, with {moving}."


class OfflineDescriber(FakeRealtime):
    """No model key: describes colours and motion of the latest frames, spoken by espeak-ng."""

    provider_name = "offline_describer"

    def __init__(self, fps: float = 2.0) -> None:
        super().__init__(fps=fps, responder=self._answer, keep_frames=4)
        self._greeted = False

    def _answer(self, _prompt: str) -> tuple[str, PcmData]:
        text = describe_frames(list(self.latest_frames))
        if not self._greeted:
            self._greeted = True
            text = "Hello, I am the offline demo agent, with no AI model. " + text
        return text, _speak(text)


async def run_demo(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    fps: float = 2.0,
    duration: float | None = None,
    open_browser: bool = True,
    prefer: str = "auto",
    every_s: float = 8.0,
    on_ready: Callable[[str], Awaitable[None]] | None = None,
) -> int:
    """Run the demo call until ``duration`` seconds pass (None: until interrupted)."""
    from vision_agents.plugins.webrtc import WebRTCEdge

    choice = pick_model(fps, prefer)
    if choice.offline:
        print(
            "vision-agents demo: OFFLINE mode. No GOOGLE_API_KEY/GEMINI_API_KEY or OPENAI_API_KEY "
            "is set, so no AI model is used: an offline stand-in describes the colours and "
            "motion it sees, with espeak-ng's voice."
        )
    else:
        print(f"vision-agents demo: using {choice.label}")
    edge = WebRTCEdge(host=host, port=port)
    agent = Agent(
        edge=edge, agent_user=User(name="Demo agent"), instructions=INSTRUCTIONS, llm=choice.llm
    )
    edge.show_transcripts(choice.llm)

    @choice.llm.events.subscribe
    async def on_transcript(event: RealtimeAgentSpeechTranscriptionEvent) -> None:
        print(f"agent says: {event.text}")

    joined = asyncio.Event()

    @edge.events.subscribe
    async def on_join(event: ParticipantJoinedEvent) -> None:
        print(f"{event.participant.name or 'someone'} joined the call")
        joined.set()

    call = await agent.create_call("default", "demo")
    url = edge.join_url(call, ttl_s=max(3600.0, duration or 0.0))
    print(f"join the call: {url}")
    if open_browser and not _open(url):
        print("(could not open a browser here: open the link yourself)")
    async with agent.join(call):
        started = time.monotonic()
        ready = asyncio.ensure_future(on_ready(url)) if on_ready else None
        try:
            await _converse(agent, choice, joined, every_s, duration, started)
        finally:
            if ready is not None:
                ready.cancel()
                with contextlib.suppress(BaseException):
                    await ready
    print("demo finished")
    return 0


async def _converse(
    agent: Agent,
    choice: ModelChoice,
    joined: asyncio.Event,
    every_s: float,
    duration: float | None,
    started: float,
) -> None:
    """Offline: describe what is seen soon after someone joins, then every ``every_s``."""

    def left() -> float | None:
        return None if duration is None else duration - (time.monotonic() - started)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(joined.wait(), left())
        if choice.offline:
            await asyncio.sleep(min(1.5, max(0.0, left() or 1.5)))  # let some video arrive
            while left() is None or (left() or 0.0) > 0:
                await agent.simple_response("Say what you see.")
                await asyncio.sleep(min(every_s, max(0.0, left() or every_s)))
        else:
            await agent.simple_response("Greet the person who just joined and say what you see.")
            await asyncio.wait_for(agent.finish(), left())


def _open(url: str) -> bool:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False
