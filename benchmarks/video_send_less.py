"""Benchmark: what the call server saves when a browser only the agent watches sends less video.

One run, one headless Chromium (Debian's) in a call on the embedded server (``WebRTCEdge``),
its camera a y4m file (``--camera``, default 640x480 at 30 fps). The agent's model
(``FakeRealtime``) takes 1 frame a second scaled to ``--side`` px (``max_image_side``). Two
phases, measured one after the other in the same process with the same browser:

- ``a person watches``: the browser sends as it does while another person sees it (full rate
  and size; set with ``edge.want_video(None, None)``, so no second browser's forwarding is
  counted); measured after ``--warmup`` s, once its bandwidth estimate has ramped up;
- ``only the agent, rate``: at most 5 fps at full size (``want_video(1, None)``: what a model
  that needs full size gets, and all there was before sizes were asked for);
- ``only the agent, rate and size``: what ``Agent.join`` asks for (``want_video(1, side)``):
  at most 5 fps, scaled down by the largest whole factor that keeps ``side`` px.

Each phase after the first is measured ``--settle`` s after its switch.

Per phase, over ``--seconds``: the receiver's decode CPU for that participant (seconds its
decoder thread spent in ``decode()``, by ``time.thread_time`` in a wrapped aiortc decoder, per
second: % of one core), frames decoded and their size, the bitrate received (encoded video
bytes handed to the decoder) and sent (the page's ``outbound-rtp`` bytes), this process's CPU
(server + agent; everything else equal between the phases), the browser's CPU and the
machine's idle share. Then the ratios. Runs in a loopback-only network namespace when it can
(root). Run from the repository root: ``python -m benchmarks.video_send_less``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiortc.codecs
import av
import psutil
from playwright.async_api import async_playwright

from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav, write_y4m
from tests.browser.netns import LoopbackOnlyNamespace
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime

OUTBOUND_VIDEO = """async () => {
  const sender = vaCall.pc.getSenders().find((s) => s.track && s.track.kind === "video");
  const stats = await sender.getStats();
  for (const r of stats.values()) if (r.type === "outbound-rtp") return r.bytesSent;
  return 0;
}"""

CAPTURED = """() => {
  const s = vaCall.local.getVideoTracks()[0].getSettings();
  return `${s.width}x${s.height}`;
}"""


@dataclass
class DecodeTotals:
    """What one video decoder did so far (updated from its thread)."""

    cpu_s: float = 0.0
    frames: int = 0
    bytes_in: int = 0
    sizes: Counter[tuple[int, int]] = field(default_factory=Counter)


class TimedDecoder:
    """An aiortc decoder whose ``decode()`` is timed with the calling thread's CPU clock."""

    def __init__(self, inner: Any, totals: DecodeTotals, lock: threading.Lock) -> None:
        self._inner, self._totals, self._lock = inner, totals, lock

    def decode(self, encoded: Any) -> list[Any]:
        started = time.thread_time()
        frames: list[Any] = self._inner.decode(encoded)
        spent = time.thread_time() - started
        with self._lock:
            self._totals.cpu_s += spent
            self._totals.bytes_in += len(encoded.data)
            for frame in frames:
                if isinstance(frame, av.VideoFrame):
                    self._totals.frames += 1
                    self._totals.sizes[(frame.width, frame.height)] += 1
        return frames


class DecoderTimer:
    """Wraps ``aiortc.codecs.get_decoder`` (what the receivers' decoder threads call) so every
    video decoder made from now on is a ``TimedDecoder``; one ``DecodeTotals`` each."""

    def __init__(self) -> None:
        self.video: list[DecodeTotals] = []
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> DecoderTimer:
        self._original = aiortc.codecs.get_decoder
        original = self._original

        def get_decoder(codec: Any) -> Any:
            decoder = original(codec)
            if not codec.mimeType.lower().startswith("video/"):
                return decoder
            totals = DecodeTotals()
            with self._lock:
                self.video.append(totals)
            return TimedDecoder(decoder, totals, self._lock)

        aiortc.codecs.get_decoder = get_decoder
        return self

    def __exit__(self, *exc: object) -> None:
        aiortc.codecs.get_decoder = self._original

    def snapshot(self) -> DecodeTotals:
        """The sum over every video decoder so far (one browser: its camera's)."""
        with self._lock:
            out = DecodeTotals()
            for t in self.video:
                out.cpu_s += t.cpu_s
                out.frames += t.frames
                out.bytes_in += t.bytes_in
                out.sizes.update(t.sizes)
            return out


@dataclass
class Phase:
    name: str
    decode_pct: float  # % of one core
    fps: float
    size: str
    received_kbps: float
    sent_kbps: float
    process_pct: float
    browser_pct: float
    idle_pct: float

    @property
    def decode_ms_per_frame(self) -> float:
        return self.decode_pct * 10 / self.fps if self.fps else float("nan")


