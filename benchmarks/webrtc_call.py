"""Benchmark: the embedded WebRTC call with Debian's Chromium on loopback.

Three measurements, each printed as a table:

1. ``join``: time from opening the join link to the agent's first received frame.
2. ``latency``: how much the agent path adds. The page's camera and microphone are replaced
   (before the page's script runs) by a canvas that draws ``Date.now()`` as 24 bit blocks and
   an oscillator that beeps every 400 ms. The same tracks go (a) through the call server into
   the Agent and its Realtime model (``FakeRealtime``) and (b) over a second, bare
   browser-to-aiortc connection in the same run. Per frame / beep: arrival time minus the
   time carried in the media; the agent's added latency is (a) minus (b).
3. ``cpu``: CPU of this process (server + agent) per browser sending 640x480 at 30 fps.

``--edges webrtc,janus`` runs all three on the Janus edge too, side by side: a real Janus
(Debian's package, our config; its own CPU counted apart) and the page of
``vision_agents.plugins.janus``. The CPU table also gives the machine's idle share: near 0,
the browsers (separate processes) starve everything and the figures only bound the cost.
``--camera 320x240@15`` sets the CPU table's browser camera. A CPU case is measured even when
not every browser got into the call within 60 s (its row says how many did); one that does not
finish within ``--case-timeout`` s is reported as not measured.

Runs in a loopback-only network namespace when it can (root; with a veth pair inside it for
Janus, which never uses loopback for media). Run from the repository root:
``python -m benchmarks.webrtc_call``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiortc
import av
import numpy as np
import psutil
from aiortc.mediastreams import MediaStreamError
from playwright.async_api import async_playwright

from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav, write_y4m
from tests.browser.netns import LoopbackOnlyNamespace
from tests.browser.waiting import eventually
from vision_agents.core import Agent, Participant, PcmData, User
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime

TIME_BITS = 24
BLOCK = 8

# Replaces the camera and microphone with timestamped media, before app.js runs.
STAMPED_MEDIA = """
(() => {
  const make = () => {
    const canvas = document.createElement("canvas");
    canvas.width = 320; canvas.height = 240;
    const g = canvas.getContext("2d");
    const draw = () => {
      const t = Date.now() % 16777216;
      g.fillStyle = "#404040"; g.fillRect(0, 0, 320, 240);
      g.fillStyle = "#000"; g.fillRect(0, 0, 24 * 8, 8);
      g.fillStyle = "#fff";
      for (let b = 0; b < 24; b++) if ((t >> b) & 1) g.fillRect(b * 8, 0, 8, 8);
    };
    draw(); setInterval(draw, 10);
    const ctx = new AudioContext({ sampleRate: 48000 });
    const osc = ctx.createOscillator(); osc.frequency.value = 1000;
    const gain = ctx.createGain(); gain.gain.value = 0;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(gain); gain.connect(dest); osc.start();
    window.beeps = [];
    const ts = ctx.getOutputTimestamp();
    const toWall = (t) => performance.timeOrigin + ts.performanceTime + (t - ts.contextTime) * 1000;
    for (let i = 0; i < 200; i++) {
      const at = ctx.currentTime + 0.5 + i * 0.4;
      gain.gain.setValueAtTime(0.8, at); gain.gain.setValueAtTime(0, at + 0.06);
      window.beeps.push(toWall(at));
    }
    return new MediaStream([...canvas.captureStream(30).getVideoTracks(), ...dest.stream.getAudioTracks()]);
  };
  let stream = null;
  navigator.mediaDevices.getUserMedia = async () => (stream = stream || make());
  window.stampedStream = () => stream;
})();
"""

DIRECT_OFFER = """async () => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  for (const t of window.stampedStream().getTracks()) pc.addTransceiver(t, { direction: "sendonly" });
  window.directPc = pc;
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === "complete") r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); setTimeout(r, 2000); });
  return pc.localDescription.sdp;
}"""


def read_stamp(frame: av.VideoFrame) -> int:
    img = frame.to_ndarray(format="rgb24")
    scale = img.shape[1] / 320
    block = max(1, round(BLOCK * scale))
    value = 0
    for bit in range(TIME_BITS):
        cell = img[
            block // 4 : block - block // 4,
            bit * block + block // 4 : (bit + 1) * block - block // 4,
        ]
        if float(cell.mean()) > 127:
            value |= 1 << bit
    return value


def video_delay_ms(frame: av.VideoFrame, arrived: float) -> float:
    now_ms = int(arrived * 1000)
    sent = read_stamp(frame)
    return float((now_ms - sent) % (1 << TIME_BITS))


class Arrivals:
    """Frame delays and beep onset arrival times seen by one receiver."""

    def __init__(self) -> None:
        self.video_ms: list[float] = []
        self.onsets: list[float] = []
        self._loud = False

    def video(self, frame: av.VideoFrame) -> None:
        delay = video_delay_ms(frame, time.time())
        if delay < 5000:
            self.video_ms.append(delay)

    def audio(self, pcm: PcmData) -> None:
        level = float(np.abs(pcm.to_float32().samples).max())
        if level > 0.2 and not self._loud:
            # the onset lies inside this 20 ms frame: find where
            samples = np.abs(pcm.to_float32().samples[0])
            first = int(np.argmax(samples > 0.2))
            self.onsets.append(time.time() - (len(samples) - first) / pcm.sample_rate)
        self._loud = level > 0.05


class TimingModel(FakeRealtime):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__(fps=30)
        self.arrivals = arrivals

    async def simple_audio_response(
        self, pcm: PcmData, participant: Participant | None = None
    ) -> None:
        self.arrivals.audio(pcm)

    async def _send_video_frame(self, frame: av.VideoFrame) -> None:
        await super()._send_video_frame(frame)
        self.arrivals.video(frame)


async def _read(track: aiortc.MediaStreamTrack, arrivals: Arrivals) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.VideoFrame):
            arrivals.video(frame)
        elif isinstance(frame, av.AudioFrame):
            arrivals.audio(PcmData.from_av_frame(frame))


def onset_delays(onsets: list[float], beeps_ms: list[float]) -> list[float]:
    out = []
    for t in onsets:
        sent = max((b for b in beeps_ms if b / 1000 <= t), default=None)
        if sent is not None and t - sent / 1000 < 0.3:
            out.append((t - sent / 1000) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Edges:
    """Makes an edge of one kind per case; for Janus, runs Janus and the page meanwhile."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.janus: Any = None
        self.page: Any = None

    async def __aenter__(self) -> Edges:
        if self.kind == "janus":
            from vision_agents.plugins.janus import JanusPage, JanusProcess

            self.janus = JanusProcess(interfaces=VETH)
            await self.janus.start()
            self.page = JanusPage()
            await self.page.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.page is not None:
            await self.page.stop()
        if self.janus is not None:
            await self.janus.close()

    def make(self) -> Any:
        if self.kind == "webrtc":
            return WebRTCEdge()
        from vision_agents.plugins.janus import JanusEdge

        return JanusEdge(
            self.janus.url,
            token_secret=self.janus.token_secret,
            admin_key=self.janus.admin_key,
            page_url=self.page.url,
        )

    def janus_cpu_s(self) -> float:
        if self.janus is None or self.janus.pid is None:
            return 0.0
        times = psutil.Process(self.janus.pid).cpu_times()
        return float(times.user + times.system)


