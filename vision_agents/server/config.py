"""What a `vision-agents serve` node allows: limits, timeouts and where it listens."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

TOKEN_ENV = "VISION_AGENTS_API_TOKEN"


@dataclass(frozen=True)
class ServerConfig:
    """Options of one server node; ``check()`` says which value is wrong and why."""

    factory: str
    host: str = "127.0.0.1"
    port: int = 8080
    call_host: str | None = None
    """Address of each worker's embedded call server (default: ``host``)."""
    api_token: str | None = field(default=None, repr=False)
    max_sessions: int = 4
    max_sessions_per_call: int = 1
    max_duration_s: float = 3600.0
    empty_timeout_s: float = 60.0
    """Leave when no one but the agent has been in the call this long (from start, too)."""
    prewarm: int = 1
    """Idle worker processes kept started and imported, ready for the next session."""
    fork_workers: bool = True
    """Fork workers from one process that has imported the SDK and the app (milliseconds a
    worker) instead of starting each from scratch (about 1.3 s of CPU a worker)."""
    drain_timeout_s: float = 60.0
    """On SIGTERM, how long sessions may go on before they are told to leave."""
    stop_timeout_s: float = 5.0
    """How long an agent has to leave once told to, before its process is killed."""
    unresponsive_s: float = 5.0
    """A worker that sends nothing this long (its loop is blocked) is killed."""
    start_timeout_s: float = 60.0
    """How long a session may take to start (worker ready, factory, join)."""
    max_session_memory_mb: float | None = None
    """A session whose process grows past this (a leak) is killed and reported failed."""
    max_cpu_percent: float | None = 85.0
    """Admission from measured load: refuse new sessions while the machine's CPU use (all
    cores, averaged over ``LOAD_WINDOW_S``) is at or above this. None: no CPU limit."""
    max_loop_lag_ms: float | None = 50.0
    """Admission from measured load: refuse new sessions while a running session's event
    loop wakes this late or later (the 90th percentile of its last report's samples), so the
    sessions already running keep their share. None: no lag limit."""
    redis_url: str | None = field(default=None, repr=False)
    """Join a fleet coordinated through this Redis (docs/scaling.md); None: a lone node."""
    node_id: str | None = None
    """This node's name in the fleet (default: the host name and the API port)."""
    advertise_url: str | None = None
    """Where the other nodes reach this node's API (default: http://host:port)."""

    def resolved_token(self) -> str:
        token = self.api_token or os.environ.get(TOKEN_ENV, "")
        if not token:
            raise ValueError(
                f"no API token: set {TOKEN_ENV} or pass --api-token (clients then send "
                "'Authorization: Bearer <token>')"
            )
        if len(token) < 16:
            raise ValueError("the API token must be at least 16 characters long")
        return token

    def check(self) -> None:
        if ":" not in self.factory or self.factory.startswith(":") or self.factory.endswith(":"):
            raise ValueError(f"factory must look like MODULE:FUNCTION, got {self.factory!r}")
        positive = {
            "max_sessions": self.max_sessions,
            "max_sessions_per_call": self.max_sessions_per_call,
            "max_duration_s": self.max_duration_s,
            "empty_timeout_s": self.empty_timeout_s,
            "stop_timeout_s": self.stop_timeout_s,
            "unresponsive_s": self.unresponsive_s,
            "start_timeout_s": self.start_timeout_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if self.drain_timeout_s < 0:
            raise ValueError(f"drain_timeout_s must be 0 or more, got {self.drain_timeout_s}")
        for name, limit in (
            ("max_session_memory_mb", self.max_session_memory_mb),
            ("max_cpu_percent", self.max_cpu_percent),
            ("max_loop_lag_ms", self.max_loop_lag_ms),
        ):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be positive, got {limit!r}")
        if self.prewarm < 0:
            raise ValueError(f"prewarm must be 0 or more, got {self.prewarm}")
        if self.redis_url is not None and not self.redis_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        if (
            self.node_id is not None
            and not self.node_id.replace("-", "").replace("_", "").isalnum()
        ):
            raise ValueError(f"node_id must be letters, digits, '-' and '_', got {self.node_id!r}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port must be 0-65535, got {self.port}")
        self.resolved_token()
