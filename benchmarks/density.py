"""Density: how many agent sessions this machine holds, agents in one process vs
`vision-agents serve` (one worker process a session), side by side in one run.

Each session: an aiortc participant sending 640x480 VP8 at 30 fps (every frame carries its
capture time) and looping speech (Opus), and an agent with ``openai.Realtime(fps=1)`` on the
local OpenAI server (its own process), which replies with speech continuously. Per N and
mode, after a warm-up:

- frame age at the model: capture -> the JPEG arriving at the model server (p50/p95);
- agent audio at the participant: frames lost (RTP timestamps that jump) and stalls (no
  frame for over 200 ms);
- event-loop lag p99 of the agents' loops (one process: every 50 ms sample; serve: the
  Prometheus histogram's bucket bound, so "<=");
- CPU (% of one core) and memory per session of the agent side; the machine's idle share.

A session count "holds" when frame age p95 < 100 ms, no agent audio is lost or stalls, and
loop lag p99 < 50 ms. Then a breakdown of where a session's CPU goes, from the same codecs
and helpers timed alone at one session's rates.

Mode ``admission``: `vision-agents serve` with its default admission from measured load
(``--max-cpu 85 --max-loop-lag 50``) is offered N sessions one after another, each
participant joining as its session is admitted; the row reports how many were admitted and
judges those. Offer twice the N that holds to see overload refused instead of suffered.

Mode ``serve-per-frame``: ``serve`` with ``openai.Realtime(audio_chunk_ms=0)``, the user's
audio sent one 20 ms frame a message as before 100 ms appends were the default.

    python -m benchmarks.density --sessions 1,2,4,6,8 --seconds 20   # from the repo root
    python -m benchmarks.density --modes admission --sessions 6 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiortc
import av
import numpy as np
import psutil
from aiortc.mediastreams import MediaStreamError

from benchmarks.density_media import (
    EncodedSchedule,
    LoopingMicrophone,
    PreEncodedCamera,
    PreEncodedMicrophone,
    StampedCamera,
)
from tests.browser.python_peer import PythonPeer
from tests.serve_kit import ServeProcess
from vision_agents.server.usage import LoopLagProbe
from vision_agents.testing import synthesize_speech

ROOT = Path(__file__).resolve().parents[1]
SPEECH = "What do you see in front of you? Tell me about the colours and the shapes."


@dataclass
class Heard:
    """The agent's audio as one participant receives it."""

    arrivals: list[float] = field(default_factory=list)
    pts: list[int] = field(default_factory=list)
    samples: int = 960

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        """(frames lost, stalls over 200 ms) between monotonic times t0 and t1."""
        idx = [i for i, t in enumerate(self.arrivals) if t0 <= t <= t1]
        lost = sum(
            max(0, (self.pts[b] - self.pts[a]) // self.samples - 1)
            for a, b in itertools.pairwise(idx)
        )
        stalls = sum(
            1 for a, b in itertools.pairwise(idx) if self.arrivals[b] - self.arrivals[a] > 0.2
        )
        return lost, stalls


class Participant:
    """One caller: sends the camera and speech, records the agent's audio, and reads its
    signalling socket as the call page does. (Unread, the socket never answers the server's
    heartbeat, and the server ends the call 15 s after the join: every figure before
    2026-12-06 measured calls that had ended partway through the window.)"""

    def __init__(self, peer: PythonPeer) -> None:
        self.peer = peer
        self.heard = Heard()
        receivers = [t.receiver for t in peer.pc.getTransceivers() if t.direction == "recvonly"]
        self._tasks = [
            asyncio.ensure_future(self._listen(receivers[0].track)),
            asyncio.ensure_future(self._read_socket()),
        ]

    async def _read_socket(self) -> None:
        async for _message in self.peer.ws:  # reading is what answers the pings
            pass

    @classmethod
    async def join(
        cls, url: str, seed: int, speech: Any, schedule: EncodedSchedule | None
    ) -> Participant:
        camera: aiortc.MediaStreamTrack
        microphone: aiortc.MediaStreamTrack
        if schedule is None:  # --camera live: encoded as a real caller would
            camera, microphone = StampedCamera(seed=seed), LoopingMicrophone(speech)
        else:
            camera, microphone = PreEncodedCamera(schedule), PreEncodedMicrophone(speech)
        peer = await PythonPeer.join(url, video=camera, audio=microphone)
        return cls(peer)

    async def _listen(self, track: aiortc.MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                self.heard.arrivals.append(time.monotonic())
                self.heard.pts.append(int(frame.pts or 0))
                self.heard.samples = frame.samples
        except MediaStreamError:
            pass

    @property
    def connected(self) -> bool:
        return self.peer.pc.connectionState == "connected"

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.peer.leave()


class LineProcess:
    """A helper process that talks in JSON lines (the model server, agents in one process)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> LineProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def read(self, within_s: float = 120.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(within_s):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.process.pid} exited")
                if line.startswith(b"{"):
                    message: dict[str, Any] = json.loads(line)
                    return message

    async def write(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode())
        await self.process.stdin.drain()

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class Agents:
    """N agents, either in one process or behind `vision-agents serve`."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.metadata: dict[str, Any] = {}
        self.refusals: list[str] = []
        if mode == "serve-per-frame":  # as before 100 ms appends: one a 20 ms frame
            self.metadata["audio_chunk_ms"] = 0
        self.urls: list[str] = []
        self.inproc: LineProcess | None = None
        self.serve: ServeProcess | None = None
        self._lag_at_mark: dict[float, float] = {}

    async def start(self, n: int, model_url: str) -> None:
        if self.mode == "one-process":
            self.inproc = await LineProcess.start("-m", "benchmarks.density_app", str(n), model_url)
            self.urls = (await self.inproc.read())["join_urls"]
            return
        admission = ("--max-cpu", "85", "--max-loop-lag", "50") if self.mode == "admission" else ()
        self.serve = await ServeProcess.start(
            "benchmarks.density_app:create_agent",
            *("--max-sessions", str(n), "--prewarm", str(n), "--drain-timeout", "0"),
            *("--empty-timeout", "600"),
            *admission,
        )
        await _wait_ready(self.serve, n)
        if self.mode == "admission":
            return  # sessions are offered one by one: see ``offer``
        for i in range(n):
            reply = await self.serve.call(
                "POST",
                "/sessions",
                json={
                    "call_id": f"density-{i}",
                    "metadata": {"model_url": model_url, **self.metadata},
                },
            )
            if reply.status != 201:
                raise RuntimeError(f"session {i} refused: {reply.body}")
            self.urls.append(reply.body["join_url"])

    async def offer(self, i: int, model_url: str) -> str | None:
        """Ask for session ``i``; its join URL, or None when the node refused it (overloaded)."""
        assert self.serve is not None
        reply = await self.serve.call(
            "POST",
            "/sessions",
            json={"call_id": f"density-{i}", "metadata": {"model_url": model_url}},
        )
        if reply.status == 201:
            self.urls.append(reply.body["join_url"])
            return str(reply.body["join_url"])
        if reply.status == 503 and reply.body.get("reason") == "overloaded":
            self.refusals.append(str(reply.body.get("error")))
            return None
        raise RuntimeError(f"session {i} refused: {reply.body}")

    def processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.inproc.process.pid if self.inproc else self.serve.process.pid)  # type: ignore[union-attr]
        return [root, *root.children(recursive=True)]

    async def mark(self) -> None:
        if self.inproc is not None:
            await self.inproc.write("mark\n")
        else:
            self._lag_at_mark = await self._lag_buckets()

    async def _lag_buckets(self) -> dict[float, float]:
        assert self.serve is not None
        reply = await self.serve.call("GET", "/metrics", token=None)
        buckets: dict[float, float] = {}
        for line in str(reply.body).splitlines():
            if line.startswith("vision_agents_event_loop_lag_seconds_bucket"):
                le = line.split('le="')[1].split('"')[0]
                buckets[math.inf if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
        return buckets

    async def lag_p99_ms(self) -> tuple[float, str]:
        """Loop lag p99 in ms since ``mark``, and "=" (exact) or "<=" (a bucket bound)."""
        if self.inproc is not None:
            assert self.inproc.process.stdin is not None
            self.inproc.process.stdin.close()
            samples = (await self.inproc.read())["loop_lag_s"]
            return (float(np.percentile(samples, 99)) * 1000 if samples else math.nan), "="
        now = await self._lag_buckets()
        delta = {le: now[le] - self._lag_at_mark.get(le, 0.0) for le in sorted(now)}
        total = delta.get(math.inf, 0.0)
        for le, count in delta.items():
            if total and count >= 0.99 * total:
                return le * 1000, "<="
        return math.nan, "<="

    async def close(self) -> None:
        if self.inproc is not None:
            await self.inproc.close()
        if self.serve is not None:
            if self.serve.process.returncode is None:
                await self.serve.terminate(within_s=30)
            await self.serve.close()
            log = Path(tempfile.gettempdir()) / f"density-{self.mode}-{len(self.urls)}.log"
            log.write_text(self.serve.output)
            print(f"the node's log: {log}", flush=True)


async def _wait_ready(server: ServeProcess, n: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metrics = await server.call("GET", "/metrics", token=None)
        for line in str(metrics.body).splitlines():
            if line.startswith("vision_agents_workers_idle ") and float(line.split()[1]) >= n:
                return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{n} workers were not ready in time")


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in processes:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return out


def _memory(processes: list[psutil.Process]) -> tuple[float, float]:
    """Resident and unique (USS: not shared with other processes) bytes, summed."""
    rss = uss = 0.0
    for p in processes:
        try:
            info = p.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += info.rss
        uss += info.uss
    return rss, uss


class Crowd:
    """The participants: in this process (``processes=0``), or dealt out between
    ``processes`` helper processes (``benchmarks.density_peers``) so that playing them does
    not make the harness the bottleneck."""

    def __init__(self, processes: int, speech: Any, schedule: EncodedSchedule | None) -> None:
        self.speech = speech
        self.schedule = schedule
        self.local: list[Participant] = []
        self.helpers: list[LineProcess] = []
        self.count = 0
        self._processes = processes
        self._probe = LoopLagProbe()
        self._lag = asyncio.ensure_future(self._probe.run())
        self._marked = 0.0
        self._cpu_at_mark = 0.0

    async def start(self, length_s: float) -> None:
        for _ in range(self._processes):
            self.helpers.append(
                await LineProcess.start("-m", "benchmarks.density_peers", str(length_s))
            )
        for helper in self.helpers:
            await helper.read(within_s=300)  # its timetable is encoded

    async def join(self, url: str, seed: int) -> None:
        if self.helpers:
            helper = self.helpers[self.count % len(self.helpers)]
            await helper.write(f"join {url} {seed}\n")
            await helper.read()
        else:
            self.local.append(await Participant.join(url, seed, self.speech, self.schedule))
        self.count += 1

    def _own_cpu(self) -> float:
        t = psutil.Process().cpu_times()
        return t.user + t.system

    async def mark(self) -> None:
        self._probe.take()
        self._marked = time.monotonic()
        self._cpu_at_mark = self._own_cpu()
        for helper in self.helpers:
            await helper.write("mark\n")
            self._cpu_at_mark += (await helper.read())["cpu_s"]

    async def report(self) -> dict[str, Any]:
        """Agent audio lost and stalls, harness CPU (% core) and loop lag p99 since ``mark``."""
        now = time.monotonic()
        lags = self._probe.take()
        cpu = self._own_cpu()
        lost = stalls = 0
        connected = sum(p.connected for p in self.local)
        for participant in self.local:
            lost_i, stalls_i = participant.heard.window(self._marked, now)
            lost, stalls = lost + lost_i, stalls + stalls_i
        lag_p99s = [float(np.percentile(lags, 99)) if lags else 0.0]
        for helper in self.helpers:
            await helper.write("report\n")
            reply = await helper.read()
            lost, stalls, cpu = lost + reply["lost"], stalls + reply["stalls"], cpu + reply["cpu_s"]
            connected += reply["connected"]
            if reply["lag_s"]:
                lag_p99s.append(float(np.percentile(reply["lag_s"], 99)))
        return {
            "connected": connected,
            "lost": lost,
            "stalls": stalls,
            "harness_cpu": (cpu - self._cpu_at_mark) / (now - self._marked) * 100,
            "harness_lag_p99": max(lag_p99s) * 1000,
        }

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(h.process.pid) for h in self.helpers]

    async def close(self) -> None:
        self._lag.cancel()
        await asyncio.gather(self._lag, return_exceptions=True)
        for participant in self.local:
            await participant.leave()
        for helper in self.helpers:
            assert helper.process.stdin is not None
            helper.process.stdin.close()  # everyone leaves
        for helper in self.helpers:
            try:
                await asyncio.wait_for(helper.process.wait(), 20)
            except TimeoutError:
                pass
            await helper.close()


async def run_case(
    mode: str,
    n: int,
    seconds: float,
    warmup: float,
    model: LineProcess,
    model_url: str,
    speech: Any,
    camera: str = "pre-encoded",
    peer_processes: int = 2,
) -> dict[str, Any]:
    agents = Agents(mode)
    # Long enough for the joins (3 s an offer in admission mode), warm-up and window.
    length = warmup + seconds + 6 * n + 20
    schedule = None
    if camera == "pre-encoded" and peer_processes == 0:
        schedule = await asyncio.to_thread(EncodedSchedule, length)
    crowd = Crowd(peer_processes, speech, schedule)
    try:
        # The node first (pre-warming N workers takes a while), then the participants'
        # timetables: one that starts early can run out before the window ends.
        await agents.start(n, model_url)
        await crowd.start(length)
        if mode == "admission":
            for i in range(n):
                url = await agents.offer(i, model_url)
                if url is not None:
                    await crowd.join(url, i)
                # A set time for the new session's load to show in the node's measurements
                # (1 s CPU window, 0.5 s loop-lag reports) before the next offer.
                await asyncio.sleep(3.0)
        else:
            for i, url in enumerate(agents.urls):
                await crowd.join(url, i)
        admitted = crowd.count
        await asyncio.sleep(warmup)  # a benchmark: the warm-up is a set time, not a condition
        procs = agents.processes()
        model_proc = psutil.Process(model.process.pid)
        cpu0, model0 = _cpu(procs), model_proc.cpu_times()
        psutil.cpu_percent()
        wall0, mono0 = time.time(), time.monotonic()
        await agents.mark()
        await crowd.mark()
        await asyncio.sleep(seconds)
        heard = await crowd.report()
        elapsed = time.monotonic() - mono0
        cpu1, model1 = _cpu(procs), model_proc.cpu_times()
        machine = psutil.cpu_percent()
        rss, uss = _memory(procs)
        await model.write(f"report {wall0}\n")
        ages = (await model.read())["ages_ms"]
        lag, lag_op = await agents.lag_p99_ms()
        lost, stalls = heard["lost"], heard["stalls"]
        used = sum(cpu1[pid] - cpu0[pid] for pid in cpu1 if pid in cpu0)
        p95 = float(np.percentile(ages, 95)) if ages else math.nan
        return {
            "mode": mode,
            "n": n,
            "frames": len(ages),
            "age_p50": float(np.percentile(ages, 50)) if ages else math.nan,
            "age_p95": p95,
            "lost": lost,
            "stalls": stalls,
            "lag_p99": lag,
            "lag_op": lag_op,
            "admitted": admitted,
            "cpu_per_session": used / elapsed / max(1, admitted) * 100,
            "cpu_total": used / elapsed * 100,
            "rss_per_session_mb": rss / max(1, admitted) / 1e6,
            "uss_per_session_mb": uss / max(1, admitted) / 1e6,
            "connected": heard["connected"],
            "harness_cpu": heard["harness_cpu"],
            "harness_lag_p99": heard["harness_lag_p99"],
            "model_cpu": (model1.user + model1.system - model0.user - model0.system)
            / elapsed
            * 100,
            "machine_idle": 100 - machine,
            "window": [wall0, wall0 + elapsed],
            "refusals": agents.refusals,
            "holds": bool(
                p95 < 100
                and lost == 0
                and stalls == 0
                and lag < 50
                and heard["connected"] == admitted
            ),
        }
    finally:
        await crowd.close()
        await agents.close()


async def breakdown() -> list[tuple[str, float]]:
    """CPU (% of one core) of one session's media work, each part timed alone at its rate."""
    from aiortc.codecs import get_decoder, get_encoder
    from aiortc.codecs.vpx import vp8_depayload
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from vision_agents.core import PcmData
    from vision_agents.core.audio.resampler import Resampler
    from vision_agents.core.utils.video import encode_jpeg

    def per_second(fn: Any, rate: float, repeat: int) -> float:
        start = time.process_time()
        for _ in range(repeat):
            fn()
        return (time.process_time() - start) / repeat * rate * 100

    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2)
    camera = StampedCamera(fps=1e6)  # the same moving picture, without the pacing
    frames = [await camera.recv() for _ in range(60)]
    encoder = get_encoder(vp8)
    encoded: list[bytes] = []
    for i, frame in enumerate(frames):
        frame.pts = i * 3000
        payloads, _ = encoder.encode(frame)
        encoded.append(b"".join(vp8_depayload(p) for p in payloads))
    decoder = get_decoder(vp8)
    it = iter(range(10**9))

    def decode_vp8() -> None:
        i = next(it)
        decoder.decode(JitterFrame(encoded[i % 60], i * 3000))

    results = [("VP8 decode, 640x480 at 30 fps (the camera)", per_second(decode_vp8, 30, 60))]
    big = frames[0]
    results.append(
        ("JPEG for the model, 1 fps", per_second(lambda: encode_jpeg(big, 80, 1024), 1, 20))
    )
    voice = PcmData(np.zeros(960, dtype=np.int16), 48000, 1)
    mic = av.AudioFrame.from_ndarray(
        np.zeros((1, 1920), dtype=np.int16), format="s16", layout="stereo"
    )
    mic.sample_rate, mic.pts = 48000, 0
    opus_encoder = get_encoder(opus)
    packets = [b"".join(opus_encoder.encode(mic)[0]) for _ in range(5)]
    opus_decoder = get_decoder(opus)
    results.append(
        (
            "Opus decode, 50 frames/s (the microphone)",
            per_second(lambda: opus_decoder.decode(JitterFrame(packets[0], 0)), 50, 500),
        )
    )
    to_model = Resampler(24000, 1, "s16")
    results.append(
        (
            "resample 48 kHz -> 24 kHz for the model, 50/s",
            per_second(lambda: to_model.process(voice), 50, 500),
        )
    )
    chunk = np.zeros(480, dtype=np.int16).tobytes()
    results.append(
        (
            "JSON + base64 of 50 audio appends/s",
            per_second(
                lambda: json.dumps(
                    {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}
                ),
                50,
                2000,
            ),
        )
    )
    reply = PcmData(np.zeros(2400, dtype=np.int16), 24000, 1)
    to_call = Resampler(48000, 2, "s16")
    results.append(
        (
            "resample the agent's voice 24 kHz -> 48 kHz stereo, 10 chunks/s",
            per_second(lambda: to_call.process(reply), 10, 500),
        )
    )
    results.append(
        (
            "Opus encode of the agent's voice, 50 frames/s",
            per_second(lambda: opus_encoder.encode(mic), 50, 500),
        )
    )
    return results


def print_table(rows: list[dict[str, Any]]) -> None:
    header = "| mode | sessions (admitted, calls up at the end) | frames to model | frame age p50 / p95 (ms) | agent audio lost / stalls | loop lag p99 (ms) | CPU per session (% core) | agent side CPU (% core) | memory per session, RSS / unique (MB) | harness CPU / loop lag p99 | model server CPU | machine idle | holds |"
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['n']} ({r['admitted']}, {r['connected']} up) | {r['frames']} | {r['age_p50']:.0f} / {r['age_p95']:.0f} | "
            f"{r['lost']} / {r['stalls']} | {r['lag_op']} {r['lag_p99']:.0f} | {r['cpu_per_session']:.0f}% | "
            f"{r['cpu_total']:.0f}% | {r['rss_per_session_mb']:.0f} / {r['uss_per_session_mb']:.0f} | "
            f"{r['harness_cpu']:.0f}% / {r['harness_lag_p99']:.0f} ms | {r['model_cpu']:.0f}% | "
            f"{r['machine_idle']:.0f}% | {'yes' if r['holds'] else 'no'} |"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,4,6,8", help="session counts to try")
    parser.add_argument("--modes", default="one-process,serve")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per case")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--peer-processes",
        type=int,
        default=2,
        help="processes that play the participants (0: this one, as before)",
    )
    parser.add_argument(
        "--camera",
        choices=("pre-encoded", "live"),
        default="pre-encoded",
        help="participants' VP8: encoded before each case (the harness then costs little "
        "while it measures) or live, as a real camera would be",
    )
    args = parser.parse_args()
    if args.camera == "live" and args.peer_processes:
        parser.error("--camera live plays the participants in this process: add --peer-processes 0")
    counts = [int(c) for c in args.sessions.split(",")]
    modes = args.modes.split(",")
    print(f"{psutil.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    speech = synthesize_speech(SPEECH)
    model = await LineProcess.start("-m", "benchmarks.density_model")
    rows = []
    try:
        model_url = f"http://127.0.0.1:{(await model.read())['port']}/v1"
        for n in counts:
            for mode in modes:
                row = await run_case(
                    mode,
                    n,
                    args.seconds,
                    args.warmup,
                    model,
                    model_url,
                    speech,
                    args.camera,
                    args.peer_processes,
                )
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        await model.close()
    print()
    print_table(rows)
    print()
    for mode in modes:
        held = [r["admitted"] for r in rows if r["mode"] == mode and r["holds"]]
        print(f"largest N that holds, {mode}: {max(held) if held else 'none'}")
    print()
    print("| where one session's CPU goes (each part timed alone) | % of one core |")
    print("|---|---|")
    for name, pct in await breakdown():
        print(f"| {name} | {pct:.1f}% |")


if __name__ == "__main__":
    asyncio.run(main())
