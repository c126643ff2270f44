"""The Agent's voice when its LLM is not a `Realtime`: VAD -> STT -> chat LLM -> TTS.

``VoicePipeline`` owns the turn taking (one ``VADStream`` per participant), the reply task
(speech-to-text, the LLM's streamed text cut into sentences, each sentence spoken as soon as
it is complete) and barge-in: when someone starts speaking while the agent talks, the agent's
queued audio is cleared and the reply task cancelled at once.

Transcripts are published on the LLM's events as the same types a realtime model sends
(``RealtimeUserSpeechTranscriptionEvent``, ``RealtimeAgentSpeechTranscriptionEvent``), so
listeners work with either kind of model.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import av

from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.llm.chat import ChatLLM
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeErrorEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.processors.base import Processor, VideoProcessor
from vision_agents.core.types import Participant
from vision_agents.core.utils.tasks import TaskOwner, cancel_and_wait
from vision_agents.core.voice.events import (
    AgentSpeechInterruptedEvent,
    PartialTranscriptEvent,
    TurnTimingEvent,
    UserSpeechEndedEvent,
    UserSpeechStartedEvent,
)
from vision_agents.core.voice.sentences import SentenceSplitter
from vision_agents.core.voice.stt import STT
from vision_agents.core.voice.tts import TTS
from vision_agents.core.voice.vad import VAD, SpeechEnd, SpeechStart, VADStream

logger = logging.getLogger(__name__)


class LatestFrame(VideoProcessor):
    """Keeps the newest camera still for a vision chat model (``ChatLLM.set_latest_frame``)."""

    name = "latest_frame"
    fps = 1.0

    def __init__(self, llm: ChatLLM) -> None:
        super().__init__()
        self._llm = llm

    async def process_video(self, frame: av.VideoFrame, participant: Participant) -> None:
        self._llm.set_latest_frame(frame)


class _Timing:
    def __init__(self, speech_ended_at: float, detected_at: float) -> None:
        self.start = speech_ended_at
        self.vad_ms = (detected_at - speech_ended_at) * 1000
        self.stt_ms = 0.0
        self.llm_first_token_ms: float | None = None
        self.tts_first_audio_ms: float | None = None

    def since(self) -> float:
        return (time.monotonic() - self.start) * 1000


class VoicePipeline:
    """Listens with ``vad`` + ``stt``, thinks with a ``ChatLLM``, speaks with ``tts`` into the
    track returned by ``track()`` (the agent's ``AudioOutputTrack``)."""

    def __init__(
        self,
        llm: ChatLLM,
        vad: VAD,
        stt: STT,
        tts: TTS,
        track: Callable[[], AudioOutputTrack],
        processors: Sequence[Processor] = (),
    ) -> None:
        self.llm = llm
        self.vad = vad
        self.stt = stt
        self.tts = tts
        self._track = track
        self._processors = list(processors)
        self._streams: dict[str, VADStream] = {}
        self._tasks = TaskOwner("voice-pipeline")
        self._reply: asyncio.Task[None] | None = None
        self.frame_grabber = LatestFrame(llm) if llm.attach_video else None
        llm.context = self._processor_state

    def _processor_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for processor in self._processors:
            try:
                known = processor.state()
            except Exception:
                logger.exception("state() of processor %s failed", processor.name)
                continue
            if known:
                state[processor.name] = known
        return state

    @property
    def agent_speaking(self) -> bool:
        """A reply is being produced or its audio is still queued for playback."""
        replying = self._reply is not None and not self._reply.done()
        return replying or self._track().buffered_ms > 0

    async def start(self) -> None:
        """Load the STT and TTS models before the first turn."""
        await asyncio.gather(self.stt.start(), self.tts.start())

    async def close(self) -> None:
        await self._tasks.close()
        self._reply = None
        self._streams.clear()
        await asyncio.gather(self.stt.close(), self.tts.close(), return_exceptions=True)

    # -- input ------------------------------------------------------------------------------

    async def on_audio(self, pcm: PcmData, participant: Participant) -> None:
        stream = self._streams.get(participant.session_id)
        if stream is None:
            stream = self._streams[participant.session_id] = self.vad.create_stream()
        for result in stream.process(pcm):
            if isinstance(result, SpeechStart):
                barge_in = self.agent_speaking
                if barge_in:
                    await self.interrupt(participant)
                self._send(UserSpeechStartedEvent(participant=participant, barge_in=barge_in))
            elif isinstance(result, SpeechEnd):
                self._send(
                    UserSpeechEndedEvent(participant=participant, duration_s=result.audio.duration)
                )
                timing = _Timing(result.speech_ended_at, result.detected_at)
                await self._start_reply(self._turn(result.audio, participant, timing))

    def forget(self, participant: Participant) -> None:
        """Drop a participant's turn state (they left)."""
        self._streams.pop(participant.session_id, None)

    async def respond(self, text: str, participant: Participant | None = None) -> None:
        """Speak the reply to ``text`` as if someone had said it (replaces any current reply)."""
        now = time.monotonic()
        await self._start_reply(self._reply_to(text, participant, _Timing(now, now)))

    async def interrupt(self, participant: Participant | None = None) -> None:
        """Stop talking now: queued audio is dropped and the reply task cancelled."""
        self._track().clear()
        await cancel_and_wait(self._reply)
        self._track().clear()
        self._send(AgentSpeechInterruptedEvent(participant=participant))

    # -- the reply ----------------------------------------------------------------------------

    async def _start_reply(self, coro: Coroutine[Any, Any, None]) -> None:
        await cancel_and_wait(self._reply)
        self._reply = self._tasks.spawn(coro, "reply")

    async def _turn(self, audio: PcmData, participant: Participant, timing: _Timing) -> None:
        parts: list[str] = []
        async for piece in self.stt.stream(audio):
            if piece.strip():
                parts.append(piece.strip())
                self._send(PartialTranscriptEvent(text=" ".join(parts), participant=participant))
        timing.stt_ms = timing.since() - timing.vad_ms
        text = " ".join(parts)
        if not text:
            logger.debug("turn of %s had no words", participant.user_id)
            return
        self._emit_llm(RealtimeUserSpeechTranscriptionEvent(text=text, original=participant))
        await self._reply_to(text, participant, timing)

    async def _reply_to(self, text: str, participant: Participant | None, timing: _Timing) -> None:
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        response_id = uuid.uuid4().hex
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._speak(sentences, response_id, timing))
                try:
                    await self._think(text, participant, sentences, timing)
                finally:
                    sentences.put_nowait(None)
        except* Exception as errors:
            for error in errors.exceptions:
                logger.warning("voice reply failed: %s", error)
                self._emit_llm(RealtimeErrorEvent(error=error, context="voice reply"))
        self._send(
            TurnTimingEvent(
                vad_ms=timing.vad_ms,
                stt_ms=timing.stt_ms,
                llm_first_token_ms=timing.llm_first_token_ms,
                tts_first_audio_ms=timing.tts_first_audio_ms,
            )
        )

    async def _think(
        self,
        text: str,
        participant: Participant | None,
        sentences: asyncio.Queue[str | None],
        timing: _Timing,
    ) -> None:
        splitter = SentenceSplitter()
        async for delta in self.llm.stream_response(text, participant):
            if timing.llm_first_token_ms is None:
                timing.llm_first_token_ms = timing.since()
            for sentence in splitter.feed(delta):
                sentences.put_nowait(sentence)
        for sentence in splitter.flush():
            sentences.put_nowait(sentence)

    async def _speak(
        self, sentences: asyncio.Queue[str | None], response_id: str, timing: _Timing
    ) -> None:
        track = self._track()
        while (sentence := await sentences.get()) is not None:
            async for pcm in self.tts.stream(sentence):
                if timing.tts_first_audio_ms is None:
                    timing.tts_first_audio_ms = timing.since()
                track.write(pcm, response_id)
            self._emit_llm(RealtimeAgentSpeechTranscriptionEvent(text=sentence))
        track.end_of_response()

    def _emit_llm(self, event: BaseEvent) -> None:
        self.llm._emit(event)

    def _send(self, event: BaseEvent) -> None:
        event.session_id = self.llm.session_id
        event.plugin_name = "voice"
        self.llm.events.send(event)
