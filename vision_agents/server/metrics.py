"""The server's Prometheus metrics (all named ``vision_agents_*``), on their own registry."""

from __future__ import annotations

import contextlib
from typing import Any, TypeGuard

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
TURN_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class ServerMetrics:
    """Counters the session manager updates; ``render()`` is the ``/metrics`` body.

    Session usage (audio, reconnects, CPU, memory, loop lag, turn latency) comes from the
    workers' stats messages: totals are turned into counter increments here. The ``video_*``
    series are the one exception to "no per-session labels": labelled by session and
    participant, they exist only while that participant's camera is in a running session
    (``VideoSeries`` removes them), so at most ``--max-sessions`` times the call's seats.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        ns = "vision_agents"
        self.sessions_active = Gauge(
            "sessions_active", "Sessions starting or running", namespace=ns, registry=r
        )
        self.sessions_started = Counter(
            "sessions_started", "Sessions whose agent joined its call", namespace=ns, registry=r
        )
        self.sessions_ended = Counter(
            "sessions_ended", "Sessions that ended, by reason", ["reason"], namespace=ns, registry=r
        )
        self.sessions_failed = Counter(
            "sessions_failed",
            "Sessions that failed, by reason",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.sessions_refused = Counter(
            "sessions_refused",
            "Session requests refused, by reason",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        self.workers_idle = Gauge(
            "workers_idle",
            "Pre-warmed worker processes waiting for a session",
            namespace=ns,
            registry=r,
        )
        self.cpu_percent = Gauge(
            "machine_cpu_percent",
            "CPU use of the whole machine (admission control)",
            namespace=ns,
            registry=r,
        )
        self.draining = Gauge("draining", "1 while the node drains", namespace=ns, registry=r)
        self.fleet_redis_up = Gauge(
            "fleet_redis_up",
            "1 while this fleet node's last heartbeat to Redis worked (0 alone, or without it)",
            namespace=ns,
            registry=r,
        )
        self.fleet_failovers = Counter(
            "fleet_failovers",
            "Sessions this node moved off a node that stopped heartbeating",
            namespace=ns,
            registry=r,
        )
        self.audio_in = Counter(
            "audio_in_seconds", "Participant audio received by agents", namespace=ns, registry=r
        )
        self.audio_out = Counter(
            "audio_out_seconds", "Agent speech played into calls", namespace=ns, registry=r
        )
        self.reconnects = Counter(
            "model_reconnects",
            "Model connections re-opened during sessions",
            namespace=ns,
            registry=r,
        )
        self.model_frames = Counter(
            "model_frames",
            "Video frames sent to the models (after their fps throttle)",
            namespace=ns,
            registry=r,
        )
        self.tokens = Counter(
            "model_tokens",
            "Tokens the models reported using, by kind (input_audio, output_text, ...)",
            ["kind"],
            namespace=ns,
            registry=r,
        )
        self.image_tokens_estimated = Counter(
            "model_image_tokens_estimated",
            "Estimated, not reported: image tokens of the frames sent to the models, each frame"
            " once, by the providers' published rules",
            namespace=ns,
            registry=r,
        )
        self.turn_latency = Histogram(
            "turn_latency_seconds",
            "End of user speech to the agent's first audio",
            namespace=ns,
            registry=r,
            buckets=TURN_BUCKETS,
        )
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late session event loops woke up (sampled every 50 ms)",
            namespace=ns,
            registry=r,
            buckets=LAG_BUCKETS,
        )
        self.session_cpu = Counter(
            "session_cpu_seconds",
            "CPU time used by session worker processes",
            namespace=ns,
            registry=r,
        )
        self.session_memory = Gauge(
            "session_memory_bytes",
            "Resident memory of running session workers",
            namespace=ns,
            registry=r,
        )
        video = ["session", "participant"]
        self.video_width = Gauge(
            "video_receive_width_pixels",
            "Width of the last frame received of a participant's camera",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_height = Gauge(
            "video_receive_height_pixels",
            "Height of the last frame received of a participant's camera",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_fps = Gauge(
            "video_receive_fps",
            "Frames a second decoded of a participant's camera (last stats interval)",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_kbps = Gauge(
            "video_receive_kbps",
            "Encoded kbit/s received of a participant's camera (last stats interval)",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_estimate = Gauge(
            "video_estimate_bps",
            "The bandwidth estimate the call server sends a participant's browser",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_freezes = Counter(
            "video_freezes",
            "Freezes of a participant's camera (no frame for over 0.5 s)",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_frozen = Counter(
            "video_frozen_seconds",
            "Time a participant's camera was frozen",
            video,
            namespace=ns,
            registry=r,
        )
        self.video_model_frames = Counter(
            "video_model_frames",
            "Frames of a participant's camera sent to the session's model",
            video,
            namespace=ns,
            registry=r,
        )
        ProcessCollector(namespace=ns, registry=r)  # the server process's own CPU and memory

    def render(self) -> bytes:
        return generate_latest(self.registry)


class UsageDeltas:
    """Turns one worker's running totals into increments of the shared counters."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics
        self.last: dict[str, float] = {}

    def _add(self, counter: Any, key: str, stats: dict[str, Any]) -> None:
        value = stats.get(key)
        if isinstance(value, int | float):
            delta = float(value) - self.last.get(key, 0.0)
            if delta > 0:
                counter.inc(delta)
                self.last[key] = float(value)

    def update(self, stats: dict[str, Any]) -> None:
        m = self.metrics
        tokens = stats.get("tokens")
        if isinstance(tokens, dict):
            for kind, value in tokens.items():
                self._add(m.tokens.labels(kind), f"tokens.{kind}", {f"tokens.{kind}": value})
        self._add(m.audio_in, "audio_in_s", stats)
        self._add(m.audio_out, "audio_out_s", stats)
        self._add(m.reconnects, "reconnects", stats)
        self._add(m.model_frames, "frames_to_model", stats)
        self._add(m.image_tokens_estimated, "tokens_input_image_estimated", stats)
        self._add(m.session_cpu, "cpu_s", stats)
        for value in _floats(stats.get("turn_latencies_s")):
            m.turn_latency.observe(value)
        for value in _floats(stats.get("loop_lag_s")):
            m.loop_lag.observe(value)


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, int | float)]


