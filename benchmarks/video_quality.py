"""Benchmark: what the model sees of a browser's camera, beside Chromium sending to Chromium.

The camera is a clip drawn here (``benchmarks/video_quality_clip.py``: a photo, a moving ball,
text lines with capitals 22, 13, 10 and 8 px high, a printed page of 8 px text, and the frame
index as large blocks), 640x480 at 30 fps (``--size 1280x720``: the same layout scaled), played
looping by headless Chromium's fake camera. Each case runs twice, one side after the other in
the same process, each with a fresh browser, in a loopback-only network namespace:

- ``ours``: the call page of the embedded call server (``WebRTCEdge``) joined by an ``Agent``
  whose model is a ``FakeRealtime`` at ``--fps`` (5) with ``frame_policy = None`` (every frame
  the rate lets through reaches it) and ``max_image_side`` ``--side`` (1024). Every frame the
  model gets is kept (arrival time, size, luma); the server's decoder is counted
  (``video_send_less.DecoderTimer``: frames and encoded bytes).
- ``anchor``: two plain pages (served from 127.0.0.1) joined by a bare ``RTCPeerConnection``,
  signalled from Python. The sender asks ``getUserMedia`` for what the call page asks (read
  from its app.js at start and printed; ``audio: true, video: {width: {ideal: 640}, height:
  {ideal: 480}}`` when it was written, and where it cannot be read) and sends camera and
  microphone with no limits and no ``contentHint`` (as to a person). The receiver plays the video in a ``<video>``
  and ``--shots`` (5) times a second draws it to a canvas and keeps its luma
  (Y = 0.299 R + 0.587 G + 0.114 B: full range, as the model side's ``to_ndarray("gray")``).

Both senders' ``outbound-rtp`` (bytes, encoded size and rate, ``qualityLimitationReason``,
``targetBitrate``) and the pair's ``availableOutgoingBitrate`` (the bandwidth estimate) are
read every second, with the receiver's counters and the namespace's loopback bytes (all
traffic: both directions, signalling, and on our side the agent's audio to the page).

Cases (``--cases``): ``live``; ``off15`` (the video track disabled, ``enabled = false``, right
after ``getUserMedia`` / joining, enabled 15 s later); ``stall2`` (10 s after the first frame,
``tc netem loss 100%`` on lo for 2 s, or where the kernel has no netem a ``pfifo limit 0``,
which drops every packet too; TCP signalling survives); ``slow300`` (10 s after the
first frame, lo shaped by ``tc tbf`` to 300 kbit/s for 10 s: both directions share it, so our
side's link also carries the agent's audio to the page). Windows are counted from the first
frame (``live``) or from the end of the event, ``--seconds`` long in all.

Per window and side: the most common received size, frames decoded a second, fresh frames a
second that reached the model / the canvas (a new frame index), kbit/s sent and received,
mean PSNR and SSIM of the luma against the source frame named by its index (barcode rows left
out; a smaller frame is compared with the source resized to its size, and the table says so),
and OCR word accuracy (Debian's ``tesseract``) per text size on up to ``--ocr-frames`` frames
(resized back to the clip's size, the line cropped and upscaled). Needs root (namespace and
``tc``); without it only ``live`` and ``off15`` run. Run from the repository root:
``python -m benchmarks.video_quality [--cases live,off15,stall2,slow300] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import itertools
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiohttp import web
from playwright.async_api import Page, async_playwright
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks.video_quality_clip import Clip, ocr_item
from benchmarks.video_send_less import DecoderTimer
from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav
from tests.browser.netns import LoopbackOnlyNamespace
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime

CASES = ("live", "off15", "stall2", "slow300")
EVENT_AT_S = 10.0  # stall2 / slow300: seconds after the first frame
OFF_S, STALL_S, SLOW_S = 15.0, 2.0, 10.0
WINDOWS = ((0.0, 2.0), (2.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, 40.0))
TIMELINE_AFTER_S = 15.0
FALLBACK_CONSTRAINTS = {"audio": True, "video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
APP_JS = Path(__file__).parents[1] / "plugins/webrtc/vision_agents/plugins/webrtc/static/app.js"

STATS = """async (which) => {
  const pc = which === "call" ? window.vaCall.pc : window.pc;
  const out = {};
  if (!pc) return out;
  for (const r of (await pc.getStats()).values()) {
    if (r.type === "outbound-rtp" && r.kind === "video") {
      Object.assign(out, {tx_bytes: r.bytesSent, tx_frames: r.framesEncoded,
        tx_w: r.frameWidth, tx_h: r.frameHeight, tx_fps: r.framesPerSecond,
        limit: r.qualityLimitationReason, target: r.targetBitrate});
    } else if (r.type === "inbound-rtp" && r.kind === "video") {
      Object.assign(out, {rx_bytes: r.bytesReceived, rx_frames: r.framesDecoded,
        rx_w: r.frameWidth, rx_h: r.frameHeight});
    } else if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") {
      if (r.availableOutgoingBitrate !== undefined) out.avail = r.availableOutgoingBitrate;
    }
  }
  return out;
}"""

LOCAL = """([which, on]) => {
  const stream = which === "call" ? window.vaCall.local : window.local;
  if (!stream) return null;
  const track = stream.getVideoTracks()[0];
  if (on !== null) track.enabled = on;
  const s = track.getSettings();
  return `${s.width}x${s.height}`;
}"""

ANCHOR_HTML = """<!doctype html>
<meta charset="utf-8"><title>anchor</title>
<video id="v" autoplay playsinline muted></video>
<script>
"use strict";
function iceDone(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 5000);
  });
}
window.shots = [];
window.firstShot = null;
window.anchor = {
  async send(constraints, off) {
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    window.local = stream;
    if (off) stream.getVideoTracks()[0].enabled = false;
    const pc = new RTCPeerConnection({ iceServers: [] });
    window.pc = pc;
    for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: "sendonly", streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await iceDone(pc);
    return pc.localDescription.sdp;
  },
  async accept(sdp) {
    await window.pc.setRemoteDescription({ type: "answer", sdp });
  },
  async receive(sdp, rate) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    window.pc = pc;
    const v = document.getElementById("v");
    pc.addEventListener("track", (e) => {
      if (e.track.kind !== "video") return;
      v.srcObject = new MediaStream([e.track]);
      v.play().catch(() => {});
    });
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceDone(pc);
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    setInterval(() => {
      if (v.readyState < 2 || !v.videoWidth) return;
      const w = v.videoWidth, h = v.videoHeight;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(v, 0, 0, w, h);
      const px = ctx.getImageData(0, 0, w, h).data;
      const y = new Uint8Array(w * h);
      for (let i = 0, j = 0; j < y.length; i += 4, j++) {
        y[j] = (77 * px[i] + 150 * px[i + 1] + 29 * px[i + 2] + 128) >> 8;
      }
      let s = "";
      for (let k = 0; k < y.length; k += 32768) s += String.fromCharCode.apply(null, y.subarray(k, k + 32768));
      const t = performance.now();
      if (window.firstShot === null) window.firstShot = t;
      window.shots.push({ t, w, h, y: btoa(s) });
    }, 1000 / rate);
    return pc.localDescription.sdp;
  },
  take() { const s = window.shots; window.shots = []; return s; },
};
</script>
"""


@dataclass
class Seen:
    """A frame the model (or the anchor's canvas) got."""

    t: float  # time.monotonic()
    width: int
    height: int
    luma: np.ndarray | None  # dropped once scored


@dataclass
class Scored:
    t: float
    width: int
    height: int
    index: int | None = None
    psnr: float | None = None
    ssim: float | None = None
    resized: bool = False


@dataclass
class SideRun:
    """What one side of one case recorded."""

    side: str
    seen: list[Seen] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    captured: str = "?"
    notes: list[str] = field(default_factory=list)


class SeeingRealtime(FakeRealtime):
    """A ``FakeRealtime`` that keeps each frame's luma and arrival time."""

    def __init__(self, fps: float, max_image_side: int) -> None:
        super().__init__(fps=fps, max_image_side=max_image_side, keep_frames=1)
        self.frame_policy = None
        self.seen: list[Seen] = []

    async def _send_video_frame(self, frame: av.VideoFrame) -> None:
        gray = np.asarray(frame.to_ndarray(format="gray"))
        self.seen.append(Seen(time.monotonic(), frame.width, frame.height, gray))
        await super()._send_video_frame(frame)


def loopback_bytes() -> int:
    """Bytes through lo so far in this thread's network namespace."""
    with open("/proc/thread-self/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def progress(text: str) -> None:
    print(f"   ... {text}", file=sys.stderr, flush=True)


def tc(*args: str, check: bool = True) -> None:
    subprocess.run(["tc", "qdisc", *args], check=check, capture_output=True)


def drop_everything() -> str:
    """Drop every packet on lo: ``netem loss 100%`` or, in a kernel without netem, a
    ``pfifo`` that holds nothing (``limit 0``: no bypass, every packet dropped); which one."""
    for qdisc in (["netem", "loss", "100%"], ["pfifo", "limit", "0"]):
        try:
            tc("add", "dev", "lo", "root", *qdisc)
            return " ".join(["tc qdisc", *qdisc])
        except subprocess.CalledProcessError:
            continue
    raise RuntimeError("neither netem nor pfifo qdiscs are available to drop packets on lo")


class Side:
    """One sender -> receiver pair under a case's script."""

    name = ""

    def __init__(self) -> None:
        self.run = SideRun(self.name)

    async def first_frame(self) -> float:
        """Wait for the receiver's first frame; its arrival time."""
        raise NotImplementedError

    async def camera(self, on: bool | None) -> str | None:
        """Enable / disable the sender's video track (None: leave it); its capture size."""
        raise NotImplementedError

    async def sample(self) -> None:
        """Append a stats sample (and any frames waiting to be collected)."""
        raise NotImplementedError


class Ours(Side):
    name = "ours"

    def __init__(self, page: Page, model: SeeingRealtime, timer: DecoderTimer) -> None:
        super().__init__()
        self.page, self.model, self.timer = page, model, timer
        self.run.seen = model.seen

    async def first_frame(self) -> float:
        await eventually(lambda: bool(self.model.seen), 30, "the model's first frame")
        return self.model.seen[0].t

    async def camera(self, on: bool | None) -> str | None:
        result: str | None = await self.page.evaluate(LOCAL, ["call", on])
        return result

    async def sample(self) -> None:
        stats: dict[str, Any] = await self.page.evaluate(STATS, "call")
        decoded = self.timer.snapshot()
        stats.update(rx_bytes=decoded.bytes_in, rx_frames=decoded.frames)
        stats.update(t=time.monotonic(), lo_bytes=loopback_bytes())
        self.run.stats.append(stats)


class Anchor(Side):
    name = "anchor"

    def __init__(self, sender: Page, receiver: Page) -> None:
        super().__init__()
        self.sender, self.receiver = sender, receiver
        self.offset = 0.0  # time.monotonic() - the receiver's performance.now() / 1000

    async def clock(self) -> None:
        best = float("inf")
        for _ in range(5):
            before = time.monotonic()
            page_ms: float = await self.receiver.evaluate("performance.now()")
            after = time.monotonic()
            if after - before < best:
                best, self.offset = after - before, (before + after) / 2 - page_ms / 1000

    async def first_frame(self) -> float:
        async def shot() -> bool:
            return bool(await self.receiver.evaluate("window.firstShot !== null"))

        await eventually(shot, 30, "the anchor's first frame")
        first: float = await self.receiver.evaluate("window.firstShot")
        return first / 1000 + self.offset

    async def camera(self, on: bool | None) -> str | None:
        result: str | None = await self.sender.evaluate(LOCAL, ["anchor", on])
        return result

    async def sample(self) -> None:
        sent: dict[str, Any] = await self.sender.evaluate(STATS, "anchor")
        got: dict[str, Any] = await self.receiver.evaluate(STATS, "anchor")
        shots: list[dict[str, Any]] = await self.receiver.evaluate("anchor.take()")
        stats = {k: v for k, v in sent.items() if not k.startswith("rx_")}
        stats.update({k: v for k, v in got.items() if k.startswith("rx_")})
        stats.update(t=time.monotonic(), lo_bytes=loopback_bytes())
        self.run.stats.append(stats)
        for s in shots:
            w, h = int(s["w"]), int(s["h"])
            luma = np.frombuffer(base64.b64decode(s["y"]), np.uint8).reshape(h, w)
            self.run.seen.append(Seen(s["t"] / 1000 + self.offset, w, h, luma))


async def sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


async def sample_every(side: Side, period: float) -> None:
    while True:
        started = time.monotonic()
        await side.sample()
        await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


async def drive(case: str, side: Side, seconds: float, off_at: float | None) -> None:
    """The case's script; marks: first (frame), event (start), t0 (windows count from it)."""
    marks = side.run.marks
    sampler = asyncio.create_task(sample_every(side, 1.0))
    try:
        if case == "off15":
            assert off_at is not None
            marks["event"] = off_at
            await sleep_until(off_at + OFF_S)
            await side.camera(True)
            marks["t0"] = time.monotonic()
            marks["first"] = await side.first_frame()
        else:
            marks["first"] = marks["t0"] = await side.first_frame()
        if case in ("stall2", "slow300"):
            await sleep_until(marks["first"] + EVENT_AT_S)
            marks["event"] = time.monotonic()
            try:
                if case == "stall2":
                    side.run.notes.append(f"the stall: {drop_everything()}")
                    await asyncio.sleep(STALL_S)
                else:
                    tc(
                        "add",
                        "dev",
                        "lo",
                        "root",
                        "tbf",
                        "rate",
                        "300kbit",
                        "burst",
                        "16kb",
                        "latency",
                        "400ms",
                    )
                    await asyncio.sleep(SLOW_S)
            finally:
                tc("del", "dev", "lo", "root", check=False)
                marks["t0"] = time.monotonic()
        await sleep_until(marks["t0"] + seconds)
    finally:
        sampler.cancel()
        try:
            await sampler
        except asyncio.CancelledError:
            pass
    await side.sample()


async def run_ours(pw: Any, case: str, media: tuple[Path, Path], args: Any) -> SideRun:
    model = SeeingRealtime(args.fps, args.side)
    edge = WebRTCEdge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    call = await agent.create_call("default", f"quality-{case}")
    with DecoderTimer() as timer:
        async with agent.join(call):
            browser = await launch(pw, *media)
            try:
                page = await browser.new_page()
                side = Ours(page, model, timer)
                await page.goto(edge.join_url(call, name="Ann"))
                off_at = None
                if case == "off15":

                    async def local() -> bool:
                        return bool(await page.evaluate("!!(window.vaCall && vaCall.local)"))

                    await eventually(local, 30, "the page's camera")
                    await side.camera(False)
                    off_at = time.monotonic()
                await drive(case, side, args.seconds, off_at)
                side.run.captured = await side.camera(None) or "?"
                limit = await page.evaluate(
                    "[vaCall.videoLimit, vaCall.videoScale, vaCall.keepSize]"
                )
                side.run.notes.append(
                    f"the page applied maxFramerate {limit[0]}, scaleResolutionDownBy {limit[1]}, "
                    f"keepSize {limit[2]}"
                )
            finally:
                await browser.close()
    return side.run


async def run_anchor(pw: Any, case: str, media: tuple[Path, Path], url: str, args: Any) -> SideRun:
    browser = await launch(pw, *media)
    try:
        sender, receiver = await browser.new_page(), await browser.new_page()
        await sender.goto(url)
        await receiver.goto(url)
        side = Anchor(sender, receiver)
        off = case == "off15"
        offer = await sender.evaluate("([c, off]) => anchor.send(c, off)", [args.constraints, off])
        off_at = time.monotonic() if off else None
        answer = await receiver.evaluate("([o, r]) => anchor.receive(o, r)", [offer, args.shots])
        await sender.evaluate("(a) => anchor.accept(a)", answer)
        await side.clock()
        await drive(case, side, args.seconds, off_at)
        side.run.captured = await side.camera(None) or "?"
    finally:
        await browser.close()
    return side.run


# -- scoring ---------------------------------------------------------------------------------


def score_frames(run: SideRun, clip: Clip) -> list[Scored]:
    """Index, PSNR and SSIM of each frame (the barcode band left out)."""
    out = []
    for s in run.seen:
        scored = Scored(s.t, s.width, s.height)
        out.append(scored)
        if s.luma is None:
            continue
        scored.index = clip.read_index(s.luma)
        if scored.index is None:
            continue
        view = clip.view_for(s.width, s.height)
        src = clip.source(scored.index, s.width, s.height)
        scored.resized = (s.width, s.height) != (clip.width, clip.height)
        rows = round((clip.barcode_top - view.y0) * s.height / view.height)
        a, b = src[:rows], s.luma[:rows]
        scored.psnr = float(peak_signal_noise_ratio(a, b, data_range=255))
        scored.ssim = float(structural_similarity(a, b, data_range=255))
    return out


@dataclass
class Window:
    label: str
    start: float
    end: float


def windows_for(case: str, marks: dict[str, float], seconds: float) -> list[Window]:
    out = []
    if case in ("stall2", "slow300"):
        out.append(Window(f"before (0-{EVENT_AT_S:.0f} s)", marks["first"], marks["event"]))
    if case != "live":
        during = {"off15": "camera off", "stall2": "100% loss", "slow300": "300 kbit/s"}[case]
        out.append(
            Window(f"{during} ({marks['t0'] - marks['event']:.0f} s)", marks["event"], marks["t0"])
        )
    sign = "" if case == "live" else "+"
    spans = [w for w in WINDOWS if w[0] < seconds]
    if seconds > WINDOWS[-1][1]:
        spans.append((WINDOWS[-1][1], seconds))
    for a, b in spans:
        b = min(b, seconds)
        out.append(Window(f"{sign}{a:.0f}-{b:.0f} s", marks["t0"] + a, marks["t0"] + b))
    return out


def counter_at(stats: list[dict[str, Any]], key: str, t: float) -> float | None:
    """A cumulative counter at time ``t``, linearly between the samples around it."""
    points = [(s["t"], float(s[key])) for s in stats if s.get(key) is not None]
    if not points or t < points[0][0] - 1.5 or t > points[-1][0] + 1.5:
        return None
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return points[0][1] if t < points[0][0] else points[-1][1]


def rate(
    stats: list[dict[str, Any]], key: str, a: float, b: float, scale: float = 1.0
) -> float | None:
    va, vb = counter_at(stats, key, a), counter_at(stats, key, b)
    return None if va is None or vb is None or b <= a else (vb - va) * scale / (b - a)


def last_value(stats: list[dict[str, Any]], key: str, b: float) -> Any:
    """A gauge's newest value at ``b`` (from the last 2 s; samples drift off the second)."""
    values = [s[key] for s in stats if b - 2 <= s["t"] <= b and s.get(key) is not None]
    return values[-1] if values else None


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def window_metrics(
    run: SideRun,
    scored: list[Scored],
    win: Window,
    clip: Clip,
    pool: ThreadPoolExecutor,
    ocr_frames: int,
) -> dict[str, Any]:
    inside = [(k, s) for k, s in enumerate(scored) if win.start <= s.t < win.end]
    span = win.end - win.start
    sizes = Counter(f"{s.width}x{s.height}" for _, s in inside)
    fresh, previous = 0, None
    for s in scored:
        if s.index is not None and s.index != previous and win.start <= s.t < win.end:
            fresh += 1
        previous = s.index if s.index is not None else previous
    matched = [(k, s) for k, s in inside if s.index is not None]
    n = min(ocr_frames, len(matched))
    picks = sorted({matched[round(j * (len(matched) - 1) / max(1, n - 1))][0] for j in range(n)})
    jobs = {
        (item.name, k): pool.submit(ocr_item, clip, luma, item)
        for item in clip.items
        for k in picks
        if (luma := run.seen[k].luma) is not None
    }
    ocr: dict[str, float | None] = {}
    for item in clip.items:
        found = [f.result() for (name, _), f in jobs.items() if name == item.name]
        ocr[item.name] = mean([a * 100 for a in found if a is not None])
    return {
        "label": win.label,
        "start_s": win.start - run.marks["t0"],
        "end_s": win.end - run.marks["t0"],
        "size": sizes.most_common(1)[0][0] if sizes else None,
        "sizes": dict(sizes),
        "frames": len(inside),
        "matched": len(matched),
        "resized": sum(s.resized for _, s in matched),
        "seen_fps": len(inside) / span,
        "fresh_fps": fresh / span,
        "decoded_fps": rate(run.stats, "rx_frames", win.start, win.end),
        "sent_kbps": rate(run.stats, "tx_bytes", win.start, win.end, 8 / 1000),
        "received_kbps": rate(run.stats, "rx_bytes", win.start, win.end, 8 / 1000),
        "loopback_kbps": rate(run.stats, "lo_bytes", win.start, win.end, 8 / 1000),
        "psnr": mean([s.psnr for _, s in matched if s.psnr is not None]),
        "ssim": mean([s.ssim for _, s in matched if s.ssim is not None]),
        "ocr": ocr,
        "ocr_frames": len(picks),
    }


def per_second(run: SideRun, start: float, end: float, origin: float) -> list[dict[str, Any]]:
    out = []
    t = start
    while t + 1 <= end + 1e-6:
        s = run.stats
        out.append(
            {
                "s": round(t - origin),
                "sent_kbps": rate(s, "tx_bytes", t, t + 1, 8 / 1000),
                "received_kbps": rate(s, "rx_bytes", t, t + 1, 8 / 1000),
                "loopback_kbps": rate(s, "lo_bytes", t, t + 1, 8 / 1000),
                "estimate_kbps": _kbps(last_value(s, "avail", t + 1)),
                "target_kbps": _kbps(last_value(s, "target", t + 1)),
                "sent_width": last_value(s, "tx_w", t + 1),
                "sent_fps": last_value(s, "tx_fps", t + 1),
                "limit": last_value(s, "limit", t + 1),
            }
        )
        t += 1
    return out


def _kbps(bps: Any) -> float | None:
    return None if bps is None else float(bps) / 1000


def analyse(
    case: str,
    run: SideRun,
    clip: Clip,
    seconds: float,
    pool: ThreadPoolExecutor,
    ocr_frames: int,
) -> dict[str, Any]:
    progress(f"{case}, {run.side}: scoring {len(run.seen)} frames")
    scored = score_frames(run, clip)
    marks = run.marks
    wins = [
        window_metrics(run, scored, w, clip, pool, ocr_frames)
        for w in windows_for(case, marks, seconds)
    ]
    origin = marks.get("event", marks["t0"])
    start = origin - 3 if "event" in marks else marks["t0"]
    seconds_rows = per_second(run, start, marks["t0"] + min(seconds, TIMELINE_AFTER_S), origin)
    for s in run.seen:
        s.luma = None
    return {
        "captured": run.captured,
        "notes": run.notes,
        "marks": {k: v - marks["t0"] for k, v in marks.items()},
        "windows": wins,
        "per_second": seconds_rows,
        "frames": [vars(s) | {"t": s.t - marks["t0"]} for s in scored],
        "stats": [s | {"t": s["t"] - marks["t0"]} for s in run.stats],
    }


# -- report ----------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pair(ours: Any, anchor: Any, digits: int = 0) -> str:
    return f"{_fmt(ours, digits)} / {_fmt(anchor, digits)}"


def print_case(case: str, result: dict[str, Any], clip: Clip) -> None:
    ours, anchor = result["ours"], result["anchor"]
    origin = "the first frame" if case == "live" else "the end of the event"
    print(
        f"\n### {case}: ours / anchor (windows from {origin}; camera captured at "
        f"{ours['captured']} / {anchor['captured']})\n"
    )
    for side in ("ours", "anchor"):
        if "x" not in result[side]["captured"]:
            continue
        w, h = (int(v) for v in result[side]["captured"].split("x"))
        view = clip.view_for(w, h)
        if view != clip.full:
            share = view.width * view.height / (clip.width * clip.height)
            words = sum(len(i.visible(view)) for i in clip.items)
            total = sum(len(i.words) for i in clip.items)
            print(
                f"{side}: the browser cut the {clip.width}x{clip.height} camera to its middle "
                f"{view.width}x{view.height} ({share:.0%} of the picture, {words} of {total} "
                "words); frames are scored against that part.\n"
            )
    names = [item.name for item in clip.items]
    head = ["window", "size", "dec fps", "fresh fps", "sent kbps", "recv kbps", "PSNR dB", "SSIM"]
    head += [f"OCR {n} %" for n in names]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    resized = [0, 0]
    for wo, wa in zip(ours["windows"], anchor["windows"], strict=True):
        resized[0] += wo["resized"]
        resized[1] += wa["resized"]
        cells = [
            wo["label"],
            pair(wo["size"], wa["size"]),
            pair(wo["decoded_fps"], wa["decoded_fps"], 1),
            pair(wo["fresh_fps"], wa["fresh_fps"], 1),
            pair(wo["sent_kbps"], wa["sent_kbps"]),
            pair(wo["received_kbps"], wa["received_kbps"]),
            pair(wo["psnr"], wa["psnr"], 1),
            pair(wo["ssim"], wa["ssim"], 3),
        ]
        cells += [pair(wo["ocr"][n], wa["ocr"][n]) for n in names]
        print("| " + " | ".join(cells) + " |")
    if any(resized):
        print(
            f"\nPSNR / SSIM of frames of another size than the clip are against the source "
            f"resized to their size, and cut to their aspect where it differs (ours "
            f"{resized[0]} frames, anchor {resized[1]})."
        )
    for side in ("ours", "anchor"):
        for note in result[side]["notes"]:
            print(f"\n{side}: {note}.")
    event = "" if case == "live" else " (0 = the event's start)"
    print(
        f"\nper second{event}; estimate: availableOutgoingBitrate; limit: "
        "qualityLimitationReason (b bandwidth, c cpu, o other); lo: all loopback traffic:\n"
    )
    rows_o, rows_a = ours["per_second"], anchor["per_second"]
    n = min(len(rows_o), len(rows_a))
    lines = [("s", "s", rows_o)]
    lines += [
        ("ours sent kbps", "sent_kbps", rows_o),
        ("ours recv kbps", "received_kbps", rows_o),
        ("ours estimate", "estimate_kbps", rows_o),
        ("ours sent width", "sent_width", rows_o),
        ("ours limit", "limit", rows_o),
        ("ours lo kbps", "loopback_kbps", rows_o),
        ("anchor sent kbps", "sent_kbps", rows_a),
        ("anchor recv kbps", "received_kbps", rows_a),
        ("anchor estimate", "estimate_kbps", rows_a),
        ("anchor sent width", "sent_width", rows_a),
        ("anchor limit", "limit", rows_a),
        ("anchor lo kbps", "loopback_kbps", rows_a),
    ]
    for label, key, rows in lines:
        values = [rows[k][key] for k in range(n)]
        if key == "limit":
            cells = ["-" if v in (None, "none") else str(v)[0] for v in values]
        else:
            cells = [_fmt(float(v) if isinstance(v, int | float) else v) for v in values]
        print(f"    {label:<18}" + " ".join(f"{c:>5}" for c in cells))


def machine_facts() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": model,
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# -- main ------------------------------------------------------------------------------------


async def page_server() -> tuple[web.AppRunner, str]:
    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=ANCHOR_HTML, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, f"http://127.0.0.1:{sock.getsockname()[1]}/"


def _object_at(text: str, start: int) -> str:
    """The brace-balanced ``{...}`` that begins at ``text[start]``."""
    depth = 0
    for k in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        if depth == 0:
            return text[start : k + 1]
    raise ValueError("unbalanced braces")


def page_constraints() -> tuple[dict[str, Any], str]:
    """What the call page passes to ``getUserMedia`` (read from app.js, whose literal is
    plain keys, numbers and booleans), and a line saying so; the 640x480 it asked for
    before where it cannot be read."""
    try:
        text = APP_JS.read_text()
        at = text.index("getUserMedia(")
        literal = _object_at(text, text.index("{", at))
        literal = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', literal)
        constraints: dict[str, Any] = json.loads(re.sub(r",\s*}", "}", literal))
        line = f"getUserMedia({json.dumps(constraints)}), read from app.js"
        hint = re.search(r"contentHint\s*=\s*[\"'](\w*)[\"']", text)
        if hint:
            line += f' (the call page sets contentHint "{hint.group(1)}"; the anchor none)'
        return constraints, line
    except (OSError, ValueError) as exc:
        return FALLBACK_CONSTRAINTS, (
            f"warning: could not read the call page's getUserMedia constraints ({exc}); "
            f"the anchor asks for {json.dumps(FALLBACK_CONSTRAINTS)}"
        )


async def run(args: argparse.Namespace, clip: Clip, facts: dict[str, Any]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        media = (
            clip.write_y4m(Path(tmp) / "cam.y4m"),
            write_speech_wav(Path(tmp) / "mic.wav", "Hello agent, can you read this page?"),
        )
        runner, url = await page_server()
        try:
            async with async_playwright() as pw:
                browser = await launch(pw, None, None)
                facts["chromium"] = browser.version
                await browser.close()
                for case in args.cases:
                    results[case] = {}
                    for side in ("ours", "anchor"):
                        progress(f"{case}, {side}")
                        if side == "ours":
                            recorded = await run_ours(pw, case, media, args)
                        else:
                            recorded = await run_anchor(pw, case, media, url, args)
                        results[case][side] = await asyncio.to_thread(
                            analyse, case, recorded, clip, args.seconds, pool, args.ocr_frames
                        )
        finally:
            await runner.cleanup()
    return results


def source_ocr(clip: Clip) -> dict[str, float | None]:
    gray = clip.luma(0)
    found = {item.name: ocr_item(clip, gray, item) for item in clip.items}
    return {name: None if a is None else a * 100 for name, a in found.items()}


async def main(args: argparse.Namespace) -> None:
    facts = machine_facts()
    clip = Clip(args.size[0], args.size[1], fps=30, seconds=args.clip_seconds)
    print(
        f"date {facts['date']}; {facts['cores']} cores ({facts['cpu']}); load {facts['load_avg']}"
    )
    ns = LoopbackOnlyNamespace()
    isolated = ns.enter()
    print(f"network: {'loopback-only namespace' if isolated else 'host namespace, 127.0.0.1 only'}")
    if not isolated:
        dropped = [c for c in args.cases if c in ("stall2", "slow300")]
        if dropped:
            print(f"skipping {', '.join(dropped)}: shaping lo needs the namespace (root)")
        args.cases = [c for c in args.cases if c not in dropped]
    args.constraints, line = page_constraints()
    print(f"both senders: {line}")
    try:
        results = await run(args, clip, facts)
    finally:
        if isolated:
            tc("del", "dev", "lo", "root", check=False)
        ns.exit()
    ocr_source = source_ocr(clip)
    print(
        f"\nchromium {facts.get('chromium')}; clip {clip.width}x{clip.height} at {clip.fps} fps "
        f"({clip.frames} frames, looping); text capitals "
        + ", ".join(f"{i.name} = {i.cap_px:.0f} px" for i in clip.items)
        + f"; model at {args.fps:g} fps, max_image_side {args.side}; anchor canvas "
        f"{args.shots:g} shots/s; windows {', '.join(f'{a:.0f}-{b:.0f}' for a, b in WINDOWS)} s, "
        f"{args.seconds:g} s per case"
    )
    print(
        "OCR of the source frame itself: "
        + ", ".join(f"{k} {_fmt(v)} %" for k, v in ocr_source.items())
    )
    for case, result in results.items():
        print_case(case, result, clip)
    if args.json:
        out = {
            "machine": facts,
            "args": {k: v for k, v in vars(args).items() if k != "json"},
            "clip": {
                "width": clip.width,
                "height": clip.height,
                "fps": clip.fps,
                "frames": clip.frames,
                "text": [
                    {
                        "name": i.name,
                        "cap_px": i.cap_px,
                        "words": [w for w, _ in i.words],
                        "word_boxes": [[b.x0, b.y0, b.x1, b.y1] for _, b in i.words],
                    }
                    for i in clip.items
                ],
                "ocr_source": ocr_source,
            },
            "cases": results,
        }
        write_json(args.json, out)
        print(f"\nwrote {args.json}")


def write_json(path: str, data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data, indent=1, default=float))


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None


def _cases(text: str) -> list[str]:
    cases = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    return cases


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=_cases, default=list(CASES), help=",".join(CASES))
    parser.add_argument("--seconds", type=float, default=40.0, help="seconds per case after t0")
    parser.add_argument("--size", type=_size, default=(640, 480), help="clip WIDTHxHEIGHT")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="the clip's loop")
    parser.add_argument("--fps", type=float, default=5.0, help="the model's fps")
    parser.add_argument("--side", type=int, default=1024, help="the model's max_image_side")
    parser.add_argument("--shots", type=float, default=5.0, help="anchor canvas reads a second")
    parser.add_argument("--ocr-frames", type=int, default=3, help="OCR'd frames per window")
    parser.add_argument("--json", help="write every number here")
    asyncio.run(main(parser.parse_args()))
