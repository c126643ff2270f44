"""A security-camera agent: counts people, says when someone enters, answers "what do you see?".

Detection runs on the CPU with OpenCV's built-in face detector (nothing to download); swap in
``vision_agents.plugins.onnx.YOLODetector("yolo11n.onnx")`` for 80 COCO classes and count
"person" instead of "face". With ``GEMINI_API_KEY`` or ``OPENAI_API_KEY`` set (and the plugin
installed) it talks through that realtime model; without a key it runs offline: the local
voice pipeline (Silero VAD, Whisper, a local TTS) around ``OfflineResponder``, which answers
from the detector's counts ("I see one face.") and says it is offline. The camera here is a
clip made on the spot: an empty scene, then a visitor (scikit-image's astronaut photo) walks
in. ``--question WAV`` has a resident ask something out loud near the end.

    python examples/detection_voice/doorcam.py [--question question.wav]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vision_agents.core import Agent, User
from vision_agents.core.llm.chat import ChatLLM
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeResponseEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.llm.llm import LLM
from vision_agents.core.processors.detection import (
    DetectionAgentLink,
    DetectionProcessor,
    OpenCVDetector,
    count_reached,
    someone_entered,
)
from vision_agents.core.voice import OfflineResponder
from vision_agents.demo import offline_voice
from vision_agents.testing import InMemoryEdge

INSTRUCTIONS = (
    "You watch a door camera. Keep count of the people in view, say briefly when someone "
    "enters, and use the what_is_in_view tool to answer questions about the scene."
)


def make_camera_clip(path: Path, seconds: float = 4.0, visitor_at: float = 1.0) -> Path:
    """An empty grey scene, then a visitor from ``visitor_at`` seconds on (30 fps, 640x480)."""
    import skimage.data

    empty = np.full((480, 640, 3), 90, dtype=np.uint8)
    visitor = empty.copy()
    visitor[:, 80:560] = skimage.data.astronaut()[16:496, 16:496]  # type: ignore[no-untyped-call,unused-ignore]
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for i in range(round(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(
                visitor if i >= visitor_at * 30 else empty, format="rgb24"
            )
            frame.pts, frame.time_base = i, Fraction(1, 30)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def pick_model() -> LLM:
    """A realtime model when a key is set, else the offline responder (voiced locally)."""
    if os.environ.get("GEMINI_API_KEY"):
        from vision_agents.plugins import gemini

        return gemini.Realtime(fps=1)  # type: ignore[no-any-return,unused-ignore]
    if os.environ.get("OPENAI_API_KEY"):
        from vision_agents.plugins import openai

        return openai.Realtime(fps=1)  # type: ignore[no-any-return,unused-ignore]
    return OfflineResponder()


async def main(
    seconds: float = 4.0, model: LLM | None = None, question: Path | None = None
) -> DetectionAgentLink:
    """Run the door scene for ``seconds``; near the end a resident says ``question`` (a wav)
    if given, else the agent is asked "What do you see?" directly."""
    model = model or pick_model()
    voice = offline_voice() if isinstance(model, ChatLLM) else None
    if voice is not None:
        print(
            "doorcam: OFFLINE mode (no GEMINI_API_KEY or OPENAI_API_KEY): a local voice "
            "pipeline answers from the face detector's counts, with no AI model."
        )
    detector = DetectionProcessor(
        OpenCVDetector(("face",)),
        detect_fps=5,
        rules=[someone_entered("face", cooldown_s=10), count_reached("face", 3)],
    )
    edge = InMemoryEdge()
    agent = Agent(edge=edge, agent_user=User(name="Doorcam"), instructions=INSTRUCTIONS,
                  llm=model, processors=[detector], vad=voice.vad if voice else None,
                  stt=voice.stt if voice else None, tts=voice.tts if voice else None)  # fmt: skip
    say = agent.simple_response if voice is not None else None  # speak through the pipeline
    link = DetectionAgentLink(detector, model, push_summary=True, say=say)
    heard: list[str] = []
    answered = asyncio.Event()  # the answer to what the resident said has been spoken
    reply = ""

    @model.events.subscribe
    async def on_reply(
        event: RealtimeResponseEvent
        | RealtimeUserSpeechTranscriptionEvent
        | RealtimeAgentSpeechTranscriptionEvent,
    ) -> None:
        nonlocal reply
        if isinstance(event, RealtimeUserSpeechTranscriptionEvent):
            print(f"resident said: {event.text}")
            heard.append(event.text)
        elif isinstance(event, RealtimeAgentSpeechTranscriptionEvent):
            print(f"agent spoke: {event.text}")
            if heard and reply.endswith(event.text.strip()):
                answered.set()
        elif event.is_complete:
            print(f"agent: {event.text}")
            reply = event.text.strip()

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_camera_clip(Path(tmp) / "door.mkv", seconds=seconds)
        async with agent.join(await agent.create_call("default", "doorcam")):
            await edge.add_participant("door", clip)
            await asyncio.sleep(seconds - 0.5)
            if question is not None:
                await edge.add_participant("resident", question)
                await asyncio.wait_for(answered.wait(), 30)
            else:
                await agent.simple_response("What do you see?")
            answer = await model.tools.call("what_is_in_view", {})
            print(f"what_is_in_view -> {answer.value}")
            print(f"published {edge.published.video_frames} annotated frames")
            await asyncio.sleep(0.3)
    link.close()
    return link


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A door camera agent on a generated clip.")
    parser.add_argument("--question", type=Path, help="a wav the resident says near the end")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the door clip")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, question=args.question))
