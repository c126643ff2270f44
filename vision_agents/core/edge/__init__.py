"""Edges: the calls an agent joins (`EdgeTransport`) and the events they raise."""

from vision_agents.core.edge.events import (
    AudioReceivedEvent,
    CallEndedEvent,
    DTMFReceivedEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackMutedEvent,
    TrackRemovedEvent,
    VideoReceiveStatsEvent,
)
from vision_agents.core.edge.transport import Call, EdgeTransport

__all__ = [
    "AudioReceivedEvent",
    "Call",
    "CallEndedEvent",
    "DTMFReceivedEvent",
    "EdgeTransport",
    "ParticipantJoinedEvent",
    "ParticipantLeftEvent",
    "TrackAddedEvent",
    "TrackMutedEvent",
    "TrackRemovedEvent",
    "VideoReceiveStatsEvent",
]
