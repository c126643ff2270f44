"""The demo behind `vision-agents demo`: an agent in a browser call on this machine.

It starts the embedded WebRTC call server, prints (and opens, if it can) a join link, and
runs an agent in the call with the best model available: Gemini Live with GOOGLE_API_KEY or
GEMINI_API_KEY, OpenAI Realtime with OPENAI_API_KEY, otherwise offline mode: the local voice
pipeline (Silero VAD, Whisper STT, a local TTS) around a rule-based responder that answers from
the OpenCV detection processor and the colours and motion it sees, and says it is offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import webbrowser
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import av
import numpy as np

from vision_agents.core.agents.agent import Agent
from vision_agents.core.edge.events import ParticipantJoinedEvent
from vision_agents.core.llm.events import RealtimeAgentSpeechTranscriptionEvent
from vision_agents.core.llm.llm import LLM
from vision_agents.core.processors.base import Processor
from vision_agents.core.processors.detection import DetectionProcessor, OpenCVDetector
from vision_agents.core.types import User
from vision_agents.core.utils.video import reformat_frame
from vision_agents.core.voice import (
    STT,
    TTS,
    VAD,
    OfflineResponder,
    UserSpeechEndedEvent,
    UserSpeechStartedEvent,
)

if TYPE_CHECKING:
    from vision_agents.plugins.janus import JanusEdge
    from vision_agents.plugins.webrtc import WebRTCEdge

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
    llm: LLM
    label: str
    offline: bool
    processors: list[Processor] = field(default_factory=list)
    vad: VAD | None = None
    stt: STT | None = None
    tts: TTS | None = None


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
    return offline_choice()


@dataclass
class OfflineVoice:
    """The local voice parts for an Agent with a chat LLM: ``Agent(..., vad=v.vad, stt=v.stt,
    tts=v.tts)``."""

    vad: VAD
    stt: STT
    tts: TTS


def offline_voice() -> OfflineVoice:
    """Silero VAD, Whisper tiny.en and the local TTS (hibari, else espeak-ng): no key, no network.

    The Silero model ships in faster-whisper and Whisper tiny.en in the ``models`` extra
    (both in ``[all]``); ``VISION_AGENTS_WHISPER_MODEL`` points at another copy. A missing
    model raises ``ModelNotAvailableError`` naming it and the extra that ships it. Used by
    ``vision-agents demo`` and the examples' offline mode with an ``OfflineResponder``.
    """
    from vision_agents.plugins import faster_whisper, local_tts, silero

    return OfflineVoice(silero.VAD(), faster_whisper.STT(), local_tts.default_tts())


def offline_choice() -> ModelChoice:
    """The offline voice agent: local VAD, STT and TTS around the offline describer, with the
    OpenCV detection processor."""
    voice = offline_voice()
    return ModelChoice(
        OfflineDescriber(),
        "offline voice pipeline",
        True,
        processors=[DetectionProcessor(OpenCVDetector(), detect_fps=2.0)],
        vad=voice.vad,
        stt=voice.stt,
        tts=voice.tts,
    )


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


class OfflineDescriber(OfflineResponder):
    """No model key: the offline responder, plus the colours and motion of the latest frames."""

    provider_name = "offline_describer"
    introduction = "Hello, I am the offline demo agent, with no AI model."

    def __init__(self) -> None:
        super().__init__(attach_video=True)
        self.frames: deque[av.VideoFrame] = deque(maxlen=2)

    def set_latest_frame(self, frame: av.VideoFrame) -> None:
        super().set_latest_frame(frame)
        self.frames.append(frame)

    def answer(self, question: str) -> str:
        reply = super().answer(question)
        if "see" in question.lower():
            reply = f"{describe_frames(list(self.frames))} {reply}"
        return reply


@dataclass(frozen=True)
class JanusOptions:
    """Where the demo's Janus is and its two secrets (never printed)."""

    url: str
    token_secret: str = field(repr=False)
    admin_key: str = field(repr=False)

    @classmethod
    def from_env(cls, url: str) -> JanusOptions:
        values = {}
        for name in ("VISION_AGENTS_JANUS_TOKEN_SECRET", "VISION_AGENTS_JANUS_ADMIN_KEY"):
            values[name] = os.environ.get(name, "")
            if not values[name]:
                raise ValueError(f"--edge janus needs {name} (the Janus config's secret)")
        return cls(
            url,
            values["VISION_AGENTS_JANUS_TOKEN_SECRET"],
            values["VISION_AGENTS_JANUS_ADMIN_KEY"],
        )


