"""Conformance: our local OpenAI Realtime server driven by clients other projects wrote.

Each peer SDK runs in its own virtualenv (``scripts/conformance/setup.sh``, outside the
repository) through ``scripts/conformance/driver.py``; this test plays the server side of
every step (the user's speech ending, barge-in, a dropped connection) and checks what the
server saw as well as what the peer reported. A step a peer fails for a reason of its own is
listed in ``PEER_DEFECTS`` with the evidence in docs/testing.md ("Conformance"); every other
failure fails the test. The test skips only when the virtualenvs cannot be made here (no
package index), and says why; CI runs ``.ci/conformance.sh``, where that is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openai")
pytest.importorskip("aiohttp")

from vision_agents.core.audio import PcmData
from vision_agents.testing.gemini_server import GeminiLiveServer
from vision_agents.testing.openai_server import (
    BYTES_PER_MS,
    OpenAIRealtimeServer,
    ScriptedReply,
)

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "scripts" / "conformance" / "driver.py"
SETUP = ROOT / "scripts" / "conformance" / "setup.sh"
PEERS_HOME = Path(os.environ.get("PEERS_HOME", Path.home() / ".cache" / "vision-agents-peers"))
PEERS = ("openai-agents", "livekit", "pipecat")
STEPS = ("text", "audio", "tool", "bargein", "drop")
REQUIRED = os.environ.get("VISION_AGENTS_CONFORMANCE") == "required"
"""Set by .ci/conformance.sh: a peer that cannot be set up fails instead of skipping."""

PEER_DEFECTS: dict[tuple[str, str], str] = {}
"""(peer, step) -> why the peer, not our server, fails it (evidence in docs/testing.md)."""

pytestmark = pytest.mark.timeout(1500)  # the first run may make the virtualenvs


def pcm(seconds: float, hz: float = 330.0) -> bytes:
    n = int(seconds * BYTES_PER_MS * 1000 // 2)
    return struct.pack(
        f"<{n}h", *(int(6000 * math.sin(2 * math.pi * hz * i / 24000)) for i in range(n))
    )


@pytest.fixture(scope="module")
def peer_pythons() -> dict[str, Path]:
    """Make (or reuse) the peer virtualenvs; skip, saying why, when that is impossible."""
    missing = [p for p in PEERS if not (PEERS_HOME / p / ".conformance-stamp").exists()]
    if missing:
        try:
            done = subprocess.run(
                ["bash", str(SETUP), *missing],
                capture_output=True,
                text=True,
                timeout=1800,
                env={**os.environ, "PEERS_HOME": str(PEERS_HOME)},
            )
            why = (done.stderr or done.stdout)[-600:] if done.returncode else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = repr(exc)
        if why:
            message = f"peer virtualenvs could not be made by {SETUP.name}: {why}"
            print(message, file=sys.stderr)
            if REQUIRED:
                pytest.fail(message)
            pytest.skip(message)
    return {p: PEERS_HOME / p / "bin" / "python" for p in PEERS}


class Driver:
    """The peer's driver process: JSON lines in and out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr: list[str] = []

    async def read(self, within: float = 40.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), within)
            if not line:
                raise RuntimeError(f"the driver exited: {await self.stderr_tail()}")
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if isinstance(msg, dict):
                    return msg

    async def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()

    async def stderr_tail(self) -> str:
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(asyncio.TimeoutError):
            data = await asyncio.wait_for(self.proc.stderr.read(), 2)
            return data.decode(errors="replace")[-1500:]
        return ""


@contextlib.asynccontextmanager
async def driver(
    python: Path, base_url: str, peer: str, provider: str = "openai", ca_file: str | None = None
) -> AsyncIterator[Driver]:
    env = {**os.environ, "SSL_CERT_FILE": ca_file} if ca_file else None
    proc = await asyncio.create_subprocess_exec(
        str(python),
        str(DRIVER),
        "--peer",
        peer,
        "--provider",
        provider,
        "--base-url",
        base_url,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**22,
    )
    d = Driver(proc)
    try:
        yield d
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


Side = Callable[[dict[str, Any]], Awaitable[None]]
Step = Callable[..., Awaitable[dict[str, Any]]]


