"""Workers forked from a fork server that imported the SDK and the app once.

The pool and the session manager with real processes, in this process: a session runs in a
forked worker, its exit code comes back, a bad app is reported as before, and a fork server
that dies leaves its running workers watched and the pool starting workers from scratch.
"""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from tests.serve_kit import APP, ROOT, TOKEN
from vision_agents.server import ServerConfig
from vision_agents.server.metrics import ServerMetrics
from vision_agents.server.pool import WorkerGone, WorkerPool
from vision_agents.server.sessions import SessionManager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _app_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )


async def test_a_session_runs_in_a_forked_worker_and_its_exit_code_comes_back() -> None:
    config = ServerConfig(factory=APP, api_token=TOKEN, prewarm=0)
    pool = WorkerPool(APP, "127.0.0.1", prewarm=0, ready_timeout_s=60, fork=True)
    manager = SessionManager(config, pool, ServerMetrics())
    try:
        session = await manager.create("forked", "default", {})
        assert session.state == "running", session.error
        worker = session.worker
        assert worker is not None and pool._forks is not None
        forks = pool._forks.process
        assert forks is not None
        # the worker is the fork server's child, not a fresh interpreter of ours
        assert psutil.Process(worker.pid).ppid() == forks.pid
        assert psutil.Process(forks.pid).ppid() == os.getpid()
        await manager.stop(session)
        assert str(session.state) == "ended" and await worker.process.wait() == 0
        # the next one is forked too, from the same fork server
        again = await manager.create("forked-2", "default", {})
        assert again.state == "running", again.error
        assert again.worker is not None
        assert psutil.Process(again.worker.pid).ppid() == forks.pid
        await manager.stop(again)
    finally:
        await manager.close()
        await pool.close()
    assert pool._forks is not None and pool._forks.process is not None
    assert pool._forks.process.returncode is not None  # closed with the pool


async def test_an_app_that_cannot_be_imported_is_reported_as_before() -> None:
    pool = WorkerPool("no_such_module_anywhere:make", "127.0.0.1", 0, 30, fork=True)
    try:
        with pytest.raises(WorkerGone, match="no_such_module_anywhere"):
            await pool.acquire(30)
        assert not pool.fork  # the fork server failed: workers start from scratch
    finally:
        await pool.close()


async def test_a_dead_fork_server_leaves_its_workers_watched_and_the_pool_going() -> None:
    pool = WorkerPool(APP, "127.0.0.1", prewarm=0, ready_timeout_s=60, fork=True)
    try:
        forked = await pool.acquire(60)
        assert pool._forks is not None and pool._forks.process is not None
        forks_pid = pool._forks.process.pid
        os.kill(forks_pid, signal.SIGKILL)
        await pool._forks.process.wait()
        # its worker lives on; its end is still seen (the code is unknown: -1)
        assert forked.alive
        assert await forked.stop(grace_s=10) in (0, -1)
        fresh = await pool.acquire(60)  # started from scratch
        assert not pool.fork
        assert psutil.Process(fresh.pid).ppid() == os.getpid()
        assert await fresh.stop(grace_s=10) == 0
    finally:
        await pool.close()
