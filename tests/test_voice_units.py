"""Voice building blocks without the Agent: VAD turn detection, Agent wiring rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.conftest import wait_until
from vision_agents.core import Agent, PcmData
from vision_agents.core.voice import STT, TTS, OfflineResponder, SpeechEnd, SpeechStart
from vision_agents.plugins import local_tts, silero
from vision_agents.testing import FakeRealtime, InMemoryEdge, synthesize_speech


def silence(seconds: float, rate: int = 22050) -> PcmData:
    return PcmData(np.zeros(int(seconds * rate), np.int16), rate, 1)


def test_silero_finds_one_turn_with_its_padding() -> None:
    speech = synthesize_speech("How many people do you see?")
    audio = silence(0.5).append(speech).append(silence(1.0))
    stream = silero.VAD(min_silence_ms=400, prefix_padding_ms=300).create_stream()
    results = [r for chunk in audio.chunks(20) for r in stream.process(chunk)]
    assert [type(r) for r in results] == [SpeechStart, SpeechEnd]
    end = results[1]
    assert isinstance(end, SpeechEnd)
    assert end.audio.sample_rate == 16000
    # Speech plus padding before and the silence that ended it, not the whole recording.
    assert speech.duration < end.audio.duration < speech.duration + 1.0


def test_silero_ignores_silence_and_a_tone() -> None:
    stream = silero.VAD().create_stream()
    t = np.arange(48000) / 48000
    tone = PcmData((0.3 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16), 48000, 1)
    audio = silence(1.0, 48000).append(tone)
    assert [r for chunk in audio.chunks(20) for r in stream.process(chunk)] == []


def test_vad_rejects_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="threshold"):
        silero.VAD(threshold=1.5)
    with pytest.raises(ValueError, match="min_silence_ms"):
        silero.VAD(min_silence_ms=-1)


def test_agent_voice_arguments_are_checked() -> None:
    vad, tts = silero.VAD(), local_tts.EspeakTTS()
    with pytest.raises(ValueError, match="missing: stt"):
        Agent(edge=InMemoryEdge(), llm=OfflineResponder(), vad=vad, tts=tts)
    with pytest.raises(ValueError, match="Realtime model"):
        Agent(edge=InMemoryEdge(), llm=FakeRealtime(), vad=vad)


def test_vad_stamps_turns_with_the_stream_clock_and_counts_lengths_in_samples() -> None:
    """A fake clock: the stamps are the arrival times of the audio that started and ended the
    turn, however slowly the machine processed it."""
    now = [100.0]
    stream = silero.VAD(min_silence_ms=400).create_stream(clock=lambda: now[0])
    speech = synthesize_speech("How many people do you see?")
    results = []
    for i, chunk in enumerate(silence(0.5).append(speech).append(silence(1.0)).chunks(20)):
        now[0] = 100.0 + i * 0.02  # the chunk's arrival time
        results.extend(stream.process(chunk))
    start, end = results
    assert isinstance(start, SpeechStart) and isinstance(end, SpeechEnd)
    assert 100.5 <= start.at <= 100.5 + 0.3  # speech begins 0.5 s in
    # espeak's clip has silence at both ends and between words: the voiced part is shorter
    assert 0.5 * speech.duration < end.speech_ended_at - start.at <= speech.duration
    # the end is detected min_silence_ms after the last voiced window
    assert end.detected_at - end.speech_ended_at == pytest.approx(0.4, abs=0.08)


class GatedTTS(TTS):
    """A TTS that speaks only once ``gate`` is set: a slow engine on a busy machine."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def stream(self, text: str) -> AsyncIterator[PcmData]:
        await self.gate.wait()
        yield silence(0.2)


class SilentSTT(STT):
    async def stream(self, pcm: PcmData) -> AsyncIterator[str]:
        return
        yield ""


async def test_agent_is_speaking_while_its_reply_is_still_being_synthesised() -> None:
    """Nothing is queued for playback yet, but the reply is in progress: asking again would
    replace it unheard (the demo's greeting was lost that way on a loaded machine)."""
    tts = GatedTTS()
    edge = InMemoryEdge()
    agent = Agent(edge=edge, llm=OfflineResponder(), vad=silero.VAD(), stt=SilentSTT(), tts=tts)
    async with agent.join(await agent.create_call()):
        assert not agent.speaking
        await agent.simple_response("What do you see?")
        assert agent.audio_track.buffered_ms == 0 and agent.speaking
        tts.gate.set()
        await wait_until(lambda: not agent.speaking, 10, "the reply played out")
