"""Test kit: an in-memory edge, a Realtime double and real media made on the spot.

These are part of the product: users test their agents with them, without keys or hardware.
"""

import importlib
from typing import TYPE_CHECKING, Any

from vision_agents.testing.clock import ManualClock
from vision_agents.testing.fake_realtime import FakeRealtime, ReceivedFrame
from vision_agents.testing.media import (
    dominant_hz,
    locate_samples,
    make_test_video,
    pattern_frame,
    read_frame_index,
    read_wav,
    sample_index,
    synthesize_speech,
    tone,
    write_wav,
)
from vision_agents.testing.memory_edge import InMemoryEdge, PublishedMedia
from vision_agents.testing.player import LiveFileTrack, MediaFilePlayer

if TYPE_CHECKING:
    from vision_agents.testing.fault_proxy import FaultProxy
    from vision_agents.testing.gemini_server import (
        GeminiLiveServer,
        WireAudio,
        WireFrame,
        WireMessage,
    )
    from vision_agents.testing.openai_chat_server import (
        ChatReply,
        OpenAIChatServer,
        ToolCallReply,
    )
    from vision_agents.testing.openai_server import OpenAIRealtimeServer, ScriptedReply
    from vision_agents.testing.xai_server import XAIRealtimeServer

# The protocol servers need their provider's SDK (an extra): import them on first use.
_LAZY = {
    "GeminiLiveServer": "vision_agents.testing.gemini_server",
    "WireAudio": "vision_agents.testing.gemini_server",
    "WireFrame": "vision_agents.testing.gemini_server",
    "WireMessage": "vision_agents.testing.gemini_server",
    "OpenAIRealtimeServer": "vision_agents.testing.openai_server",
    "ScriptedReply": "vision_agents.testing.openai_server",
    "XAIRealtimeServer": "vision_agents.testing.xai_server",
    "FaultProxy": "vision_agents.testing.fault_proxy",
    "ChatReply": "vision_agents.testing.openai_chat_server",
    "OpenAIChatServer": "vision_agents.testing.openai_chat_server",
    "ToolCallReply": "vision_agents.testing.openai_chat_server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vision_agents.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ChatReply",
    "FakeRealtime",
    "FaultProxy",
    "GeminiLiveServer",
    "InMemoryEdge",
    "LiveFileTrack",
    "ManualClock",
    "MediaFilePlayer",
    "OpenAIChatServer",
    "OpenAIRealtimeServer",
    "PublishedMedia",
    "ReceivedFrame",
    "ScriptedReply",
    "ToolCallReply",
    "WireAudio",
    "WireFrame",
    "WireMessage",
    "XAIRealtimeServer",
    "dominant_hz",
    "locate_samples",
    "make_test_video",
    "pattern_frame",
    "read_frame_index",
    "read_wav",
    "sample_index",
    "synthesize_speech",
    "tone",
    "write_wav",
]
