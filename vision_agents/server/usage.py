"""What one session used, counted in its worker from the agent's public events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from vision_agents.core.agents.agent import Agent
from vision_agents.core.edge.events import (
    AudioReceivedEvent,
    ParticipantLeftEvent,
    TrackRemovedEvent,
    VideoReceiveStatsEvent,
)
from vision_agents.core.llm.events import (
    RealtimeAudioOutputEvent,
    RealtimeConnectedEvent,
    RealtimeReconnectedEvent,
    Usage,
    UsageEvent,
)
from vision_agents.core.llm.realtime import Realtime
from vision_agents.core.voice.events import TurnTimingEvent, UserSpeechEndedEvent


@dataclass
class SessionUsage:
    """Counters for one agent; ``snapshot()`` is what the worker reports to the server.

    Audio in is what participants sent the agent; audio out is the agent's voice really
    played into the call (not silence). Turn latency runs from the end of a user's speech to
    the agent's first audio: from ``TurnTimingEvent`` (voice pipeline) or from
    ``UserSpeechEndedEvent`` to the next ``RealtimeAudioOutputEvent`` (realtime models that
    report speech ends). Reconnects come from ``RealtimeReconnectedEvent`` (or model
    connections after the first); frames to the model come from the model's ``frames_sent``
    (``Realtime`` models count them); tokens are the session's totals from ``UsageEvent``, as
    the provider reported them, and ``tokens_input_image_estimated`` is the model's own
    estimate of its frames (``image_tokens_sent``: each frame once, by the published rule).
    ``video`` is the edge's last ``VideoReceiveStatsEvent`` per participant camera still in
    the call.
    """

    agent: Agent
    audio_in_s: float = 0.0
    connects: int = 0
    reconnected: int = 0
    tokens: Usage = field(default_factory=Usage)
    turn_latencies_s: list[float] = field(default_factory=list)
    video: dict[str, VideoReceiveStatsEvent] = field(default_factory=dict)
    _speech_ended_at: float | None = None

    def attach(self) -> None:
        self.agent.events.subscribe(self._on_agent_event)
        self.agent.llm.events.subscribe(self._on_model_event)
        self.agent.edge.events.subscribe(self._on_video_event)

    async def _on_video_event(
        self, event: VideoReceiveStatsEvent | TrackRemovedEvent | ParticipantLeftEvent
    ) -> None:
        if isinstance(event, VideoReceiveStatsEvent):
            self.video[event.track_id] = event
        elif isinstance(event, TrackRemovedEvent):
            self.video.pop(event.track_id, None)
        else:
            for track_id, stats in list(self.video.items()):
                if stats.participant.user_id == event.participant.user_id:
                    del self.video[track_id]

    async def _on_agent_event(self, event: AudioReceivedEvent) -> None:
        self.audio_in_s += event.pcm.duration

    async def _on_model_event(
        self,
        event: RealtimeConnectedEvent
        | RealtimeReconnectedEvent
        | UsageEvent
        | RealtimeAudioOutputEvent
        | UserSpeechEndedEvent
        | TurnTimingEvent,
    ) -> None:
        if isinstance(event, RealtimeConnectedEvent):
            self.connects += 1
        elif isinstance(event, RealtimeReconnectedEvent):
            self.reconnected += 1
        elif isinstance(event, UsageEvent):
            self.tokens = event.totals
        elif isinstance(event, UserSpeechEndedEvent):
            self._speech_ended_at = time.monotonic()
        elif isinstance(event, RealtimeAudioOutputEvent):
            if self._speech_ended_at is not None:
                self.turn_latencies_s.append(time.monotonic() - self._speech_ended_at)
                self._speech_ended_at = None
        elif event.tts_first_audio_ms is not None:
            self._speech_ended_at = None
            self.turn_latencies_s.append(event.tts_first_audio_ms / 1000)

    @property
    def audio_out_s(self) -> float:
        track = self.agent.audio_track
        return track.samples_played / track.sample_rate

    def snapshot(self) -> dict[str, Any]:
        """Totals so far, plus the turn latencies measured since the last snapshot."""
        latencies, self.turn_latencies_s = self.turn_latencies_s, []
        llm = self.agent.llm
        return {
            "audio_in_s": round(self.audio_in_s, 3),
            "audio_out_s": round(self.audio_out_s, 3),
            # Providers that report reconnections say so; for the others, count connections.
            "reconnects": max(self.reconnected, self.connects - 1),
            "frames_to_model": llm.frames_sent if isinstance(llm, Realtime) else 0,
            "tokens_input_image_estimated": (
                llm.image_tokens_sent if isinstance(llm, Realtime) else 0
            ),
            "tokens": {
                "input_text": self.tokens.input_text,
                "input_audio": self.tokens.input_audio,
                "input_image": self.tokens.input_image,
                "output_text": self.tokens.output_text,
                "output_audio": self.tokens.output_audio,
            },
            "turn_latencies_s": latencies,
            "participants": [p.name or p.user_id for p in self.agent.edge.participants],
            "video": [_video_figures(event) for event in self.video.values()],
        }


def _video_figures(event: VideoReceiveStatsEvent) -> dict[str, Any]:
    """One camera's last figures, as the worker reports them (plain JSON)."""
    return {
        "participant": event.participant.user_id,
        "width": event.width,
        "height": event.height,
        "fps": event.fps,
        "kbps": event.kbps,
        "estimate_bps": event.estimate_bps,
        "freezes": event.freezes,
        "frozen_s": event.frozen_s,
        "model_frames": event.model_frames,
    }


class LoopLagProbe:
    """Samples how late this event loop wakes up (a blocked or overloaded loop shows here)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval_s)
            self.samples.append(max(0.0, loop.time() - before - self.interval_s))

    def take(self) -> list[float]:
        samples, self.samples = self.samples, []
        return samples


def process_usage(process: psutil.Process) -> dict[str, float]:
    """CPU seconds used so far and resident memory of ``process``."""
    times = process.cpu_times()
    return {"cpu_s": times.user + times.system, "rss_bytes": float(process.memory_info().rss)}
