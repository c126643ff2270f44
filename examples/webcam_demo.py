"""Webcam demo: the agent sees your camera, hears your microphone and answers through your speakers.

    pip install -e ".[all]"             # or ".[local,silero,local-tts,models]" for offline only
    python examples/webcam_demo.py                              # camera 0, default mic/speaker
    python examples/webcam_demo.py --video clip.mp4 --audio question.wav --duration 10
    python examples/webcam_demo.py --video clip.mp4 --audio question.wav --speaker none --duration 10
    python examples/webcam_demo.py --camera "lavfi:testsrc2=size=640x480:rate=30"

With GOOGLE_API_KEY/GEMINI_API_KEY it talks to Gemini Live, with OPENAI_API_KEY to OpenAI
Realtime; with no key it runs offline, as `vision-agents demo` does: a local voice pipeline
(Silero VAD, Whisper, a local TTS) hears each question and answers out loud from the OpenCV
detector's counts and the picture's colours and motion, saying it is offline. The agent's
annotated video (the overlay, or the detector's boxes offline) shows in a window where OpenCV
has a GUI and a display, otherwise on a local page (its address is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections import deque
from pathlib import Path

import aiortc
import av
import cv2
from aiortc.mediastreams import MediaStreamError

from vision_agents.core import Agent, User
from vision_agents.core.llm.events import (
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.processors import VideoProcessorPublisher
from vision_agents.core.types import Participant
from vision_agents.demo import ModelChoice, offline_choice
from vision_agents.plugins.local import LocalEdge

INSTRUCTIONS = "You see the user's camera and hear them. Answer briefly and say what you see."


class OverlayTrack(aiortc.MediaStreamTrack):
    """The newest annotated frame, to whoever pulls."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._frames: deque[av.VideoFrame] = deque(maxlen=2)
        self._ready = asyncio.Event()

    def put(self, frame: av.VideoFrame) -> None:
        self._frames.append(frame)
        self._ready.set()

    async def recv(self) -> av.VideoFrame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class Overlay(VideoProcessorPublisher):
    """A trivial annotation: a caption with the frame size and the frame count."""

    name = "overlay"
    fps = 15.0

    def __init__(self) -> None:
        super().__init__()
        self.track = OverlayTrack()
        self.count = 0

    def publish_video_track(self) -> aiortc.MediaStreamTrack:
        return self.track

    async def process_video(self, frame: av.VideoFrame, participant: Participant) -> None:
        self.count += 1
        img = frame.to_ndarray(format="bgr24")
        caption = f"agent sees {frame.width}x{frame.height}  #{self.count}"
        cv2.rectangle(img, (0, 0), (img.shape[1], 28), (0, 0, 0), -1)
        cv2.putText(img, caption, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 1)
        out = av.VideoFrame.from_ndarray(img, format="bgr24")
        out.pts, out.time_base = frame.pts, frame.time_base
        self.track.put(out)

    async def close(self) -> None:
        self.track.stop()
        await super().close()


def pick_model(provider: str) -> ModelChoice:
    """A provider's Realtime when its key is set and its plugin imports, else the offline voice
    agent of `vision-agents demo` (its responder, detector, VAD, STT and TTS)."""
    google = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
    if provider in ("auto", "gemini") and (google or provider == "gemini"):
        try:
            from vision_agents.plugins import gemini

            return ModelChoice(gemini.Realtime(fps=1), "Gemini Live", False, [Overlay()])
        except ImportError as exc:
            print(f"gemini plugin unavailable ({exc}); trying the next option")
    if provider in ("auto", "openai") and (
        os.environ.get("OPENAI_API_KEY") or provider == "openai"
    ):
        try:
            from vision_agents.plugins import openai

            return ModelChoice(openai.Realtime(fps=1), "OpenAI Realtime", False, [Overlay()])
        except ImportError as exc:
            print(f"openai plugin unavailable ({exc}); running offline")
    return offline_choice()


def _device(value: str) -> str | None:
    return None if value.lower() == "none" else value


async def run(args: argparse.Namespace) -> int:
    choice = pick_model(args.provider)
    model = choice.llm
    print(f"model: {model.provider_name}")
    if choice.offline:
        print(
            "OFFLINE mode: no GOOGLE_API_KEY/GEMINI_API_KEY or OPENAI_API_KEY, so no AI model; "
            "a local voice pipeline answers from what the detector and the camera show."
        )
    edge = LocalEdge(
        camera=args.video or _device(args.camera),
        microphone=args.audio or _device(args.mic),
        speaker=_device(args.speaker),
        preview=args.preview,
        loop_files=args.loop,
    )
    agent = Agent(
        edge=edge,
        agent_user=User(name="Ada"),
        instructions=INSTRUCTIONS,
        llm=model,
        processors=choice.processors,
        vad=choice.vad,
        stt=choice.stt,
        tts=choice.tts,
    )

    @model.events.subscribe
    async def on_reply(event: RealtimeResponseEvent | RealtimeUserSpeechTranscriptionEvent) -> None:
        if isinstance(event, RealtimeUserSpeechTranscriptionEvent):
            print(f"you said: {event.text}")
        elif event.is_complete:
            print(f"agent says: {event.text}")

    async with agent.join(await agent.create_call("local", "webcam-demo")):
        if edge.preview.url:
            print(f"agent video: {edge.preview.url}")
        await asyncio.sleep(1.0)
        await agent.simple_response("What do you see?")
        try:
            await asyncio.wait_for(agent.finish(), args.duration)
        except TimeoutError:
            pass
    print("done")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--camera", default="0", help="index, name, URL, lavfi:<graph> or none")
    parser.add_argument("--video", type=Path, help="a video file to use instead of the camera")
    parser.add_argument("--mic", default="default", help="microphone index, name, or none")
    parser.add_argument("--audio", type=Path, help="a wav file to use instead of the microphone")
    parser.add_argument("--speaker", default="default", help="speaker index, name, or none")
    parser.add_argument(
        "--preview", default="auto", choices=["auto", "window", "page", "none"], help="agent video"
    )
    parser.add_argument(
        "--provider", default="auto", choices=["auto", "gemini", "openai", "offline"]
    )
    parser.add_argument("--duration", type=float, default=None, help="exit after S seconds")
    parser.add_argument("--loop", action="store_true", help="loop the --video/--audio files")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
