"""`EdgeTransport`: the abstraction over a call that an agent joins."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiortc

from vision_agents.core.edge.sender_clock import SenderClock
from vision_agents.core.events.manager import EventManager
from vision_agents.core.llm.events import (
    RealtimeAgentSpeechTranscriptionEvent,
    RealtimeUserSpeechTranscriptionEvent,
)
from vision_agents.core.types import Participant, User

if TYPE_CHECKING:
    from vision_agents.core.llm.llm import LLM


@dataclass
class Call:
    """A call on an edge: its type and id, plus whatever the edge wants to attach (join links)."""

    call_type: str
    call_id: str
    extra: dict[str, Any] = field(default_factory=dict)


class EdgeTransport(ABC):
    """A place where people and the agent meet: participants, their tracks, and publishing.

    After ``join``, the edge sends events on ``self.events`` (see ``vision_agents.core.edge.events``):
    joined/left, track added/removed/muted, and call ended. Participants already present are
    announced right after joining, so the agent sees everyone. Tracks are aiortc
    ``MediaStreamTrack`` objects that the agent pulls at its own pace.
    """

    def __init__(self) -> None:
        self.events = EventManager(name=f"{type(self).__name__}.events")
        self.model_frames: Callable[[str], int | None] | None = None
        """Frames of a track (by id) sent to the agent's realtime model so far, None when
        not known; set by the ``Agent``. Edges that report video stats include it."""

    @abstractmethod
    async def create_call(self, call_type: str, call_id: str) -> Call:
        """Create (or look up) a call."""

    @abstractmethod
    async def join(self, call: Call, user: User) -> Participant:
        """Join ``call`` as ``user`` (the agent); returns the agent's participant."""

    @abstractmethod
    async def publish_audio(self, track: aiortc.MediaStreamTrack) -> None:
        """Publish the agent's voice into the call."""

    @abstractmethod
    async def publish_video(self, track: aiortc.MediaStreamTrack) -> None:
        """Publish a video track (e.g. a processor's annotated video) into the call."""

    @property
    @abstractmethod
    def participants(self) -> list[Participant]:
        """Everyone in the call except the agent."""

    @abstractmethod
    async def leave(self) -> None:
        """Leave the call and stop everything the edge started for the agent."""

    async def want_video(  # noqa: B027 - optional
        self, max_fps: float | None, max_side: int | None = None
    ) -> None:
        """The agent's consumers take at most ``max_fps`` frames a second of any participant's
        video (None: every frame) and need at most ``max_side`` pixels on a frame's longest
        side (None: full size). Edges that can ask senders to send less do so while no person
        watches them; the default does nothing."""

    def sender_clock(self, track_id: str) -> SenderClock | None:
        """The clock that dates ``track_id``'s frames on its sender's wall clock (from RTCP
        sender reports), which keeps one participant's audio and video in step; None where the
        edge has none (the default): frames are then timed by their arrival."""
        return None

    async def send_message(self, message: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Send a JSON message to every participant's page (the pages show transcripts).
        Dropped when not in a call, and by edges with no channel for it (the default)."""

    def show_transcripts(self, llm: LLM) -> None:
        """Forward the model's transcripts of both sides to the participants' pages."""

        async def forward(
            event: RealtimeAgentSpeechTranscriptionEvent | RealtimeUserSpeechTranscriptionEvent,
        ) -> None:
            who = "agent" if isinstance(event, RealtimeAgentSpeechTranscriptionEvent) else "user"
            await self.send_message({"type": "transcript", "who": who, "text": event.text})

        llm.events.subscribe(forward)

    async def close(self) -> None:
        """Leave, then stop the event bus."""
        await self.leave()
        await self.events.close()
