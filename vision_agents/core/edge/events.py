"""Events an edge transport publishes about the call and its participants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import aiortc

from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant

TrackKind = Literal["audio", "video"]


@dataclass(kw_only=True)
class ParticipantJoinedEvent(BaseEvent):
    type: ClassVar[str] = "edge.participant.joined"

    participant: Participant


@dataclass(kw_only=True)
class ParticipantLeftEvent(BaseEvent):
    type: ClassVar[str] = "edge.participant.left"

    participant: Participant


@dataclass(kw_only=True)
class TrackAddedEvent(BaseEvent):
    """A participant started sending audio or video; ``track`` is an aiortc track to pull."""

    type: ClassVar[str] = "edge.track.added"

    participant: Participant
    track: aiortc.MediaStreamTrack
    kind: TrackKind


@dataclass(kw_only=True)
class TrackRemovedEvent(BaseEvent):
    type: ClassVar[str] = "edge.track.removed"

    participant: Participant
    track_id: str
    kind: TrackKind


@dataclass(kw_only=True)
class TrackMutedEvent(BaseEvent):
    """A participant muted (``muted=True``) or unmuted a track."""

    type: ClassVar[str] = "edge.track.muted"

    participant: Participant
    track_id: str
    kind: TrackKind
    muted: bool


@dataclass(kw_only=True)
class DTMFReceivedEvent(BaseEvent):
    """A participant pressed a key on a phone's keypad (``digit``: 0-9, ``*``, ``#``, A-D)."""

    type: ClassVar[str] = "edge.dtmf.received"

    participant: Participant
    digit: str


@dataclass(kw_only=True)
class AudioReceivedEvent(BaseEvent):
    """A chunk of a participant's audio reached the agent."""

    type: ClassVar[str] = "edge.audio.received"

    participant: Participant
    pcm: PcmData


@dataclass(kw_only=True)
class CallEndedEvent(BaseEvent):
    type: ClassVar[str] = "edge.call.ended"

    call_id: str
    reason: str = ""
