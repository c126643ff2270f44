"""Reconnection: time to recover and audio lost per failure kind, ours and peer SDKs side by side.

Each trial streams a 3 s 1 kHz tone in 20 ms chunks paced at real time to a local protocol
server (``OpenAIRealtimeServer`` or ``GeminiLiveServer``) through a ``FaultProxy``, and injects
one failure 1 s after the server first heard the tone:

- ``close-1000`` / ``close-1011``: the server closes with that code;
- ``goaway``: Gemini ``goAway`` (timeLeft 1s; the server closes when it runs out, as the
  service does); OpenAI ``session_expired`` (its equivalent: the session is no longer usable);
- ``stall-close``: the server sends a close frame and stops reading (the close never finishes);
- ``blackhole``: the proxy stops forwarding but keeps the sockets open (no FIN, no RST).

Everything is measured at the server, so every client is measured the same way:

- recover: failure injected -> the first tone audio arriving on a connection opened after it;
- audio delivered: the share of the tone's samples that reached the server, found sample for
  sample (the tone carries a fixed +-2 LSB dither, so every 16-sample window is unique and
  audio sent twice counts once). A client that changes the samples (resampling) is marked
  ``*`` and gets seconds received / 3 s instead.
- model heard: what ended up in the model's state, as the local servers keep it (OpenAI: what
  each session committed while newest, then the newest session's uncommitted buffer; no
  commit points happen in a trial, so that is the last session's buffer. Gemini: what the
  session consumed, a resumed one starting from its handle's state): the share of the tone
  missing from it, and the share in it twice. Audio that reached a server but died with its
  session is delivered, not heard.

Peers (LiveKit Agents, Pipecat) run in their own virtualenvs (``benchmarks/peers/setup.sh``)
as subprocesses (``benchmarks/peers/driver.py``) pointed at the same proxy and server. A cell
whose first try does not recover within ``--recover-timeout`` s is not repeated. The two
providers run as two lanes at once (each with its own server); ``--sequential`` runs them one
after the other.

    bash benchmarks/peers/setup.sh                   # once: peer virtualenvs in ~/.cache
    python -m benchmarks.reconnect                   # from the repository root
    python -m benchmarks.reconnect --quick           # 2 repeats
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openai
from google import genai
from google.genai import types as genai_types

from vision_agents.core import PcmData
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import (
    GeminiLiveServer,
    OpenAIRealtimeServer,
    locate_samples,
    sample_index,
    tone,
)
from vision_agents.testing.fault_proxy import FaultProxy

TONE_S = 3.0
TONE_HZ = 1000.0
CHUNK_MS = 20
INJECT_AFTER_S = 1.0
KINDS = ("close-1000", "close-1011", "goaway", "stall-close", "blackhole")
PROVIDERS = ("openai", "gemini")
CLIENTS = ("ours", "livekit", "pipecat")
RATES = {"openai": 24000, "gemini": 16000}
PEERS_HOME = Path(
    os.environ.get("PEERS_HOME", Path.home() / ".cache" / "vision-agents-peers")
).expanduser()
DRIVER = Path(__file__).with_name("peers") / "driver.py"

logger = logging.getLogger("benchmarks.reconnect")


# -- the tone, and which of its samples arrived ---------------------------------------------

MATCH = 16
"""Samples in the window that locates received audio in the tone."""


def make_tone(rate: int) -> np.ndarray:
    """The 1 kHz tone plus a fixed +-2 LSB dither: inaudible, but it makes every window of
    ``MATCH`` samples unique, so each received sample can be placed in the tone (and audio
    sent twice is not counted twice)."""
    pure = np.asarray(tone(TONE_HZ, TONE_S, sample_rate=rate).samples, np.int32).reshape(-1)
    dither = np.random.default_rng(1000).integers(-2, 3, len(pure))
    out: np.ndarray = np.clip(pure + dither, -32768, 32767).astype(np.int16)
    return out


def coverage(sent: np.ndarray, streams: list[bytes], index: dict[bytes, int]) -> float | None:
    """Fraction of ``sent`` found, sample for sample, in the received ``streams``; None when
    the received audio does not match it at all (a client that resampled or mixed it)."""
    counts = sample_counts(sent, streams, index)
    return None if counts is None else float((counts > 0).mean())


def sample_counts(
    sent: np.ndarray, streams: list[bytes], index: dict[bytes, int]
) -> np.ndarray | None:
    """How many times each sample of ``sent`` is in ``streams``; None as for ``coverage``."""
    counts, _foreign = locate_samples(sent, streams, MATCH, index)
    if any(streams) and not counts.any():
        return None
    return counts


# -- the servers, seen from the benchmark --------------------------------------------------


class ServerSide(ABC):
    """A protocol server plus what the benchmark reads from it: connections and tone audio."""

    provider: str
    tone: np.ndarray
    index: dict[bytes, int]
    tone_file: str

    @property
    @abstractmethod
    def port(self) -> int:
        """Where the protocol server listens (the proxy forwards there)."""

    def write_tone(self) -> None:
        self.tone = make_tone(RATES[self.provider])
        self.index = sample_index(self.tone, MATCH)
        with tempfile.NamedTemporaryFile("wb", suffix=".s16", delete=False) as f:
            f.write(self.tone.tobytes())
            self.tone_file = f.name

    def remove_files(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.tone_file)

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def mark(self) -> int:
        """An id such that every connection opened from now on has a larger one."""

    @abstractmethod
    def first_audio_after(self, mark: int) -> float | None:
        """``time.monotonic()`` of the first audio on a connection newer than ``mark``."""

    @abstractmethod
    def audio_seconds_after(self, mark: int) -> float:
        """Seconds of user audio accepted on connections newer than ``mark``."""

    @abstractmethod
    def audio_after(self, mark: int) -> list[bytes]:
        """The user audio of each connection newer than ``mark``, as received."""

    @abstractmethod
    def heard_after(self, mark: int) -> list[bytes]:
        """The user audio in the model's state, for a session begun after ``mark``."""

    @abstractmethod
    async def inject(self, kind: str, proxy: FaultProxy) -> None: ...

    def poll(self) -> None:  # noqa: B027 - only the OpenAI server needs polling
        """Record what polling-only servers cannot timestamp themselves."""