def stepper(
    d: Driver, results: dict[str, tuple[bool, str]], server_errors: Callable[[], list[str]]
) -> Step:
    """``await step(name, side, **cmd)``: run one step in the driver; ``side`` sees the
    driver's interim events (its server part); a server-side error fails the step. The
    result goes to ``results[key or name]``."""

    async def step(
        name: str, side: Side | None = None, key: str | None = None, **cmd: Any
    ) -> dict[str, Any]:
        errors = len(server_errors())
        await d.send(step=name, **cmd)
        while True:
            msg = await d.read()
            if "step" in msg:
                break
            if side is not None:
                await side(msg)
        new_errors = server_errors()[errors:]
        detail = str(msg.get("detail", ""))
        if new_errors:
            detail += f"; server errors: {new_errors}"
        results[key or name] = (bool(msg["ok"]) and not new_errors, detail)
        return msg

    return step


async def run_steps(server: OpenAIRealtimeServer, d: Driver) -> dict[str, tuple[bool, str]]:
    """Every step, the server's part played here; ``{step: (ok, detail)}``."""
    ready = await d.read(within=90)
    assert ready.get("event") == "ready", ready
    await server.wait_connections(1, within=15)
    results: dict[str, tuple[bool, str]] = {}
    step = stepper(d, results, lambda: [f"{e['code']}: {e['message']}" for e in server.errors])

    server.script(ScriptedReply(transcript="text reply", audio=pcm(0.4)))
    await step("text", prompt="Say something.", expect="text reply")

    server.script(ScriptedReply(transcript="audio reply", audio=pcm(0.4)))
    audio_task = asyncio.get_running_loop().create_task(user_turn_after_speech(server))
    await step("audio", expect="audio reply")
    audio_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await audio_task

    server.script(
        ScriptedReply(tool_calls=[("get_weather", {"city": "Paris"})]),
        ScriptedReply(transcript="It is 21 degrees in Paris", audio=pcm(0.4)),
    )
    outputs = len(server.received_of("conversation.item.create"))
    await step("tool", prompt="Weather in Paris?", expect="It is 21 degrees in Paris")
    sent = [
        e["item"]
        for e in server.received_of("conversation.item.create")[outputs:]
        if e["item"]["type"] == "function_call_output"
    ]
    if results["tool"][0] and (len(sent) != 1 or "21" not in sent[0]["output"]):
        results["tool"] = (False, f"server got tool outputs {sent}")

    long = ScriptedReply(transcript="a long story " * 10, audio=pcm(4.0), pace=0.1)
    server.script(long)

    async def barge(msg: dict[str, Any]) -> None:
        if msg.get("event") == "playing":
            await server.speech_started()

    await step("bargein", barge, prompt="Tell me a story.")
    server._script.clear()  # a peer that never got its reply leaves it queued

    connections = len(server.connections)

    async def cut(msg: dict[str, Any]) -> None:
        if msg.get("event") == "armed":
            await server.drop()

    await step("drop", cut)
    server.script(ScriptedReply(transcript="after the drop", audio=pcm(0.4)))
    await judge_drop(step, results, len(server.connections) > connections)
    return results


async def judge_drop(step: Step, results: dict[str, tuple[bool, str]], new_session: bool) -> None:
    """A peer passes the drop if it came back (a new session, answering a typed turn) or, if
    it does not reconnect, if it reported the failure instead of going quiet."""
    reported_ok, reported = results["drop"]
    if new_session:
        await step("text", key="after drop", prompt="Still there?", expect="after the drop")
        ok, detail = results.pop("after drop")
        results["drop"] = (ok, f"reconnected (a new session), next turn: {detail}; {reported}")
    elif reported.startswith("reported a reconnect"):
        results["drop"] = (False, f"claims a reconnect the server never saw; {reported}")
    else:
        results["drop"] = (reported_ok, f"no reconnect; {reported}")


async def user_turn_after_speech(server: OpenAIRealtimeServer) -> None:
    """Server VAD: once the peer streamed most of its second of speech, the turn ends."""
    start = server.audio_bytes
    await server.wait_for(lambda: server.audio_bytes - start >= 1200 * BYTES_PER_MS, within=20)
    await server.user_turn("what is the weather", audio_end_ms=1000)


@pytest.mark.parametrize("peer", PEERS)
async def test_peer_client_against_our_openai_server(
    peer: str, peer_pythons: dict[str, Path]
) -> None:
    async with (
        OpenAIRealtimeServer() as server,
        driver(peer_pythons[peer], server.base_url, peer) as d,
    ):
        try:
            results = await run_steps(server, d)
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{peer}: {exc!r}; driver stderr: {await d.stderr_tail()}")
        invalid = list(server.invalid_events)
    assert invalid == [], invalid
    check(peer, results)


