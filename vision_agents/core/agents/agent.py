"""`Agent`: joins a call, routes media between the call, the LLM and processors."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from vision_agents.core.agents.audio_input import AudioInput
from vision_agents.core.agents.audio_output import AudioOutputTrack
from vision_agents.core.agents.speak_up import SpeakUp, SpeakUpPolicy
from vision_agents.core.agents.video_input import VideoInput
from vision_agents.core.agents.voice_pipeline import VoicePipeline
from vision_agents.core.audio import PcmData
from vision_agents.core.edge.events import (
    AudioReceivedEvent,
    CallEndedEvent,
    DTMFReceivedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackRemovedEvent,
)
from vision_agents.core.edge.transport import Call, EdgeTransport
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.events.manager import EventManager
from vision_agents.core.llm.chat import ChatLLM
from vision_agents.core.llm.events import RealtimeAudioOutputDoneEvent, RealtimeAudioOutputEvent
from vision_agents.core.llm.llm import LLM
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.mcp import MCPServer, MCPTools
from vision_agents.core.processors.base import (
    AudioProcessor,
    AudioPublisher,
    Processor,
    VideoProcessor,
    VideoPublisher,
)
from vision_agents.core.recording import CallRecorder, RecordingSummary
from vision_agents.core.types import Participant, User
from vision_agents.core.voice.stt import STT
from vision_agents.core.voice.tts import TTS
from vision_agents.core.voice.vad import VAD

logger = logging.getLogger(__name__)

EdgeEvent = (
    ParticipantJoinedEvent
    | ParticipantLeftEvent
    | TrackAddedEvent
    | TrackRemovedEvent
    | CallEndedEvent
    | DTMFReceivedEvent
)


class Agent:
    """An AI participant in a call.

    It hears every participant (audio goes to the Realtime model and audio processors), watches
    them (video goes through one shared forwarder per track to the model at its ``fps`` and to
    each video processor at theirs) and speaks back (the model's audio is published into the
    call). The work is split into small owners: ``AudioInput``, ``VideoInput`` and
    ``AudioOutputTrack``; the agent only wires them to the edge's and the model's events.

    With a chat LLM (not a ``Realtime``) give it ``vad``, ``stt`` and ``tts``: a
    ``VoicePipeline`` then listens, transcribes, answers and speaks, with barge-in.

    ``mcp_servers``: MCP servers whose tools the model gets (``docs/mcp.md``); the agent
    connects them before the model and closes them when it closes.

    ``speak_up``: opt-in, a ``Realtime`` model only: ask the model for a remark when the scene
    changes (``SpeakUp``; docs/realtime.md). Off by default: video alone never makes it talk.

    ``prefer_screen_share``: while a participant shares a screen the model watches it rather
    than any camera (the default; False: the model keeps to the newest track of any kind).
    """

    def __init__(
        self,
        edge: EdgeTransport,
        agent_user: User | None = None,
        instructions: str = "",
        llm: LLM | None = None,
        processors: Sequence[Processor] = (),
        *,
        vad: VAD | None = None,
        stt: STT | None = None,
        tts: TTS | None = None,
        mcp_servers: Sequence[MCPServer] = (),
        speak_up: SpeakUp | None = None,
        prefer_screen_share: bool = True,
    ) -> None:
        if llm is None:
            raise ValueError("Agent needs an llm, e.g. gemini.Realtime() or openai.Realtime()")
        if speak_up is not None and not isinstance(speak_up, SpeakUp):
            raise ConfigurationError(f"speak_up must be a SpeakUp, got {type(speak_up).__name__}")
        if speak_up is not None and not isinstance(llm, Realtime):
            raise ConfigurationError(
                f"speak_up needs a Realtime model (its frame policy sees the changes); "
                f"{type(llm).__name__} is not one"
            )
        self._voice = _voice_pipeline(llm, vad, stt, tts, processors, lambda: self.audio_track)
        self.edge = edge
        self.llm = llm
        self.agent_user = agent_user or User(name="Agent")
        self.instructions = instructions
        self.processors = list(processors)
        self.events = EventManager(name="agent.events")
        self.participant: Participant | None = None
        self.mcp = MCPTools(llm, mcp_servers) if mcp_servers else None
        """The MCP servers' tools (None without ``mcp_servers``)."""

        realtime = llm if isinstance(llm, Realtime) else None
        self.audio_track = AudioOutputTrack()
        self._audio_in = AudioInput(self._on_participant_audio)
        video_processors = [p for p in self.processors if isinstance(p, VideoProcessor)]
        if self._voice is not None and self._voice.frame_grabber is not None:
            video_processors.append(self._voice.frame_grabber)
        self._video_in = VideoInput(realtime, video_processors, prefer_screen=prefer_screen_share)
        self._audio_processors = [p for p in self.processors if isinstance(p, AudioProcessor)]
        self._speak_up = (
            SpeakUpPolicy(speak_up, realtime, lambda: self.speaking, self.events)
            if speak_up is not None and realtime is not None
            else None
        )
        self._recorder: CallRecorder | None = None
        self._call_ended = asyncio.Event()
        self._joined = False
        self._closed = False
        self.start_phases: dict[str, float] = {}
        """Seconds each step of joining took, in order: ``mcp``, ``model`` (the realtime
        session or the voice pipeline), ``edge`` (into the call), ``publish``."""

    # -- public API ------------------------------------------------------------------------

    async def create_call(self, call_type: str = "default", call_id: str | None = None) -> Call:
        """Create a call on the edge (a random id if none is given)."""
        return await self.edge.create_call(call_type, call_id or uuid.uuid4().hex)

    @asynccontextmanager
    async def join(self, call: Call) -> AsyncIterator[Agent]:
        """Join ``call`` for the duration of the ``async with`` block, then leave cleanly."""
        try:
            await self._start(call)
            yield self
        finally:
            await self.close()

    async def finish(self) -> None:
        """Wait until the call ends (the edge says so, or the agent is closed)."""
        await self._call_ended.wait()

    @property
    def speaking(self) -> bool:
        """The agent is producing a reply (voice pipeline) or its audio is still queued."""
        if self._voice is not None and self._voice.agent_speaking:
            return True
        return self.audio_track.buffered_ms > 0

    @property
    def speak_up(self) -> SpeakUpPolicy | None:
        """The speak-up policy at work (its counts and state); None unless ``speak_up=``."""
        return self._speak_up

    @property
    def audio_input(self) -> AudioInput:
        """Reads the participants' audio (add a frame listener to see it too)."""
        return self._audio_in

    @property
    def video_input(self) -> VideoInput:
        """Routes the participants' video (add a consumer to get it too)."""
        return self._video_in

    @property
    def recorder(self) -> CallRecorder | None:
        """The recording under way, if any."""
        return self._recorder

    async def start_recording(self, path: str | Path, **options: Any) -> CallRecorder:
        """Start writing the call to ``path`` (.mp4 or .webm); ``options`` go to
        ``CallRecorder``. Opt-in: nothing is recorded unless this is called."""
        if not self._joined or self._closed:
            raise RuntimeError("start_recording needs the agent in a call: call it inside join()")
        if self._recorder is not None:
            raise RuntimeError(
                f"already recording to {self._recorder.path}; stop_recording() first"
            )
        recorder = CallRecorder(path, **options)
        await recorder.start(self)
        self._recorder = recorder
        await self._update_video_wanted()
        return recorder

    async def stop_recording(self) -> RecordingSummary | None:
        """Finish the recording under way (None if there is none)."""
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        try:
            return await recorder.stop()
        finally:
            if not self._closed:
                await self._update_video_wanted()

    async def simple_response(self, text: str) -> None:
        """Ask the model to respond to ``text`` as if a participant had said it."""
        if self._voice is not None:
            await self._voice.respond(text)
            return
        await self.llm.simple_response(text)

    async def close(self) -> None:
        """Stop everything the agent started; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._call_ended.set()
        self.edge.events.unsubscribe(self._on_edge_event)
        self.llm.events.unsubscribe(self._on_model_audio)
        if self._speak_up is not None:
            self._speak_up.close()
        if self._recorder is not None:
            try:
                await self.stop_recording()
            except Exception:
                logger.exception("finishing the recording failed")
        await self._audio_in.close()
        await self._video_in.close()
        if self._voice is not None:
            await self._voice.close()
        if isinstance(self.llm, Realtime):
            await self.llm.close()
        if self.mcp is not None:
            try:
                await self.mcp.close()
            except Exception:
                logger.exception("closing the MCP servers failed")
        for processor in self.processors:
            try:
                await processor.close()
            except Exception:
                logger.exception("closing processor %s failed", processor.name)
        await self.edge.close()
        self.audio_track.stop()
        await self.llm.events.close()
        await self.events.close()

    # -- wiring ----------------------------------------------------------------------------

    async def _start(self, call: Call) -> None:
        if self._joined:
            raise RuntimeError("this Agent already joined a call; create one Agent per call")
        self._joined = True
        self.llm.set_instructions(self.instructions)
        self.edge.events.subscribe(self._on_edge_event)
        self.llm.events.subscribe(self._on_model_audio)
        self.edge.model_frames = self._video_in.model_frames  # for the edge's video stats
        phase = _Phases(self.start_phases)
        if self.mcp is not None:  # first: the model's first session has the MCP tools
            await self.mcp.connect()
            phase.done("mcp")
        if isinstance(self.llm, Realtime) and not self.llm.is_connected:
            await self.llm.connect()
        if self._voice is not None:
            await self._voice.start()
        if self._speak_up is not None:
            self._speak_up.start()
        phase.done("model")
        self.participant = await self.edge.join(call, self.agent_user)
        phase.done("edge")
        wanted = self._video_wanted()
        if wanted is not None:
            await self.edge.want_video(*wanted)
        await self.edge.publish_audio(self._pick_audio_track())
        if isinstance(self.llm, Realtime):  # barge-ins truncate at what was really played
            self.llm.set_playback_position(self.audio_track.played_ms)
        video_publishers = [p for p in self.processors if isinstance(p, VideoPublisher)]
        if video_publishers:
            if len(video_publishers) > 1:
                logger.warning(
                    "%d video publishers; publishing %s only",
                    len(video_publishers),
                    video_publishers[0].name,
                )
            await self.edge.publish_video(video_publishers[0].publish_video_track())
        phase.done("publish")

    def _video_wanted(self) -> tuple[float | None, int | None] | None:
        """What anything of ours takes of a participant's video: the most frames a second (the
        model's fps and each video processor's, None when one takes every frame) and the
        longest side it needs (the model's ``max_image_side``, each processor's ``max_side``,
        the recording's picture; None when one needs full size). None: nothing watches video,
        so nothing is asked of the edge."""
        needs: list[tuple[float | None, int | None]] = [
            (p.fps, p.max_side) for p in self._video_in.processors
        ]
        if isinstance(self.llm, Realtime):
            needs.append((self.llm.fps, _image_side(self.llm)))
        if self._recorder is not None and self._recorder.video:
            needs.append((self._recorder.fps, max(self._recorder.size)))
        if not needs:
            return None
        rates, sides = [fps for fps, _ in needs], [side for _, side in needs]
        max_fps = None if None in rates else max(r for r in rates if r is not None)
        max_side = None if None in sides else max(s for s in sides if s is not None)
        return max_fps, max_side

    async def _update_video_wanted(self) -> None:
        await self.edge.want_video(*(self._video_wanted() or (None, None)))

    def _pick_audio_track(self) -> AudioOutputTrack:
        publishers = [p for p in self.processors if isinstance(p, AudioPublisher)]
        if publishers:
            track = publishers[0].publish_audio_track()
            if isinstance(track, AudioOutputTrack):
                self.audio_track = track
            else:
                raise TypeError(
                    f"AudioPublisher {publishers[0].name} must return an AudioOutputTrack, "
                    f"got {type(track).__name__}"
                )
        return self.audio_track

    async def _on_edge_event(self, event: EdgeEvent) -> None:
        # One handler for all call events keeps them in order (added before removed).
        if isinstance(event, TrackAddedEvent):
            if event.kind == "audio":
                self._audio_in.add_track(event.participant, event.track)
            else:
                await self._video_in.add_track(
                    event.participant, event.track, screen=event.source == "screen"
                )
        elif isinstance(event, TrackRemovedEvent):
            if event.kind == "audio":
                await self._audio_in.remove_track(event.track_id)
            else:
                await self._video_in.remove_track(event.track_id)
        elif isinstance(event, ParticipantLeftEvent):
            await self._audio_in.remove_participant(event.participant)
            await self._video_in.remove_participant(event.participant)
            if self._voice is not None:
                self._voice.forget(event.participant)
            if self._speak_up is not None:
                self._speak_up.forget(event.participant)
            if isinstance(self.llm, Realtime):
                self.llm.forget_participant(event.participant)
            for processor in self.processors:
                if isinstance(processor, VideoProcessor):
                    await processor.on_participant_left(event.participant)
        elif isinstance(event, CallEndedEvent):
            self._call_ended.set()
        self.events.send(event)

    async def _on_model_audio(
        self, event: RealtimeAudioOutputEvent | RealtimeAudioOutputDoneEvent
    ) -> None:
        if isinstance(event, RealtimeAudioOutputEvent):
            self.audio_track.write(event.audio_data, event.response_id)
        elif event.interrupted:
            self.audio_track.clear()
        else:
            self.audio_track.end_of_response()

    async def _on_participant_audio(self, pcm: PcmData, participant: Participant) -> None:
        if self._speak_up is not None:
            self._speak_up.hear(pcm, participant)
        if isinstance(self.llm, Realtime):
            await self.llm.simple_audio_response(pcm, participant)
        elif self._voice is not None:
            await self._voice.on_audio(pcm, participant)
        for processor in self._audio_processors:
            try:
                await processor.process_audio(pcm, participant)
            except Exception:
                logger.exception("audio processor %s failed", processor.name)
        self.events.send(AudioReceivedEvent(participant=participant, pcm=pcm))


def _voice_pipeline(
    llm: LLM,
    vad: VAD | None,
    stt: STT | None,
    tts: TTS | None,
    processors: Sequence[Processor],
    track: Callable[[], AudioOutputTrack],
) -> VoicePipeline | None:
    """The pipeline for a chat LLM given ``vad``, ``stt`` and ``tts``; None for a Realtime."""
    given = {"vad": vad, "stt": stt, "tts": tts}
    if isinstance(llm, Realtime):
        if any(v is not None for v in given.values()):
            raise ValueError(
                f"{type(llm).__name__} is a Realtime model: it hears and speaks itself; "
                "vad=, stt= and tts= are only for chat LLMs"
            )
        return None
    if all(v is None for v in given.values()):
        return None
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise ValueError(f"a voice agent needs vad=, stt= and tts=; missing: {', '.join(missing)}")
    if not isinstance(llm, ChatLLM):
        raise TypeError(
            f"the voice pipeline needs a ChatLLM that streams text (e.g. openai.LLM, "
            f"gemini.LLM, OfflineResponder), got {type(llm).__name__}"
        )
    assert vad is not None and stt is not None and tts is not None
    return VoicePipeline(llm, vad, stt, tts, track, processors)


def _image_side(model: Realtime) -> int | None:
    """The longest side a model's frames are scaled to before it sends them (the
    ``max_image_side`` every provider built on ``ProtocolRealtime`` has); None (full size) for
    a model without one."""
    side = getattr(model, "max_image_side", None)
    return side if isinstance(side, int) and not isinstance(side, bool) else None


class _Phases:
    """Records the seconds since the previous step into ``into[name]``."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into
        self._last = time.monotonic()

    def done(self, name: str) -> None:
        now = time.monotonic()
        self._into[name] = round(now - self._last, 4)
        self._last = now