class OpenAISide(ServerSide):
    provider = "openai"

    def __init__(self) -> None:
        self.server = OpenAIRealtimeServer()
        self._first_audio: dict[int, float] = {}  # connection index -> first audio seen

    async def start(self) -> None:
        self.write_tone()
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()
        self.remove_files()

    @property
    def port(self) -> int:
        return self.server.port

    def mark(self) -> int:
        return len(self.server.connections) - 1

    def poll(self) -> None:
        # The OpenAI server counts audio per connection without timestamps: the watcher polls.
        now = time.monotonic()
        for i, conn in enumerate(self.server.connections):
            if conn.audio_bytes and i not in self._first_audio:
                self._first_audio[i] = now

    def first_audio_after(self, mark: int) -> float | None:
        times = [t for i, t in self._first_audio.items() if i > mark]
        return min(times) if times else None

    def audio_seconds_after(self, mark: int) -> float:
        conns = self.server.connections[mark + 1 :]
        return sum(c.audio_bytes for c in conns) / 2 / RATES["openai"]

    def audio_after(self, mark: int) -> list[bytes]:
        return [bytes(c.audio) for c in self.server.connections[mark + 1 :]]

    def heard_after(self, mark: int) -> list[bytes]:
        conns = self.server.connections[mark + 1 :]
        heard = [chunk for c in conns for chunk in c.committed]
        if conns and not conns[-1].expired:
            heard.append(bytes(conns[-1].buffer))
        return heard

    async def inject(self, kind: str, proxy: FaultProxy) -> None:
        if kind == "close-1000":
            await self.server.close_connection(1000)
        elif kind == "close-1011":
            await self.server.close_connection(1011)
        elif kind == "goaway":
            await self.server.expire_session()
        elif kind == "stall-close":
            await self.server.stall_close()
        elif kind == "blackhole":
            proxy.blackhole()
        else:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {KINDS}")


