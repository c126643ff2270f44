"""Worker processes seen from the server: start them warm, hand them out, reap them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from typing import Any

from vision_agents.core.utils.tasks import cancel_and_wait
from vision_agents.server.forkserver import ForkedProcess, ForkServer, ForkServerGone
from vision_agents.server.protocol import MAX_LINE_BYTES, ProtocolError, decode, encode

logger = logging.getLogger(__name__)


class WorkerGone(Exception):
    """The worker process exited (or closed its pipe)."""


class WorkerProcess:
    """One worker process (``python -m vision_agents.server.worker``, or forked by the fork
    server) and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process | ForkedProcess) -> None:
        self.process = process
        self.pid = process.pid

    @classmethod
    async def spawn(cls, factory: str, call_host: str) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vision_agents.server.worker",
            factory,
            call_host,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=MAX_LINE_BYTES,
            start_new_session=True,  # Ctrl-C in a terminal reaches the server, not the workers
            env=os.environ.copy(),
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def receive(self) -> dict[str, Any]:
        """The next message; ``WorkerGone`` when the process closed its side."""
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise WorkerGone(f"worker {self.pid} exited")
        try:
            return decode(line)
        except ProtocolError as exc:
            raise WorkerGone(f"worker {self.pid} sent garbage: {exc}") from exc

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(encode(message))
            await self.process.stdin.drain()
        except (ConnectionError, BrokenPipeError) as exc:
            raise WorkerGone(f"worker {self.pid} exited") from exc

    async def wait_ready(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            message = await self.receive()
        if message["type"] == "unusable":
            raise WorkerGone(str(message.get("error")))
        if message["type"] != "ready":
            raise WorkerGone(f"worker {self.pid} said {message['type']!r} instead of ready")

    async def stop(self, grace_s: float) -> int:
        """Close its stdin (it stops its session) and kill it if it is not gone in time."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            async with asyncio.timeout(grace_s):
                return await self.process.wait()
        except TimeoutError:
            return await self.kill()

    async def kill(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        return await self.process.wait()


class WorkerPool:
    """Keeps ``prewarm`` idle workers started and imported; ``acquire`` takes one.

    Workers are used for one session each. The pool never holds more processes than
    ``capacity()`` allows (free session slots), so idle workers do not crowd out sessions.
    """

    def __init__(
        self,
        factory: str,
        call_host: str,
        prewarm: int,
        ready_timeout_s: float,
        *,
        fork: bool = False,
    ):
        self.factory = factory
        self.call_host = call_host
        self.prewarm = prewarm
        self.ready_timeout_s = ready_timeout_s
        self.idle: deque[WorkerProcess] = deque()
        self.failures = 0
        self.last_error = ""
        self._starting: set[asyncio.Task[WorkerProcess | None]] = set()
        self._changed = asyncio.Event()
        self._closed = False
        self.fork = fork
        """Fork workers from a fork server (``forkserver``); off after it fails once."""
        self._forks: ForkServer | None = None
        self._forks_lock = asyncio.Lock()

    @property
    def starting(self) -> int:
        return len(self._starting)

    def fill(self, room: int) -> None:
        """Start workers until ``prewarm`` are idle or starting (at most ``room`` in all)."""
        self.idle = deque(w for w in self.idle if w.alive)
        while not self._closed and len(self.idle) + len(self._starting) < min(self.prewarm, room):
            self._start_one()

    def _start_one(self) -> asyncio.Task[WorkerProcess | None]:
        task = asyncio.ensure_future(self._warm_up())
        self._starting.add(task)
        task.add_done_callback(self._on_started)
        return task

    async def _spawn(self) -> WorkerProcess:
        """A new worker: forked when the fork server works, else started from scratch."""
        if self.fork:
            try:
                async with self._forks_lock:
                    if self._forks is None:
                        forks = ForkServer(self.factory, self.call_host, MAX_LINE_BYTES)
                        await forks.start(self.ready_timeout_s)
                        self._forks = forks
                return WorkerProcess(await self._forks.spawn())
            except ForkServerGone as exc:
                logger.warning("cannot fork workers (%s): starting each from scratch", exc)
                self.fork = False
        return await WorkerProcess.spawn(self.factory, self.call_host)

    async def _warm_up(self) -> WorkerProcess | None:
        worker = await self._spawn()
        try:
            await worker.wait_ready(self.ready_timeout_s)
        except (WorkerGone, TimeoutError) as exc:
            self.failures += 1
            self.last_error = f"worker {worker.pid} did not start: {exc}"
            logger.error("%s", self.last_error)
            await worker.stop(grace_s=2.0)  # time to write its traceback to stderr
            return None
        except BaseException:
            await worker.kill()
            raise
        return worker

    def _on_started(self, task: asyncio.Task[WorkerProcess | None]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is None:
            worker = task.result()
            if worker is not None:
                self.idle.append(worker)
        self._changed.set()

    async def wait_first(self) -> bool:
        """Wait for the first warm worker; False if it could not start (bad factory)."""
        while not self.idle:
            if not self._starting:
                return False
            self._changed.clear()
            await self._changed.wait()
        return True

    async def acquire(self, timeout_s: float) -> WorkerProcess:
        """An idle worker (started now if none is warm); ``TimeoutError`` if none comes."""
        failures = self.failures
        async with asyncio.timeout(timeout_s):
            while True:
                while self.idle:
                    worker = self.idle.popleft()
                    if worker.alive:
                        return worker
                if self.failures > failures:
                    raise WorkerGone(self.last_error)
                if not self._starting:
                    self._start_one()
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(*self._starting)
        idle, self.idle = list(self.idle), deque()
        await asyncio.gather(*(w.stop(grace_s=2.0) for w in idle))
        if self._forks is not None:
            await self._forks.close()
