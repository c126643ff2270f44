"""`serve()`: run the API and the worker pool until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from aiohttp import web

from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.server.config import ServerConfig

logger = logging.getLogger(__name__)


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> int:
    """Serve until ``stop`` is set (by default: on SIGTERM or SIGINT); returns the exit code.

    Draining: ``/ready`` answers 503 and new sessions are refused at once; running sessions
    may go on for ``drain_timeout_s``, then their agents are told to leave.
    """
    # Imported here, not at the top: every worker process imports this package (for its own
    # modules) and needs none of the API, Redis or metrics. Importing them cost each worker
    # 0.26 s of its 1.3 s start, and a worker is started for every session.
    from vision_agents.server.api import build_app
    from vision_agents.server.fleet import Fleet
    from vision_agents.server.metrics import ServerMetrics
    from vision_agents.server.pool import WorkerPool
    from vision_agents.server.sessions import SessionManager

    config.check()
    token = config.resolved_token()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = ServerMetrics()
    pool = WorkerPool(
        config.factory,
        config.call_host or config.host,
        config.prewarm,
        config.start_timeout_s,
        fork=config.fork_workers,
    )
    manager = SessionManager(config, pool, metrics)
    fleet = (
        Fleet(
            manager, redis_url=config.redis_url, node_id=config.node_id or "", url="", token=token
        )
        if config.redis_url is not None
        else None
    )
    runner = web.AppRunner(build_app(manager, metrics, token, fleet), access_log=None)
    load = asyncio.ensure_future(manager.watch_load())
    try:
        manager.refill()
        if config.prewarm > 0 and not await pool.wait_first():
            print(f"vision-agents serve: cannot start a worker: {pool.last_error}", flush=True)
            return 1
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        address = _address(site)
        if fleet is not None:  # named and addressed once the port is known
            fleet.node_id = fleet.node_id or f"{socket.gethostname()}-{address.rsplit(':', 1)[-1]}"
            fleet.url = config.advertise_url or address
            await fleet.start()
            state = "connected" if fleet.available else "waiting for Redis"
            print(f"vision-agents serve: fleet node {fleet.node_id}, {state}", flush=True)
        print(f"vision-agents serve: listening on {address}", flush=True)
        await stop.wait()
        print("vision-agents serve: draining", flush=True)
        await manager.drain()
        print("vision-agents serve: drained", flush=True)
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await cancel_and_wait(load)
        await manager.close()
        if fleet is not None:
            await fleet.close()
        await pool.close()
        await runner.cleanup()


def _address(site: web.TCPSite) -> str:
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    if sockets:
        host, port = sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"
    return site.name