class GeminiSide(ServerSide):
    provider = "gemini"

    def __init__(self) -> None:
        self.server = GeminiLiveServer()
        self.ca_file = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.write_tone()
        await self.server.start()
        # Peers trust the throwaway CA through SSL_CERT_FILE.
        with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as f:
            f.write(self.server.tls.ca_pem())
            self.ca_file = f.name

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.close()
        with contextlib.suppress(OSError):
            os.unlink(self.ca_file)
        self.remove_files()

    @property
    def port(self) -> int:
        return self.server.port

    def mark(self) -> int:
        return max((m.connection for m in self.server.received), default=0)

    def first_audio_after(self, mark: int) -> float | None:
        times = [a.at for a in self.server.audio if a.connection > mark]
        return min(times) if times else None

    def audio_seconds_after(self, mark: int) -> float:
        return sum(
            len(a.data) / 2 / a.sample_rate for a in self.server.audio if a.connection > mark
        )

    def audio_after(self, mark: int) -> list[bytes]:
        streams: dict[int, bytearray] = {}
        for a in self.server.audio:
            if a.connection > mark:
                streams.setdefault(a.connection, bytearray()).extend(a.data)
        return [bytes(b) for b in streams.values()]

    def heard_after(self, mark: int) -> list[bytes]:
        return list(self.server.heard)  # each trial's session starts fresh

    async def inject(self, kind: str, proxy: FaultProxy) -> None:
        if kind == "close-1000":
            await self.server.close_connection(1000)
        elif kind == "close-1011":
            await self.server.close_connection(1011)
        elif kind == "goaway":
            await self.server.send_go_away("1s")
            task = asyncio.get_running_loop().create_task(self._close_when_time_runs_out())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "stall-close":
            await self.server.stall_close()
        elif kind == "blackhole":
            proxy.blackhole()
        else:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {KINDS}")

    async def _close_when_time_runs_out(self) -> None:
        before = self.server.connection_count
        await asyncio.sleep(1.0)
        if self.server.connection_count == before:  # the client stayed: the service closes
            await self.server.close_connection(1000)


# -- the clients -------------------------------------------------------------------------------


class Client(ABC):
    """One SDK's realtime session: opened per trial, streams the tone at real time."""

    name: str

    @abstractmethod
    async def start(self, proxy_port: int) -> None:
        """Connect through the proxy and start streaming the tone in the background."""

    @abstractmethod
    async def streamed(self) -> None:
        """Wait until the whole tone was handed to the SDK."""

    @abstractmethod
    async def stop(self) -> None: ...

    async def close(self) -> None:  # noqa: B027 - only peers hold a subprocess
        """End the client for good (a peer's subprocess)."""


