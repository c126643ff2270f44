"""Sessions on this node: admission (limits), one owner task per session, stop and drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import psutil

from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.server.config import ServerConfig
from vision_agents.server.metrics import ServerMetrics, UsageDeltas, VideoSeries
from vision_agents.server.pool import WorkerGone, WorkerPool, WorkerProcess
from vision_agents.server.tracing import Span, span

logger = logging.getLogger(__name__)

State = Literal["starting", "running", "stopping", "ended", "failed"]
ACTIVE_STATES = ("starting", "running", "stopping")
HISTORY = 100
LOAD_WINDOW_S = 1.0
CPU_SMOOTHING = 0.3  # weight of the newest report in a session's CPU use


class Refused(Exception):
    """A session request this node will not take: an HTTP status and a reason code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class Session:
    """One agent in one call, run by one worker process."""

    session_id: str
    call_id: str
    call_type: str
    metadata: dict[str, Any]
    created_at: float = field(default_factory=time.time)
    state: State = "starting"
    reason: str | None = None
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    join_url: str | None = None
    participants: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    worker: WorkerProcess | None = field(default=None, repr=False)
    started: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    done: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    traced: Span = field(default_factory=Span, repr=False)
    stop_reason: str | None = None
    startup: dict[str, float] = field(default_factory=dict)
    """Seconds each step of the start took: ``worker`` (the request to a worker taken from
    the pool, or started for it), then the worker's own steps (``build``, ``create_call``,
    the agent's ``mcp``, ``model``, ``edge``, ``publish``), ``in_worker`` (their sum) and
    ``total`` (the request to the agent in the call)."""
    loop_lag_s: float = 0.0
    """How late its event loop woke in the last report (90th percentile of the samples)."""
    cores: float = 0.0
    """CPU its process uses, in cores (smoothed over its reports)."""
    cpu_seen: tuple[float, float] | None = field(default=None, repr=False)
    """(monotonic time, CPU seconds) of its last report, for ``cores``."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def to_json(self) -> dict[str, Any]:
        end = self.ended_at or time.time()
        return {
            "session_id": self.session_id,
            "call_id": self.call_id,
            "call_type": self.call_type,
            "state": self.state,
            "reason": self.reason,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "join_url": self.join_url,
            "participants": list(self.participants),
            "startup": dict(self.startup),
            "usage": {
                "duration_s": round(end - self.started_at, 3) if self.started_at else 0.0,
                **self.usage,
            },
            "metadata": self.metadata,
        }


class SessionManager:
    """Admits sessions within the node's limits and owns each session's task."""

    def __init__(self, config: ServerConfig, pool: WorkerPool, metrics: ServerMetrics) -> None:
        self.config = config
        self.pool = pool
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._finished: deque[str] = deque()
        self.draining = False
        self.cpu_percent = 0.0
        """The machine's CPU use, kept up to date by ``watch_load``."""

    @property
    def active(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.active]

    def free_slots(self) -> int:
        return max(0, self.config.max_sessions - len(self.active))

    def not_ready_reason(self) -> str | None:
        """Why ``/ready`` says no (draining, at capacity), or None when sessions are welcome."""
        if self.draining:
            return "draining"
        if self.free_slots() == 0:
            return f"at capacity: {self.config.max_sessions} sessions running"
        overload = self.overload()
        if overload is not None:
            return f"overloaded: {overload}"
        return None

    def overload(self) -> str | None:
        """What measured load says no to new sessions (CPU, a late event loop), or None."""
        c = self.config
        if c.max_cpu_percent is not None:
            if self.cpu_percent >= c.max_cpu_percent:
                return f"CPU at {self.cpu_percent:.0f}% (limit {c.max_cpu_percent:.0f}%)"
            # Admit only a session the machine has room for: one more costs what the running
            # ones cost on average. Waiting for the limit to be crossed admits the session
            # that tips it over, and the ones already running pay for it.
            cost = self.session_cpu_percent()
            if cost > 0 and self.cpu_percent + cost >= c.max_cpu_percent:
                return (
                    f"CPU at {self.cpu_percent:.0f}% and a session takes about {cost:.0f}% "
                    f"(limit {c.max_cpu_percent:.0f}%)"
                )
        if c.max_loop_lag_ms is not None:
            running = [s.loop_lag_s for s in self.active if s.state == "running"]
            worst_ms = max(running, default=0.0) * 1000
            if worst_ms >= c.max_loop_lag_ms:
                return (
                    f"a running session's event loop is {worst_ms:.0f} ms late "
                    f"(limit {c.max_loop_lag_ms:.0f} ms)"
                )
        return None

    def session_cpu_percent(self) -> float:
        """What a running session costs on average, in % of the whole machine (0: none yet)."""
        cores = [s.cores for s in self.active if s.state == "running" and s.cores > 0]
        if not cores:
            return 0.0
        return sum(cores) / len(cores) * 100 / (psutil.cpu_count() or 1)

    async def watch_load(self) -> None:
        """Sample the machine's CPU use every ``LOAD_WINDOW_S`` (for admission and metrics)."""
        psutil.cpu_percent()  # the first call only starts the measurement
        while True:
            await asyncio.sleep(LOAD_WINDOW_S)
            self.cpu_percent = psutil.cpu_percent()
            self.metrics.cpu_percent.set(self.cpu_percent)

    def refill(self) -> None:
        if not self.draining:
            self.pool.fill(self.free_slots())
        self.metrics.workers_idle.set(len(self.pool.idle))

    async def create(
        self,
        call_id: str,
        call_type: str,
        metadata: dict[str, Any],
        session_id: str | None = None,
    ) -> Session:
        """Admit and start a session; returns once its agent is in the call (or failed).

        ``session_id``: the fleet's id for a session placed here (default: a new one)."""
        self._admit(call_id)
        session = Session(session_id or uuid.uuid4().hex, call_id, call_type, metadata)
        self.sessions[session.session_id] = session
        self.metrics.sessions_active.set(len(self.active))
        session.task = asyncio.ensure_future(self._run(session))
        started = asyncio.ensure_future(session.started.wait())
        try:
            await asyncio.wait({started, session.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(started)
        return session

    def _admit(self, call_id: str) -> None:
        c = self.config
        refusal: Refused | None = None
        if self.draining:
            refusal = Refused(503, "draining", "this node is draining and takes no new sessions")
        elif self.free_slots() == 0:
            refusal = Refused(
                503, "node_full", f"this node is at capacity ({c.max_sessions} sessions)"
            )
        elif (overload := self.overload()) is not None:
            refusal = Refused(
                503,
                "overloaded",
                f"this node is overloaded ({overload}): sessions already running come first",
            )
        else:
            in_call = sum(1 for s in self.active if s.call_id == call_id)
            if in_call >= c.max_sessions_per_call:
                refusal = Refused(
                    409,
                    "call_full",
                    f"call {call_id!r} already has {in_call} agent session(s) "
                    f"(at most {c.max_sessions_per_call} a call)",
                )
        if refusal is not None:
            self.metrics.sessions_refused.labels(refusal.reason).inc()
            raise refusal

    async def stop(self, session: Session, reason: str = "deleted") -> None:
        """Tell the agent to leave and wait until it has (killing its process if it hangs)."""
        if session.active:
            session.state = "stopping"
            session.stop_reason = reason
            if session.worker is None:
                if session.task is not None:
                    session.task.cancel()
            else:
                with contextlib.suppress(WorkerGone):
                    await session.worker.send({"type": "stop", "reason": reason})
            try:
                async with asyncio.timeout(self.config.stop_timeout_s):
                    await session.done.wait()
            except TimeoutError:
                logger.warning("session %s did not leave in time: killing it", session.session_id)
                if session.worker is not None:
                    await session.worker.kill()
        await session.done.wait()

    async def drain(self) -> None:
        """Refuse new sessions, let running ones finish up to the deadline, then stop them."""
        self.draining = True
        self.metrics.draining.set(1)
        pending = [s.done.wait() for s in self.active]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.drain_timeout_s):
                    await asyncio.gather(*pending)
        await asyncio.gather(*(self.stop(s, "drain") for s in self.active))

    async def close(self) -> None:
        await asyncio.gather(*(self.stop(s, "shutdown") for s in self.active))
        await cancel_and_wait(*(s.task for s in self.sessions.values()))

    # -- one session ---------------------------------------------------------------------------

    async def _run(self, session: Session) -> None:
        ids = {"session_id": session.session_id, "call_id": session.call_id}
        with span("vision_agents.session", **ids) as traced:
            session.traced = traced
            try:
                await self._supervise(session)
            finally:
                traced.set(state=session.state, reason=session.reason or "")
                if session.state == "failed":
                    traced.error(f"{session.reason}: {session.error}")

    async def _supervise(self, session: Session) -> None:
        try:
            try:
                worker = await self.pool.acquire(self.config.start_timeout_s)
            except (TimeoutError, WorkerGone) as exc:
                self._finish(
                    session, "failed", "no_worker", str(exc) or "no worker started in time"
                )
                return
            session.startup["worker"] = round(time.time() - session.created_at, 4)
            session.traced.event("worker", pid=worker.pid)
            session.worker = worker  # the pool refills once this session started: on a
            try:  # small machine a warming worker would slow the start down
                await self._follow(session, worker)
            finally:
                code = await worker.stop(self.config.stop_timeout_s)
                if session.active:
                    self._finish(session, "failed", "worker_exited", f"exit code {code}")
        except asyncio.CancelledError:
            if session.active:
                self._finish(session, "ended", session.stop_reason or "deleted", None)
            raise
        finally:
            if session.active:
                self._finish(session, "failed", "internal", "the session's owner stopped")
            self.refill()

    async def _follow(self, session: Session, worker: WorkerProcess) -> None:
        """Send the start command, then read the worker's messages until the session ends."""
        c = self.config
        deltas = UsageDeltas(self.metrics)
        video = VideoSeries(self.metrics, session.session_id)
        try:
            await worker.send(
                {
                    "type": "start",
                    "session_id": session.session_id,
                    "call_id": session.call_id,
                    "call_type": session.call_type,
                    "metadata": session.metadata,
                    "max_duration_s": c.max_duration_s,
                    "empty_timeout_s": c.empty_timeout_s,
                }
            )
            while session.active:
                waiting = c.start_timeout_s if session.started_at is None else c.unresponsive_s
                try:
                    async with asyncio.timeout(waiting):
                        message = await worker.receive()
                except TimeoutError:
                    reason = "start_timeout" if session.started_at is None else "unresponsive"
                    await worker.kill()
                    self._finish(
                        session, "failed", reason, f"no word from the agent in {waiting} s"
                    )
                    return
                self._on_message(session, message, deltas)
                if message["type"] == "stats" and session.active:
                    video.update(message.get("video"))
        except WorkerGone:
            code = await worker.process.wait()
            self._finish(session, "failed", "worker_exited", f"the agent's process exited ({code})")
        finally:
            video.clear()

    def _on_message(self, session: Session, message: dict[str, Any], deltas: UsageDeltas) -> None:
        kind = message["type"]
        if kind == "started":
            session.started_at = time.time()
            phases = message.get("phases")
            if isinstance(phases, dict):
                session.startup.update(
                    {str(k): float(v) for k, v in phases.items() if isinstance(v, int | float)}
                )
            session.startup["total"] = round(session.started_at - session.created_at, 4)
            join_url = message.get("join_url")
            session.join_url = join_url if isinstance(join_url, str) else None
            if session.state == "starting":
                session.state = "running"
            session.started.set()
            session.traced.event("started")
            self.metrics.sessions_started.inc()
            self.refill()
        elif kind == "stats":
            deltas.update(message)
            participants = message.get("participants")
            if isinstance(participants, list):
                session.participants = [str(p) for p in participants]
            cpu_s = message.get("cpu_s")
            if isinstance(cpu_s, int | float):
                now = time.monotonic()
                if session.cpu_seen is not None and now > session.cpu_seen[0]:
                    cores = (cpu_s - session.cpu_seen[1]) / (now - session.cpu_seen[0])
                    session.cores += CPU_SMOOTHING * (cores - session.cores)
                session.cpu_seen = (now, float(cpu_s))
            lags = sorted(v for v in message.get("loop_lag_s") or [] if isinstance(v, int | float))
            if lags:
                session.loop_lag_s = float(lags[int((len(lags) - 1) * 0.9)])
            for key in (
                "audio_in_s",
                "audio_out_s",
                "reconnects",
                "frames_to_model",
                "tokens_input_image_estimated",
                "cpu_s",
                "rss_bytes",
            ):
                value = message.get(key)
                if isinstance(value, int | float):
                    session.usage[key] = value
            tokens = message.get("tokens")
            if isinstance(tokens, dict):
                for kind, count in tokens.items():
                    if isinstance(count, int | float):
                        session.usage[f"tokens_{kind}"] = count
            self._update_memory()
            limit = self.config.max_session_memory_mb
            rss_mb = session.usage.get("rss_bytes", 0.0) / 1e6
            if limit is not None and rss_mb > limit and session.worker is not None:
                session.worker.process.kill()  # its session ends as soon as the pipe closes
                self._finish(
                    session,
                    "failed",
                    "memory_limit",
                    f"the agent's process used {rss_mb:.0f} MB (limit {limit:.0f} MB)",
                )
        elif kind == "ended":
            self._finish(session, "ended", str(message.get("reason") or "ended"), None)
        elif kind == "failed":
            self._finish(
                session, "failed", str(message.get("reason")), str(message.get("error") or "")
            )

    def _finish(self, session: Session, state: State, reason: str, error: str | None) -> None:
        if not session.active:
            return
        session.state = state
        session.reason = reason
        session.error = error
        session.ended_at = time.time()
        counter = self.metrics.sessions_failed if state == "failed" else self.metrics.sessions_ended
        counter.labels(reason).inc()
        if state == "failed":
            logger.warning("session %s failed: %s (%s)", session.session_id, reason, error)
        self.metrics.sessions_active.set(len(self.active))
        self._update_memory()
        session.started.set()
        session.done.set()
        self._finished.append(session.session_id)
        while len(self._finished) > HISTORY:
            self.sessions.pop(self._finished.popleft(), None)

    def _update_memory(self) -> None:
        rss = sum(s.usage.get("rss_bytes", 0.0) for s in self.active)
        self.metrics.session_memory.set(rss)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