async def run_demo(
    *,
    janus: JanusOptions | None = None,
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
            "is set, so no AI model is used: a local voice pipeline (Silero VAD, Whisper, a "
            "local TTS) answers from what the OpenCV detector and the camera show."
        )
    else:
        print(f"vision-agents demo: using {choice.label}")
    page = None
    edge: WebRTCEdge | JanusEdge
    if janus is None:
        edge = WebRTCEdge(host=host, port=port)
    else:
        from vision_agents.plugins.janus import JanusEdge, JanusPage

        page = JanusPage(host=host, port=port)
        await page.start()
        edge = JanusEdge(
            janus.url,
            token_secret=janus.token_secret,
            admin_key=janus.admin_key,
            page_url=page.url,
        )
    try:
        return await _run(edge, choice, duration, open_browser, every_s, on_ready)
    finally:
        if page is not None:
            await page.stop()


async def _run(
    edge: WebRTCEdge | JanusEdge,
    choice: ModelChoice,
    duration: float | None,
    open_browser: bool,
    every_s: float,
    on_ready: Callable[[str], Awaitable[None]] | None,
) -> int:

    agent = Agent(
        edge=edge,
        agent_user=User(name="Demo agent"),
        instructions=INSTRUCTIONS,
        llm=choice.llm,
        processors=choice.processors,
        vad=choice.vad,
        stt=choice.stt,
        tts=choice.tts,
    )
    edge.show_transcripts(choice.llm)  # both pages show what is said

    @choice.llm.events.subscribe
    async def on_transcript(event: RealtimeAgentSpeechTranscriptionEvent) -> None:
        print(f"agent says: {event.text}")

    joined = asyncio.Event()

    @edge.events.subscribe
    async def on_join(event: ParticipantJoinedEvent) -> None:
        print(f"{event.participant.name or 'someone'} joined the call")
        joined.set()

    call = await agent.create_call("default", "demo")
    print(f"starting: {_loading(choice)} ...", flush=True)
    loading_since = time.monotonic()
    async with agent.join(call):
        # The call server listens and the models are loaded: a participant can join now.
        print(f"ready in {time.monotonic() - loading_since:.1f} s")
        url = edge.join_url(call, ttl_s=max(3600.0, duration or 0.0))
        print(f"join the call: {url}", flush=True)
        if open_browser and not _open(url):
            print("(could not open a browser here: open the link yourself)")
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


def _loading(choice: ModelChoice) -> str:
    """What the agent loads before it can take a participant, for the progress line."""
    parts = [f"connecting to {choice.label}"] if not choice.offline else []
    if choice.stt is not None:
        model = getattr(choice.stt, "model_name", "")
        parts.append(f"loading Whisper ({model})" if model else "loading the STT model")
    if choice.vad is not None:
        parts.append("the Silero VAD")
    if choice.tts is not None:
        parts.append(f"the {choice.tts.provider_name} voice")
    return ", ".join(parts) + " and the call server"


async def _converse(
    agent: Agent,
    choice: ModelChoice,
    joined: asyncio.Event,
    every_s: float,
    duration: float | None,
    started: float,
) -> None:
    """Offline: describe what is seen soon after someone joins, then again after every
    ``every_s`` seconds in which nobody spoke and the agent was quiet; questions spoken in
    between are answered by the voice pipeline."""

    def left() -> float | None:
        return None if duration is None else duration - (time.monotonic() - started)

    last_voice = time.monotonic()

    @agent.llm.events.subscribe
    async def on_voice(event: UserSpeechStartedEvent | UserSpeechEndedEvent) -> None:
        nonlocal last_voice
        last_voice = time.monotonic()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(joined.wait(), left())
        if choice.offline:
            await asyncio.sleep(min(1.5, max(0.0, left() or 1.5)))  # let some video arrive
            await agent.simple_response("Say what you see.")
            while left() is None or (left() or 0.0) > 0:
                await asyncio.sleep(min(0.25, max(0.0, left() or 0.25)))
                # Quiet time counts from the reply's end; a reply still being made (a slow
                # TTS) is not quiet: asking again would replace it before it is heard.
                if agent.speaking:
                    last_voice = time.monotonic()
                elif time.monotonic() - last_voice >= every_s:
                    last_voice = time.monotonic()
                    await agent.simple_response("Say what you see.")
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
