"""Test kit: an in-memory edge, a Realtime double and real media made on the spot.

These are part of the product: users test their agents with them, without keys or hardware.
"""

from vision_agents.testing.fake_realtime import FakeRealtime, ReceivedFrame
from vision_agents.testing.media import (
    make_test_video,
    pattern_frame,
    read_frame_index,
    read_wav,
    synthesize_speech,
    tone,
    write_wav,
)
from vision_agents.testing.memory_edge import InMemoryEdge, PublishedMedia
from vision_agents.testing.player import LiveFileTrack, MediaFilePlayer

__all__ = [
    "FakeRealtime",
    "InMemoryEdge",
    "LiveFileTrack",
    "MediaFilePlayer",
    "PublishedMedia",
    "ReceivedFrame",
    "make_test_video",
    "pattern_frame",
    "read_frame_index",
    "read_wav",
    "synthesize_speech",
    "tone",
    "write_wav",
]