VETH = "va-bench0"


def add_veth() -> None:
    """A veth pair inside the namespace, both ends here: an interface for Janus's media."""
    for command in (
        ["ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH + "p"],
        ["ip", "addr", "add", "10.254.1.1/24", "dev", VETH],
        ["ip", "link", "set", VETH, "up"],
        ["ip", "link", "set", VETH + "p", "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)


async def bench_join(pw: Any, media: tuple[Path, Path], runs: int, edges: Edges) -> list[float]:
    times = []
    browser = await launch(pw, *media)
    try:
        for i in range(runs):
            model = FakeRealtime(fps=30)
            edge = edges.make()
            agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
            call = await agent.create_call("default", f"join{i}")
            async with agent.join(call):
                page = await browser.new_page()
                start = time.monotonic()
                await page.goto(edge.join_url(call))
                await eventually(lambda m=model: bool(m.frames), 10, "the first frame")
                times.append((model.frames[0].received_at - start) * 1000)
                await page.close()
    finally:
        await browser.close()
    return times


async def bench_latency(pw: Any, seconds: float, edges: Edges) -> dict[str, list[float]]:
    agent_side, direct_side, edge_side = Arrivals(), Arrivals(), Arrivals()
    model = TimingModel(agent_side)
    edge = edges.make()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    call = await agent.create_call("default", "latency")
    browser = await launch(pw, None, None)
    direct = aiortc.RTCPeerConnection()
    readers: list[asyncio.Task[None]] = []
    try:
        async with agent.join(call):
            page = await browser.new_page()
            await page.add_init_script(STAMPED_MEDIA)
            await page.goto(edge.join_url(call))
            if edges.kind == "webrtc":
                await page.wait_for_function("() => window.vaCall && window.vaCall.seat !== null")
                await eventually(lambda: bool(edge.participants), 10, "the browser seated")
                # The embedded edge hands out a copy of a participant's track: what the
                # agent reads, before the model's fps throttle.
                copy = edge.subscribe(edge.participants[0], "video")
                assert copy is not None
                readers.append(asyncio.ensure_future(_read(copy, edge_side)))
            else:
                await page.wait_for_function("() => window.vaJanus && window.vaJanus.joined")
            direct.on(
                "track", lambda t: readers.append(asyncio.ensure_future(_read(t, direct_side)))
            )
            offer = await page.evaluate(DIRECT_OFFER)
            await direct.setRemoteDescription(aiortc.RTCSessionDescription(offer, "offer"))
            await direct.setLocalDescription(await direct.createAnswer())
            await page.evaluate(
                "(sdp) => directPc.setRemoteDescription({type: 'answer', sdp})",
                direct.localDescription.sdp,
            )
            await asyncio.sleep(2.0)  # warm up: both paths connected, jitter buffers settled
            for side in (agent_side, direct_side, edge_side):
                side.video_ms.clear()
                side.onsets.clear()
            await asyncio.sleep(seconds)
            beeps = await page.evaluate("window.beeps")
            await page.close()
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await direct.close()
        await browser.close()
    return {
        "video agent (model input at fps=30)": agent_side.video_ms,
        "video edge track (what the agent reads)": edge_side.video_ms,
        "video direct": direct_side.video_ms,
        "audio agent": onset_delays(agent_side.onsets, beeps),
        "audio direct": onset_delays(direct_side.onsets, beeps),
    }


async def bench_cpu(
    pw: Any, media: tuple[Path, Path], participants: int, seconds: float, edges: Edges
) -> tuple[float, float, float, int]:
    """With ``participants`` browsers: this process's CPU and Janus's (% of one core), the
    machine's idle share (% of all cores) and how many browsers the agent had in its call.

    The window is measured even when not every browser got in within 60 s (a saturated
    machine): the last figure says how many did."""
    model = FakeRealtime(fps=1)
    edge = edges.make()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    call = await agent.create_call("default", f"cpu{participants}")
    started = time.monotonic()
    browsers = [await launch(pw, *media) for _ in range(participants)]
    progress(f"{participants} browsers up after {time.monotonic() - started:.0f} s")
    try:
        async with agent.join(call):
            for b in browsers:
                # Only until the page starts loading: a saturated call server may take minutes
                # to serve it, and that state is what gets measured then.
                await (await b.new_page()).goto(edge.join_url(call), wait_until="commit")
            with contextlib.suppress(AssertionError):
                await eventually(lambda: len(edge.participants) == participants, 60, "all in")
            progress(
                f"{len(edge.participants)} in the call after {time.monotonic() - started:.0f} s"
            )
            await asyncio.sleep(3.0)
            cpu0, janus0, wall0 = time.process_time(), edges.janus_cpu_s(), time.monotonic()
            machine0 = psutil.cpu_times()
            await asyncio.sleep(seconds)
            wall = time.monotonic() - wall0
            machine1 = psutil.cpu_times()
            seated = len(edge.participants)
            total = sum(machine1) - sum(machine0)
            idle = (machine1.idle - machine0.idle) / total * 100 if total > 0 else float("nan")
            return (
                (time.process_time() - cpu0) / wall * 100,
                (edges.janus_cpu_s() - janus0) / wall * 100,
                idle,
                seated,
            )
    finally:
        for b in browsers:
            await b.close()


def progress(text: str) -> None:
    print(f"   ... {text}", file=sys.stderr, flush=True)


async def main(
    runs: int,
    seconds: float,
    kinds: list[str],
    participants: list[int],
    camera: tuple[int, int, int],
    case_timeout_s: float,
) -> None:
    ns = LoopbackOnlyNamespace()
    isolated = ns.enter()
    print(f"network: {'loopback-only namespace' if isolated else 'host namespace, 127.0.0.1 only'}")
    width, height, fps = camera
    try:
        if "janus" in kinds:
            if not isolated:
                raise SystemExit("--edges janus needs a network namespace (run as root)")
            add_veth()
        with tempfile.TemporaryDirectory() as tmp:
            small = (
                write_y4m(Path(tmp) / "cam.y4m", seconds=2, fps=15),
                write_speech_wav(Path(tmp) / "mic.wav", "Hello agent."),
            )
            cam = (
                write_y4m(Path(tmp) / "cpu.y4m", seconds=2, fps=fps, size=(width, height)),
                small[1],
            )
            async with async_playwright() as pw:
                print(
                    "\n| edge | join link opened -> agent's first frame | runs | p50 ms | max ms |"
                    "\n|---|---|---|---|---|"
                )
                for kind in kinds:
                    progress(f"join, {kind}")
                    async with Edges(kind) as edges:
                        join = await bench_join(pw, small, runs, edges)
                    print(
                        f"| {kind} | 320x240 15 fps camera | {len(join)} | "
                        f"{statistics.median(join):.0f} | {max(join):.0f} |"
                    )

                print("\n| edge | path | samples | p50 ms | p95 ms |\n|---|---|---|---|---|")
                added: list[str] = []
                for kind in kinds:
                    progress(f"latency, {kind}")
                    async with Edges(kind) as edges:
                        lat = await bench_latency(pw, seconds, edges)
                    for name, values in lat.items():
                        if values:
                            print(
                                f"| {kind} | {name} | {len(values)} | {pct(values, 50):.1f} "
                                f"| {pct(values, 95):.1f} |"
                            )
                    direct_video = pct(lat["video direct"], 50)
                    for name in (
                        "video agent (model input at fps=30)",
                        "video edge track (what the agent reads)",
                    ):
                        if lat[name]:
                            extra = pct(lat[name], 50) - direct_video
                            added.append(f"{kind}, {name}: adds {extra:.1f} ms (p50 vs direct)")
                    extra = pct(lat["audio agent"], 50) - pct(lat["audio direct"], 50)
                    added.append(f"{kind}, audio agent: adds {extra:.1f} ms (p50 vs direct)")
                print("\n".join(added))

                print(
                    f"\n| edge | browsers at {width}x{height} {fps} fps | agent process CPU % of "
                    "one core | per participant | Janus CPU % | Janus per participant "
                    "| machine idle % | in the call |\n|---|---|---|---|---|---|---|---|"
                )
                for n in participants:
                    for kind in kinds:
                        progress(f"cpu, {kind}, {n} browser(s)")
                        try:
                            async with Edges(kind) as edges:
                                cpu, janus_cpu, idle, seated = await asyncio.wait_for(
                                    bench_cpu(pw, cam, n, seconds, edges), case_timeout_s
                                )
                        except (TimeoutError, AssertionError) as exc:
                            why = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                            print(f"| {kind} | {n} | not measured: {why} | | | | | |")
                            continue
                        sfu = (
                            f"{janus_cpu:.0f} | {janus_cpu / n:.0f}" if kind == "janus" else "- | -"
                        )
                        print(
                            f"| {kind} | {n} | {cpu:.0f} | {cpu / n:.0f} | {sfu} | {idle:.0f} "
                            f"| {seated} of {n} |"
                        )
    finally:
        ns.exit()


def _camera(text: str) -> tuple[int, int, int]:
    try:
        size, fps = text.split("@")
        width, height = size.split("x")
        return int(width), int(height), int(fps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT@FPS, got {text!r}") from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="join measurements")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per latency/CPU window")
    parser.add_argument("--edges", default="webrtc", help="webrtc, janus or webrtc,janus")
    parser.add_argument("--participants", default="1,2", help="browser counts for the CPU table")
    parser.add_argument(
        "--camera", type=_camera, default=(640, 480, 30), help="the CPU table's browser camera"
    )
    parser.add_argument(
        "--case-timeout", type=float, default=180.0, help="seconds before a CPU case gives up"
    )
    args = parser.parse_args()
    kinds = args.edges.split(",")
    for kind in kinds:
        if kind not in ("webrtc", "janus"):
            parser.error(f"--edges: unknown edge {kind!r} (webrtc, janus)")
    counts = [int(n) for n in args.participants.split(",")]
    asyncio.run(main(args.runs, args.seconds, kinds, counts, args.camera, args.case_timeout))
