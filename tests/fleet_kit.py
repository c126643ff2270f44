"""Helpers for the fleet tests: a real `redis-server` on loopback, a participant that speaks
into a Janus call, and a watcher of every call's participant list."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import time
from collections import defaultdict
from pathlib import Path

from tests.serve_kit import ToneTrack
from vision_agents.core import User
from vision_agents.plugins.janus import (
    JanusEdge,
    JanusError,
    JanusProcess,
    JanusSession,
    room_number,
    signed_token,
)
from vision_agents.plugins.janus.client import JanusHandle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """Debian's ``redis-server`` on 127.0.0.1, persisting every write (AOF, fsync always), so
    a restart keeps what was written: how a fleet's Redis should run."""

    def __init__(self, folder: Path) -> None:
        path = shutil.which("redis-server")
        if path is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        self.executable = path
        self.folder = folder
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.executable,
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def close(self) -> None:
        await self.kill()


class Caller:
    """A person in a Janus call who speaks a tone (so the agent has something to hear)."""

    def __init__(self, janus: JanusProcess, call_id: str) -> None:
        self.call_id = call_id
        self.edge = JanusEdge(janus.url, token_secret=janus.token_secret, admin_key=janus.admin_key)

    async def join(self) -> None:
        call = await self.edge.create_call("default", self.call_id)
        await self.edge.join(call, User(name=f"caller {self.call_id}"))
        await self.edge.publish_audio(ToneTrack())

    async def close(self) -> None:
        await self.edge.close()


class RoomWatcher:
    """Polls each call's participant list; ``most`` is the most agents of one session seen in
    one call at once over the whole run, ``seen`` when each session's agent was last there,
    ``left``/``back`` when it went missing and when an agent of it was there again."""

    def __init__(self, janus: JanusProcess, call_ids: list[str]) -> None:
        self.janus = janus
        self.call_ids = call_ids
        self.most: dict[str, int] = defaultdict(int)
        self.seen: dict[str, float] = {}
        self.polls = 0
        self.left: dict[str, float] = {}
        """When each session's agent was first missing from its call after being there."""
        self.back: dict[str, float] = {}
        """When each session's agent was last seen coming back after being missing."""
        self.where: dict[str, str] = {}
        self.errors: list[str] = []
        self.longest_gap_s = 0.0
        """The longest time between two polls' ends: how long a second agent could go unseen."""
        self.longest_gap_at = 0.0
        """When (time.monotonic) the longest gap ended."""
        self._last_poll: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: JanusSession | None = None

    async def start(self) -> None:
        self._session = await JanusSession.connect(
            self.janus.url, signed_token(self.janus.token_secret, 3600)
        )
        handle = await self._session.attach()
        self._task = asyncio.ensure_future(self._poll(handle))

    def agents_in(self, call_id: str) -> list[str]:
        return list(self._current.get(call_id, []))

    async def _poll(self, handle: JanusHandle) -> None:
        self._current: dict[str, list[str]] = {}
        while True:
            try:
                await self._poll_once(handle)
            except Exception as exc:  # a missed poll is reported, never a dead watcher
                self.errors.append(repr(exc))
            await asyncio.sleep(0.1)

    async def _poll_once(self, handle: JanusHandle) -> None:
        # All the calls at once: one round trip a poll, however many calls (the test process
        # also carries ten callers' audio, and sequential requests made a poll take over 1 s).
        answers = await asyncio.gather(
            *(
                handle.message({"request": "listparticipants", "room": room_number(call_id)})
                for call_id in self.call_ids
            ),
            return_exceptions=True,
        )
        for call_id, answer in zip(self.call_ids, answers, strict=True):
            if isinstance(answer, JanusError):  # no such room yet
                continue
            if isinstance(answer, BaseException):
                raise answer
            data = answer.get("plugindata", {}).get("data", {})
            names = [str(p.get("display", "")) for p in data.get("participants", [])]
            agents = [n.removeprefix("fleet agent ") for n in names if n.startswith("fleet")]
            self._current[call_id] = agents
            now = time.monotonic()
            for sid in set(agents):
                self.most[sid] = max(self.most[sid], agents.count(sid))
                if sid in self.left and self.left[sid] > self.seen.get(sid, 0.0):
                    self.back[sid] = now  # a new agent of this session, after a gap
                self.seen[sid] = now
            for sid, last in list(self.seen.items()):
                if self.where.get(sid) == call_id and sid not in agents:
                    if self.left.get(sid, 0.0) < last:
                        self.left[sid] = now
            for sid in agents:
                self.where[sid] = call_id
            self.most[f"call:{call_id}"] = max(self.most[f"call:{call_id}"], len(agents))
        self.polls += 1
        now = time.monotonic()
        if self._last_poll is not None and now - self._last_poll > self.longest_gap_s:
            self.longest_gap_s = now - self._last_poll
            self.longest_gap_at = now
        self._last_poll = now

    async def close(self) -> None:
        task = self._task
        # Python 3.11's wait_for can swallow a cancel that lands as its answer does (the poll
        # then goes on): cancel until the task has really ended.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if self._session is not None:
            await self._session.close()
