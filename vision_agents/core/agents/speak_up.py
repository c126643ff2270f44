"""Speaking up when the scene changes: an opt-in policy that asks the model for a remark.

Video alone never makes a realtime model talk: it answers the user. With ``SpeakUp`` the
agent asks for a reply when the frame policy (``SceneChange``) sends a frame *because the
scene changed*, at most once per ``interval`` s, never while a participant speaks (or within
``quiet_s`` after) and never while the agent replies. A change that comes at a bad moment is
dropped, not queued: the model has the frame, and a remark made later would be stale.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from vision_agents.core.audio import PcmData
from vision_agents.core.errors import ConfigurationError, UnsupportedFeature
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.events.manager import EventManager
from vision_agents.core.llm.events import (
    RealtimeAudioOutputDoneEvent,
    RealtimeAudioOutputEvent,
    RealtimeFrameSentEvent,
)
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.types import Participant
from vision_agents.core.voice.vad import VAD, LevelVAD, SpeechEnd, SpeechStart, VADStream

logger = logging.getLogger(__name__)

DEFAULT_INSTRUCTIONS = "The scene changed; say briefly what is new, if it matters."


@dataclass(frozen=True)
class SpeakUp:
    """Options of ``Agent(speak_up=SpeakUp(...))``.

    ``interval``: the fewest seconds between two requests. ``instructions``: what the model is
    asked (the reply's instructions; a user text turn on Gemini). ``quiet_s``: seconds after a
    participant's speech ends before speaking up is allowed (the model is answering them).
    ``vad``: how participant speech is heard (default ``LevelVAD()``, a level gate).
    ``clock``: what intervals are timed by (tests pass a fake one).
    """

    interval: float = 10.0
    instructions: str = DEFAULT_INSTRUCTIONS
    quiet_s: float = 1.0
    vad: VAD | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        for name in ("interval", "quiet_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigurationError(
                    f"SpeakUp {name} must be a number of seconds >= 0, got {value!r}"
                )
        if not isinstance(self.instructions, str) or not self.instructions.strip():
            raise ConfigurationError(
                f"SpeakUp instructions must be a non-empty string, got {self.instructions!r}"
            )


@dataclass(kw_only=True)
class SpeakUpRequestedEvent(BaseEvent):
    """The agent asked the model to speak up about a change (on ``agent.events``).

    ``at``: the policy's clock then; ``changed_at``: when the frame showing the change was sent.
    """

    type: ClassVar[str] = "agent.speak_up.requested"

    at: float
    changed_at: datetime
    instructions: str


class SpeakUpPolicy:
    """Runs ``SpeakUp`` for one agent: hears participants, watches the model, decides.

    Counts: ``changes`` (frames sent for a change), ``requests``, and ``skipped`` by reason
    (``"user_speaking"``, ``"agent_replying"``, ``"too_soon"``, ``"failed"``). It starts no task:
    it decides in the model's event handler and the request is the model's own.
    """

    def __init__(
        self,
        options: SpeakUp,
        llm: Realtime,
        agent_speaking: Callable[[], bool],
        events: EventManager,
    ) -> None:
        self.options = options
        self._llm = llm
        self._agent_speaking = agent_speaking
        self._events = events
        self._vad = options.vad or LevelVAD()
        self._streams: dict[str, VADStream] = {}
        self._speech_ended_at = -math.inf
        self._last_request_at = -math.inf
        self._responding: set[str | None] = set()
        self._reply: asyncio.Future[str] | None = None
        self.changes = 0
        self.requests = 0
        self.skipped: dict[str, int] = {}

    def start(self) -> None:
        if self._llm.frame_policy is None:
            logger.warning(
                "speak_up needs a SceneChange frame policy; llm.frame_policy is None (fixed "
                "rate), so no frame is ever sent for a change and the agent never speaks up"
            )
        self._llm.events.subscribe(self._on_model_event)

    def close(self) -> None:
        self._llm.events.unsubscribe(self._on_model_event)
        self._streams.clear()
        self._reply = None

    # -- what it knows -------------------------------------------------------------------

    @property
    def speakers(self) -> int:
        """Participants speaking now, as the VAD hears them."""
        return sum(stream.speaking for stream in self._streams.values())

    @property
    def user_speaking(self) -> bool:
        """A participant is speaking, or stopped less than ``quiet_s`` ago."""
        if self.speakers:
            return True
        return self.options.clock() - self._speech_ended_at < self.options.quiet_s

    @property
    def agent_replying(self) -> bool:
        """The model is producing a reply, its audio still plays, a tool call runs, or our
        request has not been answered yet."""
        return (
            bool(self._responding)
            or self._agent_speaking()
            or self._reply is not None
            or bool(self._llm.pending_tool_calls)
        )

    def hear(self, pcm: PcmData, participant: Participant) -> None:
        """A participant's audio, as the agent forwards it to the model."""
        stream = self._streams.get(participant.session_id)
        if stream is None:
            stream = self._streams[participant.session_id] = self._vad.create_stream(
                self.options.clock
            )
        for result in stream.process(pcm):
            if isinstance(result, SpeechEnd):
                self._speech_ended_at = max(self._speech_ended_at, self.options.clock())
            elif isinstance(result, SpeechStart):
                logger.debug("speak_up: %s started speaking", participant.user_id)

    def forget(self, participant: Participant) -> None:
        """The participant left: they are not speaking any more."""
        self._streams.pop(participant.session_id, None)

    def skip_reason(self) -> str | None:
        """Why a change now would not be spoken about; None when it would."""
        if self.user_speaking:
            return "user_speaking"
        if self.agent_replying:
            return "agent_replying"
        if self.options.clock() - self._last_request_at < self.options.interval:
            return "too_soon"
        return None

    # -- what it does --------------------------------------------------------------------

    async def _on_model_event(
        self,
        event: RealtimeFrameSentEvent | RealtimeAudioOutputEvent | RealtimeAudioOutputDoneEvent,
    ) -> None:
        if isinstance(event, RealtimeAudioOutputEvent):
            self._responding.add(event.response_id)
        elif isinstance(event, RealtimeAudioOutputDoneEvent):
            self._responding.discard(event.response_id)
            if event.response_id is None:
                self._responding.clear()
        elif event.reason == "change":
            self.changes += 1
            reason = self.skip_reason()
            if reason is None:
                await self._request(event.timestamp)
            else:
                self.skipped[reason] = self.skipped.get(reason, 0) + 1

    async def _request(self, changed_at: datetime) -> None:
        now = self.options.clock()
        self._last_request_at = now
        instructions = self.options.instructions
        try:
            reply = self._llm.generate_reply(instructions, timeout=max(self.options.interval, 5))
        except UnsupportedFeature:  # a model without reply requests: a text turn asks as well
            try:
                await self._llm.simple_response(instructions)
            except Exception as exc:
                self._failed(exc)
                return
        except Exception as exc:  # not connected, the connection lost for good
            self._failed(exc)
            return
        else:
            self._reply = reply
            reply.add_done_callback(self._reply_done)
        self.requests += 1
        self._events.send(
            SpeakUpRequestedEvent(at=now, changed_at=changed_at, instructions=instructions)
        )

    def _reply_done(self, reply: asyncio.Future[str]) -> None:
        if self._reply is reply:
            self._reply = None
        if not reply.cancelled() and reply.exception() is not None:
            logger.debug("speak_up: the reply did not come: %s", reply.exception())

    def _failed(self, exc: Exception) -> None:
        self.skipped["failed"] = self.skipped.get("failed", 0) + 1
        logger.warning("speak_up: asking %s for a reply failed: %s", self._llm.provider_name, exc)