def check(peer: str, results: dict[str, tuple[bool, str]]) -> None:
    """Print the peer's row; fail on any step not explained in ``PEER_DEFECTS``."""
    table = "\n".join(
        f"  {peer:14} {s:8} {'ok' if ok else 'FAIL'}  {det}" for s, (ok, det) in results.items()
    )
    print(f"\nconformance {peer}:\n{table}")
    unexplained = {
        s: det for s, (ok, det) in results.items() if not ok and (peer, s) not in PEER_DEFECTS
    }
    assert not unexplained, f"{peer} failed {unexplained}"
    stale = [s for s, (ok, _) in results.items() if ok and (peer, s) in PEER_DEFECTS]
    assert not stale, f"{peer} now passes {stale}: drop them from PEER_DEFECTS and the docs"
    assert set(results) == set(STEPS)


# -- Gemini Live peers (LiveKit's Google plugin, Pipecat's Gemini Live service) ---------------

GEMINI_PEERS = ("livekit", "pipecat")


async def run_gemini_steps(server: GeminiLiveServer, d: Driver) -> dict[str, tuple[bool, str]]:
    """The same steps against the local Gemini Live server, whose replies are sent by hand."""
    ready = await d.read(within=90)
    assert ready.get("event") == "ready", ready
    await server.wait_connected(1, within=15)
    results: dict[str, tuple[bool, str]] = {}
    step = stepper(d, results, lambda: [f"{c}: {r}" for c, r in server.rejections])

    def reply(seconds: float = 0.4) -> PcmData:
        return PcmData.from_bytes(pcm(seconds), 24000, 1, "s16")

    async def after_text(prompt: str) -> None:
        await server.wait_for(lambda: any(prompt in t for t in server.texts), within=20)

    server.responder = lambda _text: ("text reply", reply())
    await step("text", prompt="Say something.", expect="text reply")
    server.responder = None

    async def audio_turn() -> None:
        start = server.audio_bytes
        await server.wait_for(lambda: server.audio_bytes - start >= 32 * 1200, within=20)
        await server.send_input_transcript("what is the weather")
        await server.send_audio(reply(), transcript="audio reply")

    await with_side(audio_turn(), step("audio", expect="audio reply"))

    async def tool_turn() -> None:
        await after_text("Weather in Paris?")
        answered = len(server.tool_responses)
        await server.send_tool_call("get_weather", {"city": "Paris"})
        await server.wait_for(lambda: len(server.tool_responses) > answered, within=20)
        await server.send_audio(reply(), transcript="It is 21 degrees in Paris")

    await with_side(
        tool_turn(), step("tool", prompt="Weather in Paris?", expect="It is 21 degrees in Paris")
    )

    interrupted = asyncio.Event()

    async def long_reply() -> None:
        await after_text("Tell me a story.")
        for chunk in reply(4.0).chunks(100):
            if interrupted.is_set():
                return
            blob = {"mimeType": "audio/pcm;rate=24000", "data": chunk.to_base64()}
            await server.send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            await asyncio.sleep(0.1)

    async def barge(msg: dict[str, Any]) -> None:
        if msg.get("event") == "playing":
            interrupted.set()
            await server.send_interrupted()

    await with_side(long_reply(), step("bargein", barge, prompt="Tell me a story."))

    connections = server.connection_count

    async def cut(msg: dict[str, Any]) -> None:
        if msg.get("event") == "armed":
            await server.drop()

    await step("drop", cut)
    server.responder = lambda _text: ("after the drop", reply())
    await judge_drop(step, results, server.connection_count > connections)
    return results


async def with_side(side: Awaitable[None], step: Awaitable[dict[str, Any]]) -> None:
    """Run a step while the server plays its part; the part ends with the step."""
    task = asyncio.ensure_future(side)
    try:
        await step
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@pytest.mark.parametrize("peer", GEMINI_PEERS)
async def test_peer_client_against_our_gemini_server(
    peer: str, peer_pythons: dict[str, Path], tmp_path: Path
) -> None:
    async with GeminiLiveServer() as server:
        ca_file = tmp_path / "ca.pem"
        ca_file.write_bytes(server.tls.ca_pem())
        async with driver(peer_pythons[peer], server.base_url, peer, "gemini", str(ca_file)) as d:
            try:
                results = await run_gemini_steps(server, d)
            except (TimeoutError, RuntimeError) as exc:
                pytest.fail(f"{peer}: {exc!r}; driver stderr: {await d.stderr_tail()}")
    check(f"{peer}-gemini", results)
