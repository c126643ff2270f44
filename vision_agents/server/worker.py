"""A worker process: imports the factory, starts a call server, runs one session, exits.

Started by the server as ``python -m vision_agents.server.worker MODULE:FACTORY CALL_HOST``.
Its stdin carries commands and its original stdout carries replies (``protocol``); whatever
user code prints goes to stderr, so it cannot corrupt the replies. One session a process:
whatever a session leaks, blocks or breaks dies with it, and the next session starts from a
fresh, pre-warmed process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any

import psutil

from vision_agents.core.agents.agent import Agent
from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.plugins.webrtc import CallServer, WebRTCEdge
from vision_agents.server.protocol import MAX_LINE_BYTES, STATS_INTERVAL_S, decode, encode
from vision_agents.server.request import (
    Factory,
    SessionRequest,
    build_agent,
    load_factory,
    prewarm,
)
from vision_agents.server.usage import LoopLagProbe, SessionUsage, process_usage

logger = logging.getLogger(__name__)
MAX_ERROR_CHARS = 500
EMPTY_POLL_S = 0.25


class Worker:
    """The worker's side of the pipes, and the one session it runs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.stop_reason: str | None = None
        self.stopped = asyncio.Event()
        self.begun = 0.0
        self.built = 0.0

    async def send(self, message: dict[str, Any]) -> None:
        """Send to the server; if it is gone, stop the session instead of failing."""
        if self.writer.is_closing():
            return
        try:
            self.writer.write(encode(message))
            await self.writer.drain()
        except ConnectionError:
            self.writer.close()
            self.stop_reason = self.stop_reason or "server_gone"
            self.stopped.set()

    async def receive(self) -> dict[str, Any] | None:
        line = await self.reader.readline()
        return decode(line) if line else None

    async def watch_commands(self) -> None:
        """Turn ``stop`` (or the server going away: EOF) into ``stopped``."""
        while True:
            message = await self.receive()
            if message is None or message["type"] == "stop":
                self.stop_reason = "server_gone" if message is None else str(message["reason"])
                self.stopped.set()
                return

    async def run(self, factory_spec: str, call_host: str) -> int:
        try:
            factory = load_factory(factory_spec)  # imports the user's module: the warm-up
            await prewarm(factory_spec)
            server = CallServer(host=call_host, port=0)
            await server.start()
        except Exception as exc:
            logger.error("cannot start: %s", _first_line(exc), exc_info=exc)
            await self.send({"type": "unusable", "error": _first_line(exc)})
            return 1
        try:
            await self.send({"type": "ready", "pid": os.getpid()})
            start = await self.receive()
            if start is None or start["type"] != "start":
                return 0
            await self.run_session(factory, server, start)
        finally:
            await server.stop()
        return 0

    async def run_session(
        self, factory: Factory, server: CallServer, start: dict[str, Any]
    ) -> None:
        request = SessionRequest(
            session_id=str(start["session_id"]),
            call_id=str(start["call_id"]),
            call_type=str(start["call_type"]),
            metadata=dict(start.get("metadata") or {}),
            call_server=server,
        )
        commands = asyncio.ensure_future(self.watch_commands())
        self.begun = time.monotonic()
        try:
            try:
                agent = await build_agent(factory, request)
                self.built = time.monotonic()
                logger.info("agent built in %.2f s", self.built - self.begun)
            except Exception as exc:
                await self.fail("factory_error", exc)
                return
            try:
                reason = await self.run_agent(agent, request, start)
            except Exception as exc:
                await self.fail("agent_error", exc)
                return
            await self.send({"type": "ended", "reason": reason})
        finally:
            await cancel_and_wait(commands)

    async def run_agent(self, agent: Agent, request: SessionRequest, start: dict[str, Any]) -> str:
        max_duration_s = float(start["max_duration_s"])
        call = await agent.create_call(request.call_type, request.call_id)
        called = time.monotonic()
        join_url = call.extra.get("join_url")
        if isinstance(agent.edge, WebRTCEdge):
            join_url = agent.edge.join_url(call, ttl_s=max_duration_s + 60)
        usage = SessionUsage(agent)
        usage.attach()
        probe = LoopLagProbe()
        async with agent.join(call):
            joined = time.monotonic()
            logger.info("agent in the call %.2f s after the request", joined - self.begun)
            phases = {
                "build": round(self.built - self.begun, 4),
                "create_call": round(called - self.built, 4),
                **agent.start_phases,
                "in_worker": round(joined - self.begun, 4),
            }
            await self.send({"type": "started", "join_url": join_url, "phases": phases})
            tasks = [
                asyncio.ensure_future(probe.run()),
                asyncio.ensure_future(self.report(usage, probe)),
            ]
            try:
                return await self.until_done(agent, max_duration_s, float(start["empty_timeout_s"]))
            finally:
                await cancel_and_wait(*tasks)
                await self.send({"type": "stats", **usage.snapshot()})

    async def until_done(self, agent: Agent, max_duration_s: float, empty_s: float) -> str:
        """Why the session ends: stopped, the call ended, too long, or nobody there."""
        finished = asyncio.ensure_future(agent.finish())
        stopped = asyncio.ensure_future(self.stopped.wait())
        empty = asyncio.ensure_future(_empty_for(agent, empty_s))
        try:
            done, _ = await asyncio.wait(
                {finished, stopped, empty},
                timeout=max_duration_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            await cancel_and_wait(finished, stopped, empty)
        if stopped in done:
            return self.stop_reason or "stopped"
        if empty in done:
            return "empty"
        if finished in done:
            return "call_ended"
        return "max_duration"

    async def report(self, usage: SessionUsage, probe: LoopLagProbe) -> None:
        process = psutil.Process()
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            await self.send(
                {
                    "type": "stats",
                    **usage.snapshot(),
                    **process_usage(process),
                    "loop_lag_s": probe.take(),
                }
            )

    async def fail(self, reason: str, exc: BaseException) -> None:
        logger.error("session failed (%s)", reason, exc_info=exc)
        await self.send({"type": "failed", "reason": reason, "error": _first_line(exc)})


def _first_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()[:MAX_ERROR_CHARS]


async def _empty_for(agent: Agent, seconds: float) -> None:
    """Return once nobody but the agent has been in the call for ``seconds``."""
    empty_since: float | None = time.monotonic()
    while True:
        if agent.edge.participants:
            empty_since = None
        elif empty_since is None:
            empty_since = time.monotonic()
        elif time.monotonic() - empty_since >= seconds:
            return
        await asyncio.sleep(EMPTY_POLL_S)


async def _open_pipes(reply_fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(reply_fd, "wb")
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def _main(factory_spec: str, call_host: str, reply_fd: int) -> int:
    reader, writer = await _open_pipes(reply_fd)
    try:
        return await Worker(reader, writer).run(factory_spec, call_host)
    finally:
        writer.close()  # every send was drained: nothing is left to flush


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(
            "usage: python -m vision_agents.server.worker MODULE:FACTORY CALL_HOST", file=sys.stderr
        )
        return 2
    reply_fd = os.dup(1)  # replies keep the real stdout; prints go to stderr
    os.dup2(2, 1)
    # The server decides when a session ends (drain, stop); a SIGTERM sent to the whole
    # process group (systemd's default) must not kill sessions before it has drained them.
    # Without the server (its pipe closes) the worker stops by itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=os.environ.get("VISION_AGENTS_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s %(levelname)s worker[{os.getpid()}] %(name)s: %(message)s",
    )
    return asyncio.run(_main(args[0], args[1], reply_fd))


if __name__ == "__main__":
    sys.exit(main())
