"""Events an edge transport publishes about the call and its participants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import aiortc

from vision_agents.core.audio import PcmData
from vision_agents.core.events.base import BaseEvent
from vision_agents.core.types import Participant

TrackKind = Literal["audio", "video"]
TrackSource = Literal["camera", "microphone", "screen"]
"""What a track carries: a person's camera or microphone, or a shared screen."""


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
    """A participant started sending audio or video; ``track`` is an aiortc track to pull.
    ``source``: a camera or microphone (None: the edge does not say), or a shared screen
    (a video track of its own, added when sharing starts and removed when it stops)."""

    type: ClassVar[str] = "edge.track.added"

    participant: Participant
    track: aiortc.MediaStreamTrack
    kind: TrackKind
    source: TrackSource | None = None


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
class VideoReceiveStatsEvent(BaseEvent):
    """What the edge received of one participant's video over the last ``interval_s`` seconds,
    sent every few seconds per video track (edges that measure it: ``WebRTCEdge``).

    ``fps`` counts decoded frames; ``kbps`` the encoded bytes that arrived; ``freezes`` and
    ``frozen_s`` are totals since the track began (a freeze: no new frame for longer than the
    edge's freeze gap, 0.5 s, after the first frame; not counted while the camera is muted).
    ``estimate_bps`` is the bandwidth estimate the edge sends the participant's browser and
    ``estimate_falls`` how often it fell for a full path. ``model_frames``: frames of this
    track sent to the agent's realtime model so far. None: not known to this edge (or no
    realtime model).
    """

    type: ClassVar[str] = "edge.video.stats"

    participant: Participant
    track_id: str
    interval_s: float
    width: int
    """Of the last frame received (0 before the first)."""
    height: int
    fps: float
    kbps: float | None
    freezes: int
    frozen_s: float
    muted: bool = False
    estimate_bps: int | None = None
    estimate_falls: int | None = None
    model_frames: int | None = None


@dataclass(kw_only=True)
class CallEndedEvent(BaseEvent):
    type: ClassVar[str] = "edge.call.ended"

    call_id: str
    reason: str = ""