def browser_cpu_s() -> float:
    """CPU seconds of the Chromium processes this process started (through playwright)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


async def measure(name: str, page: Any, timer: DecoderTimer, seconds: float) -> Phase:
    d0, sent0 = timer.snapshot(), await page.evaluate(OUTBOUND_VIDEO)
    cpu0, browser0, machine0 = time.process_time(), browser_cpu_s(), psutil.cpu_times()
    wall0 = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    d1, sent1 = timer.snapshot(), await page.evaluate(OUTBOUND_VIDEO)
    cpu1, browser1, machine1 = time.process_time(), browser_cpu_s(), psutil.cpu_times()
    sizes = d1.sizes - d0.sizes
    total = sum(machine1) - sum(machine0)
    return Phase(
        name=name,
        decode_pct=(d1.cpu_s - d0.cpu_s) / wall * 100,
        fps=(d1.frames - d0.frames) / wall,
        size=" ".join(f"{w}x{h}" for (w, h), _ in sizes.most_common(2)) or "-",
        received_kbps=(d1.bytes_in - d0.bytes_in) * 8 / 1000 / wall,
        sent_kbps=(sent1 - sent0) * 8 / 1000 / wall,
        process_pct=(cpu1 - cpu0) / wall * 100,
        browser_pct=(browser1 - browser0) / wall * 100,
        idle_pct=(machine1.idle - machine0.idle) / total * 100 if total > 0 else float("nan"),
    )


def progress(text: str) -> None:
    print(f"   ... {text}", file=sys.stderr, flush=True)


async def run(
    camera: tuple[int, int, int], side: int, seconds: float, warmup: float, settle: float
) -> tuple[list[Phase], str]:
    """The phases, and the size the page captures its camera at (what it reports to the
    server, which works out the scale from it; the page asks for 640x480)."""
    width, height, fps = camera
    with tempfile.TemporaryDirectory() as tmp, DecoderTimer() as timer:
        media = (
            write_y4m(Path(tmp) / "cam.y4m", seconds=2, fps=fps, size=(width, height)),
            write_speech_wav(Path(tmp) / "mic.wav", "Hello agent."),
        )
        model = FakeRealtime(fps=1, max_image_side=side)
        edge = WebRTCEdge()
        agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
        call = await agent.create_call("default", "send-less")
        async with async_playwright() as pw, agent.join(call):
            browser = await launch(pw, *media)
            try:
                await edge.want_video(None, None)  # as while a person watches
                page = await browser.new_page()
                await page.goto(edge.join_url(call, name="Ann"))
                await eventually(lambda: bool(model.frames), 30, "the agent's first frame")
                captured = await page.evaluate(CAPTURED)
                progress(f"in the call; {warmup:.0f} s for the bandwidth estimate to ramp up")
                await asyncio.sleep(warmup)
                phases = [await measure("a person watches", page, timer, seconds)]
                for name, max_side in (
                    ("only the agent, rate", None),
                    ("only the agent, rate and size", side),
                ):
                    await edge.want_video(model.fps, max_side)
                    progress(f"{name}; {settle:.0f} s to settle")
                    await asyncio.sleep(settle)
                    phases.append(await measure(name, page, timer, seconds))
                limit = await page.evaluate("[vaCall.videoLimit, vaCall.videoScale]")
                progress(
                    f"the page applied maxFramerate {limit[0]}, scaleResolutionDownBy {limit[1]}"
                )
            finally:
                await browser.close()
    return phases, captured


def report(phases: list[Phase], camera: tuple[int, int, int], captured: str, side: int) -> None:
    width, height, fps = camera
    print(
        f"\ncamera file {width}x{height} at {fps} fps, captured by the page at {captured}; "
        f"the model takes 1 fps at {side} px\n"
        "\n| browser sends as when | frames at the agent | fps | decode CPU % of one core "
        "| decode ms/frame | received kbit/s | sent kbit/s | agent process CPU % "
        "| browser CPU % | machine idle % |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for p in phases:
        print(
            f"| {p.name} | {p.size} | {p.fps:.1f} | {p.decode_pct:.1f} | "
            f"{p.decode_ms_per_frame:.2f} | {p.received_kbps:.0f} | {p.sent_kbps:.0f} | "
            f"{p.process_pct:.1f} | {p.browser_pct:.0f} | {p.idle_pct:.0f} |"
        )

    def ratio(a: float, b: float) -> str:
        return f"x{a / b:.2f}" if b else "n/a"

    print("\n| against | phase | decode CPU | received bitrate | agent process CPU | browser CPU |")
    print("|---|---|---|---|---|---|")
    for base, p in ((phases[0], phases[1]), (phases[0], phases[2]), (phases[1], phases[2])):
        print(
            f"| {base.name} | {p.name} | {ratio(p.decode_pct, base.decode_pct)} | "
            f"{ratio(p.received_kbps, base.received_kbps)} | "
            f"{ratio(p.process_pct, base.process_pct)} | {ratio(p.browser_pct, base.browser_pct)} |"
        )


async def main(args: argparse.Namespace) -> None:
    ns = LoopbackOnlyNamespace()
    isolated = ns.enter()
    print(f"network: {'loopback-only namespace' if isolated else 'host namespace, 127.0.0.1 only'}")
    try:
        phases, captured = await run(args.camera, args.side, args.seconds, args.warmup, args.settle)
    finally:
        ns.exit()
    report(phases, args.camera, captured, args.side)


def _camera(text: str) -> tuple[int, int, int]:
    try:
        size, fps = text.split("@")
        width, height = size.split("x")
        return int(width), int(height), int(fps)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT@FPS, got {text!r}") from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", type=_camera, default=(640, 480, 30), help="WIDTHxHEIGHT@FPS")
    parser.add_argument("--side", type=int, default=320, help="the model's max_image_side")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the first")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the switch")
    asyncio.run(main(parser.parse_args()))