class Ours(Client):
    name = "ours"

    def __init__(self, side: ServerSide) -> None:
        self.side = side
        self.llm: openai_plugin.Realtime | gemini.Realtime | None = None
        self._stream: asyncio.Task[None] | None = None

    async def start(self, proxy_port: int) -> None:
        if isinstance(self.side, GeminiSide):
            client = genai.Client(
                api_key="local-test-key",
                http_options=genai_types.HttpOptions(
                    base_url=f"https://127.0.0.1:{proxy_port}",
                    async_client_args={"ssl": self.side.server.tls.client_context()},
                ),
            )
            self.llm = gemini.Realtime(model="gemini-live-test", client=client)
        else:
            self.llm = openai_plugin.Realtime(
                client=openai.AsyncOpenAI(
                    api_key="local-test-key", base_url=f"http://127.0.0.1:{proxy_port}/v1"
                )
            )
        await self.llm.connect()
        self._stream = asyncio.get_running_loop().create_task(self._send(self.llm))

    async def _send(self, llm: openai_plugin.Realtime | gemini.Realtime) -> None:
        pcm = PcmData(self.side.tone.reshape(1, -1), RATES[self.side.provider])
        start = time.monotonic()
        for i, chunk in enumerate(pcm.chunks(CHUNK_MS)):
            await asyncio.sleep(max(0.0, start + i * CHUNK_MS / 1000 - time.monotonic()))
            await llm.simple_audio_response(chunk)

    async def streamed(self) -> None:
        if self._stream is not None:
            await self._stream

    async def stop(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            await asyncio.gather(self._stream, return_exceptions=True)
            self._stream = None
        if self.llm is not None:
            await self.llm.close()
            self.llm = None


class PeerUnavailable(Exception):
    pass


class Peer(Client):
    """A peer SDK driven by ``peers/driver.py`` in its own virtualenv, over JSON lines."""

    def __init__(self, name: str, side: ServerSide) -> None:
        self.name = name
        self.side = side
        self.python = PEERS_HOME / name / "bin" / "python"
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._streamed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.stderr_tail: list[str] = []
        self._stderr_reader: asyncio.Task[None] | None = None

    async def launch(self) -> None:
        if not self.python.exists():
            raise PeerUnavailable(
                f"no virtualenv at {self.python.parent.parent}: run "
                f"`bash benchmarks/peers/setup.sh {self.name}`"
            )
        env = dict(os.environ)
        if isinstance(self.side, GeminiSide):
            env["SSL_CERT_FILE"] = self.side.ca_file
        self.proc = await asyncio.create_subprocess_exec(
            str(self.python),
            str(DRIVER),
            "--sdk",
            self.name,
            "--provider",
            self.side.provider,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read(ready))
        self._stderr_reader = loop.create_task(self._read_stderr())
        try:
            async with asyncio.timeout(60):
                await ready.wait()
        except TimeoutError:
            await self.close()
            raise PeerUnavailable(
                f"{self.name} driver did not start: {' | '.join(self.stderr_tail[-5:])}"
            ) from None

    async def _read(self, ready: asyncio.Event) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            self.events.append(event)
            kind = event.get("event")
            if kind == "ready":
                ready.set()
            elif kind == "streamed":
                self._streamed.set()
            elif kind == "stopped":
                self._stopped.set()
        self._streamed.set()
        self._stopped.set()

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr_tail = [*self.stderr_tail[-40:], raw.decode(errors="replace").rstrip()]

    async def _command(self, **cmd: Any) -> None:
        if self.proc is None or self.proc.stdin is None or self.proc.returncode is not None:
            raise PeerUnavailable(f"{self.name} driver exited: {self.stderr_tail[-5:]}")
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        await self.proc.stdin.drain()

    async def start(self, proxy_port: int) -> None:
        self._streamed.clear()
        self._stopped.clear()
        if isinstance(self.side, GeminiSide):
            url = f"https://127.0.0.1:{proxy_port}"
        else:
            url = f"http://127.0.0.1:{proxy_port}/v1"
        await self._command(
            cmd="start",
            base_url=url,
            pcm=self.side.tone_file,
            rate=RATES[self.side.provider],
            chunk_ms=CHUNK_MS,
        )

    async def streamed(self) -> None:
        await self._streamed.wait()

    async def stop(self) -> None:
        with contextlib.suppress(PeerUnavailable):
            await self._command(cmd="stop")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(15):
                    await self._stopped.wait()

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        for task in (self._reader, self._stderr_reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


# -- one trial ---------------------------------------------------------------------------------


@dataclass
class Trial:
    recover_s: float | None  # None: no recovery within the timeout
    delivered: float  # fraction of the tone's samples that reached the server
    exact: bool = True  # False: the client changed the samples; seconds received / 3 s
    note: str = ""
    missing: float | None = None  # fraction of the tone not in the model's state
    twice: float | None = None  # fraction of the tone in it more than once


async def _until(
    predicate: Callable[[], bool], side: ServerSide, within: float, every: float = 0.005
) -> bool:
    deadline = time.monotonic() + within
    while True:
        side.poll()
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


async def run_trial(side: ServerSide, client: Client, kind: str, recover_timeout: float) -> Trial:
    async with FaultProxy(side.port) as proxy:
        start_mark = side.mark()
        try:
            async with asyncio.timeout(20):
                await client.start(proxy.port)
        except TimeoutError:
            await client.stop()
            return Trial(None, 0.0, note="did not connect")
        try:
            if not await _until(lambda: side.first_audio_after(start_mark) is not None, side, 20):
                return Trial(None, *_delivered(side, start_mark), note="no audio")
            first = side.first_audio_after(start_mark)
            assert first is not None
            await asyncio.sleep(max(0.0, first + INJECT_AFTER_S - time.monotonic()))
            inject_mark = side.mark()
            injected = time.monotonic()
            await side.inject(kind, proxy)
            recovered = await _until(
                lambda: side.first_audio_after(inject_mark) is not None, side, recover_timeout
            )
            at = side.first_audio_after(inject_mark)
            recover_s = at - injected if recovered and at is not None else None
            # Let the rest of the tone (and any backlog the client kept) arrive.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TONE_S + 2):
                    await client.streamed()
            await _settle(side, start_mark)
            counts = sample_counts(side.tone, side.heard_after(start_mark), side.index)
            trial = Trial(recover_s, *_delivered(side, start_mark))
            if counts is not None:
                trial.missing = float((counts == 0).mean())
                trial.twice = float((counts > 1).mean())
            return trial
        finally:
            await client.stop()


async def warm_up(side: ServerSide, client: Client, within: float = 60.0) -> str | None:
    """One session that is not measured: a peer's first one pays for its imports and HTTP
    session, which would otherwise land in the first trial. Returns why it failed, if it did."""
    async with FaultProxy(side.port) as proxy:
        mark = side.mark()
        try:
            async with asyncio.timeout(within):
                await client.start(proxy.port)
            heard = await _until(lambda: side.first_audio_after(mark) is not None, side, within)
        except TimeoutError:
            heard = False
        finally:
            await client.stop()
    return None if heard else f"its first session sent no audio within {within:.0f} s"


def _delivered(side: ServerSide, mark: int) -> tuple[float, bool]:
    found = coverage(side.tone, side.audio_after(mark), side.index)
    if found is None:
        return min(1.0, side.audio_seconds_after(mark) / TONE_S), False
    return found, True


async def _settle(side: ServerSide, mark: int, quiet: float = 0.4, within: float = 3.0) -> None:
    """Wait until the server's audio count stops growing (or every sample of the tone is in;
    the count alone can reach 3 s early when a client sends some audio twice)."""
    deadline = time.monotonic() + within
    last, last_change = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        now_s = side.audio_seconds_after(mark)
        if now_s >= TONE_S - 1e-6 and _delivered(side, mark)[0] >= 1.0:
            return
        if now_s != last:
            last, last_change = now_s, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return
        await asyncio.sleep(0.05)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Cell:
    provider: str
    client: str
    kind: str
    trials: list[Trial] = field(default_factory=list)
    skipped: str = ""


def fmt_heard(cell: Cell) -> str:
    trials = [t for t in cell.trials if t.missing is not None and t.twice is not None]
    if not trials:
        return "-"
    missing = statistics.mean(t.missing or 0.0 for t in trials)
    twice = statistics.mean(t.twice or 0.0 for t in trials)
    return f"{100 * missing:.1f} % / {100 * twice:.1f} %"


def fmt_cell(cell: Cell, recover_timeout: float) -> tuple[str, str]:
    if cell.skipped:
        return f"not run: {cell.skipped}", "-"
    times = [t.recover_s for t in cell.trials if t.recover_s is not None]
    failed = len(cell.trials) - len(times)
    shares = [t.delivered for t in cell.trials] or [0.0]
    lost = f"{100 * statistics.mean(shares):.1f} %"
    if min(shares) < statistics.mean(shares) - 0.005:
        lost += f" (min {100 * min(shares):.1f})"
    if not all(t.exact for t in cell.trials):
        lost += " *"
    if not times:
        notes = {t.note for t in cell.trials if t.note}
        why = f" ({', '.join(sorted(notes))})" if notes else ""
        return f"no recovery within {recover_timeout:.0f} s{why}", lost
    text = f"{statistics.median(times):.2f} / {max(times):.2f}"
    if failed:
        text += f" ({failed}/{len(cell.trials)} never)"
    return text, lost


def table(cells: list[Cell], recover_timeout: float) -> str:
    rows = [
        (
            "provider",
            "client",
            "failure",
            "recover p50 / max (s)",
            "audio delivered",
            "model heard: missing / twice",
        )
    ]
    for cell in cells:
        rec, delivered = fmt_cell(cell, recover_timeout)
        rows.append((cell.provider, cell.client, cell.kind, rec, delivered, fmt_heard(cell)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> list[Cell]:
    if args.sequential:
        return [c for p in args.providers for c in await _run_provider(p, args)]
    # One lane per provider (own server, own proxies): the idle waits of one overlap the other.
    lanes = await asyncio.gather(*(_run_provider(p, args) for p in args.providers))
    return [c for lane in lanes for c in lane]


async def _run_provider(provider: str, args: argparse.Namespace) -> list[Cell]:
    cells: list[Cell] = []
    side: ServerSide = OpenAISide() if provider == "openai" else GeminiSide()
    await side.start()
    try:
        for name in args.clients:
            cells += await _run_client(side, name, args)
    finally:
        await side.close()
    return cells


async def _run_client(side: ServerSide, name: str, args: argparse.Namespace) -> list[Cell]:
    cells = [Cell(side.provider, name, kind) for kind in args.kinds]
    client: Client
    if name == "ours":
        client = Ours(side)
    else:
        peer = Peer(name, side)
        try:
            await peer.launch()
        except PeerUnavailable as exc:
            for cell in cells:
                cell.skipped = str(exc)
            return cells
        client = peer
    try:
        try:
            failed = await warm_up(side, client)
        except PeerUnavailable as exc:
            failed = str(exc)
        if failed:
            for cell in cells:
                cell.skipped = failed
            return cells
        for cell in cells:
            for repeat in range(args.repeats):
                began = time.monotonic()
                try:
                    trial = await run_trial(side, client, cell.kind, args.recover_timeout)
                except PeerUnavailable as exc:
                    cell.skipped = str(exc)
                    break
                cell.trials.append(trial)
                rec = f"{trial.recover_s:.2f} s" if trial.recover_s is not None else "never"
                print(
                    f"  {side.provider:6} {name:8} {cell.kind:11} #{repeat + 1}: recover {rec}, "
                    f"delivered {100 * trial.delivered:.0f} %, missing "
                    f"{100 * (trial.missing or 0):.0f} %, twice {100 * (trial.twice or 0):.0f} % "
                    f"({time.monotonic() - began:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if trial.recover_s is None:
                    break  # a cell that never recovers costs the whole timeout: try it once
    finally:
        await client.close()
    return cells


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="trials per cell (default 5)")
    ap.add_argument("--quick", action="store_true", help="2 repeats and a 10 s recovery bound")
    ap.add_argument("--providers", nargs="+", choices=PROVIDERS, default=list(PROVIDERS))
    ap.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    ap.add_argument("--recover-timeout", type=float, default=20.0, help="seconds (default 20)")
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="one provider after the other (default: the two providers' lanes run at once)",
    )
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.recover_timeout = min(args.recover_timeout, 10.0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    cells = asyncio.run(run(args))
    out = table(cells, args.recover_timeout)
    print(out)
    if "*" in out:
        print("* the client changed the samples: seconds received / 3 s, capped at 100 %")
    print(f"\n{args.repeats} repeats per cell, {time.monotonic() - began:.0f} s in all")
    if args.markdown is not None:
        args.markdown.write_text(out + "\n")


if __name__ == "__main__":
    main()