class VideoSeries:
    """One session's ``video_*`` series, from the ``video`` list of its worker's stats: set on
    each report, removed for cameras no longer reported and all at ``clear()``."""

    def __init__(self, metrics: ServerMetrics, session_id: str) -> None:
        self.metrics = metrics
        self.session_id = session_id
        self.totals: dict[str, dict[str, float]] = {}  # participant -> counter -> last total

    def _gauges(self) -> list[tuple[Any, str]]:
        m = self.metrics
        return [
            (m.video_width, "width"),
            (m.video_height, "height"),
            (m.video_fps, "fps"),
            (m.video_kbps, "kbps"),
            (m.video_estimate, "estimate_bps"),
        ]

    def _counters(self) -> list[tuple[Any, str]]:
        m = self.metrics
        return [
            (m.video_freezes, "freezes"),
            (m.video_frozen, "frozen_s"),
            (m.video_model_frames, "model_frames"),
        ]

    def update(self, video: Any) -> None:
        if not isinstance(video, list):
            return
        seen: set[str] = set()
        for entry in video:
            if not isinstance(entry, dict) or not isinstance(entry.get("participant"), str):
                continue
            who = entry["participant"]
            seen.add(who)
            labels = (self.session_id, who)
            for gauge, key in self._gauges():
                value = entry.get(key)
                if _is_number(value):
                    gauge.labels(*labels).set(value)
            totals = self.totals.setdefault(who, {})
            for counter, key in self._counters():
                value = entry.get(key)
                if not _is_number(value):
                    continue
                child = counter.labels(*labels)  # shown from the first report, at 0
                delta = float(value) - totals.get(key, 0.0)
                if delta > 0:
                    child.inc(delta)
                    totals[key] = float(value)
        for who in set(self.totals) - seen:
            self._remove(who)

    def clear(self) -> None:
        for who in list(self.totals):
            self._remove(who)

    def _remove(self, who: str) -> None:
        self.totals.pop(who, None)
        for metric, _ in self._gauges() + self._counters():
            with contextlib.suppress(KeyError):  # never set: a figure the edge did not know
                metric.remove(self.session_id, who)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
