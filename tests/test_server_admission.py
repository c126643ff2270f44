"""Admission from measured load: a node admits a session only when the machine has room for
what a session costs (the running sessions' average CPU), not until the limit is crossed."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest

from vision_agents.server.config import ServerConfig
from vision_agents.server.metrics import ServerMetrics, UsageDeltas
from vision_agents.server.sessions import Session, SessionManager


def manager(**config: Any) -> SessionManager:
    return SessionManager(ServerConfig(factory="x:y", **config), pool=None, metrics=ServerMetrics())  # type: ignore[arg-type]


def running(m: SessionManager, name: str, cores: float) -> Session:
    session = Session(session_id=name, call_id=name, call_type="default", metadata={})
    session.state = "running"
    session.cores = cores
    m.sessions[name] = session
    return session


def test_a_session_the_machine_has_no_room_for_is_refused_before_the_limit_is_crossed() -> None:
    m = manager(max_cpu_percent=85.0)
    share = 100 / (psutil.cpu_count() or 1)  # % of the machine one core is
    running(m, "a", 0.2)
    running(m, "b", 0.4)  # on average 0.3 cores a session
    m.cpu_percent = 85.0 - 0.3 * share - 1  # one more fits, just
    assert m.overload() is None
    m.cpu_percent = 85.0 - 0.3 * share + 1  # one more would cross the limit
    reason = m.overload()
    assert reason is not None and "a session takes about" in reason, reason
    assert f"{0.3 * share:.0f}%" in reason


def test_without_running_sessions_only_the_limit_itself_refuses() -> None:
    m = manager(max_cpu_percent=85.0)
    m.cpu_percent = 84.0
    assert m.overload() is None
    m.cpu_percent = 85.0
    assert "CPU at 85%" in (m.overload() or "")


def test_a_session_s_cpu_comes_from_its_reports() -> None:
    m = manager(max_cpu_percent=None)
    session = running(m, "a", 0.0)
    deltas = UsageDeltas(m.metrics)
    m._on_message(session, {"type": "stats", "cpu_s": 10.0}, deltas)
    assert session.cores == 0.0  # one report: no rate yet
    assert session.cpu_seen is not None
    # half a core over the last interval, as the next report shows
    at, cpu = session.cpu_seen
    session.cpu_seen = (at - 2.0, cpu)
    m._on_message(session, {"type": "stats", "cpu_s": 11.0}, deltas)
    assert 0 < session.cores <= 0.5
    for _ in range(30):
        at, cpu = session.cpu_seen
        session.cpu_seen = (time.monotonic() - 2.0, cpu)
        m._on_message(session, {"type": "stats", "cpu_s": cpu + 1.0}, deltas)
    assert session.cores == pytest.approx(0.5, abs=0.02)
