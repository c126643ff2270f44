"""A fleet node's shutdown against a real Redis: its loops stop between two commands.

redis-py (8.2) can hang for good when a task is cancelled while its command waits for the
reply: a drained node once never exited (CI, `test_an_owner_fenced_out_stops_...`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.fleet_kit import RedisProcess
from vision_agents.server.config import ServerConfig
from vision_agents.server.fleet import Fleet
from vision_agents.server.metrics import ServerMetrics
from vision_agents.server.pool import WorkerPool
from vision_agents.server.sessions import SessionManager


async def test_closing_waits_for_the_blocked_dispatch_read_instead_of_cancelling_it(
    tmp_path: Path,
) -> None:
    server = RedisProcess(tmp_path)
    await server.start()
    config = ServerConfig(factory="tests.fleet_app:create_agent")
    manager = SessionManager(
        config, WorkerPool(config.factory, "127.0.0.1", 0, 10.0), ServerMetrics()
    )
    fleet = Fleet(
        manager, redis_url=server.url, node_id="n1", url="http://127.0.0.1:9", token="t" * 32
    )
    real = fleet._redis.xreadgroup
    blocked = asyncio.Event()  # a read that waits on Redis (not the backlog's) is in flight
    cancelled: list[Any] = []

    async def watched(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("block") is not None:
            blocked.set()
        try:
            return await real(*args, **kwargs)
        except asyncio.CancelledError:
            cancelled.append(kwargs.get("block"))
            raise
        finally:
            blocked.clear()

    fleet._redis.xreadgroup = watched
    try:
        await fleet.start()
        for _ in range(3):  # close while a read is in flight: it must end, not be cancelled
            await asyncio.wait_for(blocked.wait(), 10)
            await asyncio.sleep(0)
        assert blocked.is_set()
        started = time.monotonic()
        await asyncio.wait_for(fleet.close(), 10)
        took = time.monotonic() - started
        assert cancelled == [], f"close cancelled {len(cancelled)} Redis read(s) in flight"
        assert took < fleet._socket_timeout_s + 1.0, f"close took {took:.2f} s"
    finally:
        await server.kill()
