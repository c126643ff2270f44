"""Helpers for the server tests: `vision-agents serve` as a subprocess, an HTTP client for
it, and a participant that records what it hears and sees of the agent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiortc
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from tests.browser.python_peer import PythonPeer, SolidColourTrack
from vision_agents.core import PcmData
from vision_agents.core.utils.audio_clock import AudioFrameClock

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-" + "7" * 24
APP = "tests.server_app:create_agent"
EXAMPLE_APP = "examples.agent_server.app:create_agent"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class ServeProcess:
    """``python -m vision_agents serve ...`` on a free port; output kept in ``lines``."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.base_url = ""
        self._reader: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.http = aiohttp.ClientSession()

    @classmethod
    async def start(
        cls, factory: str, *options: str, ready_s: float = 90.0, nice: int = 0
    ) -> ServeProcess:
        """Admission from measured load is off unless ``options`` set it: tests and benchmarks
        share a busy machine, and a node that refuses for that would test nothing else.
        ``nice``: run the server (and so its workers) at this niceness, below a harness that
        must keep watching it."""
        for flag in ("--max-cpu", "--max-loop-lag"):
            if flag not in options:
                options = (*options, flag, "off")
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["VISION_AGENTS_API_TOKEN"] = TOKEN
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        prefix = ("nice", "-n", str(nice)) if nice else ()
        process = await asyncio.create_subprocess_exec(
            *prefix,
            sys.executable,
            "-m",
            "vision_agents",
            "serve",
            factory,
            "--port",
            "0",
            *options,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        server = cls(process)
        server._reader = reader = asyncio.ensure_future(server._read())
        try:
            async with asyncio.timeout(ready_s):
                listening = asyncio.ensure_future(server._listening.wait())
                try:  # a server that exits before listening fails at once, with its output
                    await asyncio.wait({listening, reader}, return_when="FIRST_COMPLETED")
                finally:
                    listening.cancel()
                    await asyncio.gather(listening, return_exceptions=True)
                if not server._listening.is_set():
                    reader.result()  # raises the reader's error (the output)
        except TimeoutError:
            await server.close()
            raise AssertionError(
                f"the server did not listen within {ready_s:.0f} s; its output:\n{server.output}"
            ) from None
        except BaseException:
            await server.close()
            raise
        return server

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.lines.append(text)
            if "listening on " in text:
                self.base_url = text.rsplit("listening on ", 1)[1].strip()
                self._listening.set()
        if not self._listening.is_set():
            raise RuntimeError("the server exited before listening:\n" + self.output)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        token: str | None = TOKEN,
    ) -> Reply:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.http.request(
            method,
            self.base_url + path,
            json=json,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=90),  # a hung server fails the test, not CI
        ) as resp:
            text = await resp.text()
            body: Any = text
            if resp.content_type == "application/json":
                body = await resp.json()
            return Reply(resp.status, body, dict(resp.headers))

    async def metric(self, name: str, default: float | None = None) -> float:
        """A sample's value from /metrics; ``default`` when it is absent (a labelled counter
        has no sample before its first increment), else an assertion error."""
        reply = await self.call("GET", "/metrics", token=None)
        for line in str(reply.body).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        if default is not None:
            return default
        raise AssertionError(f"no metric {name} in /metrics")

    async def terminate(self, within_s: float) -> int:
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(within_s):
            return await self.process.wait()

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 5)
        await self.http.close()


class ToneTrack(aiortc.MediaStreamTrack):
    """A microphone paced like a sound card: ``speech`` once then silence, or without it a
    quiet 300 Hz tone."""

    kind = "audio"

    def __init__(self, speech: PcmData | None = None) -> None:
        super().__init__()
        self._clock = AudioFrameClock(48000, 1)
        n = self._clock.frame_samples
        self._tone = (3000 * np.sin(2 * np.pi * 300 * np.arange(n) / 48000)).astype(np.int16)
        self._speech = (
            np.frombuffer(speech.resample(48000, 1).to_bytes(), dtype=np.int16)
            if speech is not None
            else None
        )
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        await self._clock.tick()
        if self._speech is None:
            return self._clock.frame(self._tone)
        n = self._clock.frame_samples
        chunk = self._speech[self._pos : self._pos + n]
        self._pos += n
        return self._clock.frame(chunk)  # padded with silence past the end


@dataclass
class Received:
    """Frames of one of the agent's tracks, with arrival times."""

    arrivals: list[float] = field(default_factory=list)
    pts: list[int | None] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)
    mean_rgb: list[tuple[float, float, float]] = field(default_factory=list)

    def loud_since(self, t: float, threshold: float = 1000.0) -> int:
        return sum(
            1 for a, r in zip(self.arrivals, self.rms, strict=True) if a >= t and r > threshold
        )


class Listener:
    """A participant (aiortc) that joins a call and records the agent's audio and video."""

    def __init__(self, peer: PythonPeer) -> None:
        self.peer = peer
        self.audio = Received()
        self.video = Received()
        self.ws_closed_at: float | None = None
        self.messages: list[dict[str, Any]] = []
        receivers = [t.receiver for t in peer.pc.getTransceivers() if t.direction == "recvonly"]
        # Seat 0 is the agent: the first audio and video slots.
        self._tasks = [
            asyncio.ensure_future(self._record_audio(receivers[0].track)),
            asyncio.ensure_future(self._record_video(receivers[1].track)),
            asyncio.ensure_future(self._watch_socket()),
        ]

    @classmethod
    async def join(
        cls,
        join_url: str,
        colour: tuple[int, int, int] = (210, 20, 20),
        speech: PcmData | None = None,
    ) -> Listener:
        peer = await PythonPeer.join(
            join_url, video=SolidColourTrack(colour, fps=10), audio=ToneTrack(speech)
        )
        return cls(peer)

    async def _record_audio(self, track: aiortc.MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                pcm = frame.to_ndarray().astype(np.float32)
                self.audio.arrivals.append(time.monotonic())
                self.audio.pts.append(frame.pts)
                self.audio.samples.append(frame.samples)
                self.audio.rms.append(float(np.sqrt(np.mean(pcm**2))))

    async def _record_video(self, track: aiortc.MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                rgb = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
                self.video.arrivals.append(time.monotonic())
                self.video.mean_rgb.append((float(rgb[0]), float(rgb[1]), float(rgb[2])))

    async def _watch_socket(self) -> None:
        async for message in self.peer.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(message.json())
        self.ws_closed_at = time.monotonic()

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.peer.leave()
