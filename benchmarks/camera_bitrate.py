"""Benchmark: what a browser sends its camera at under the call server's bandwidth estimate.

One headless Chromium (Debian's) joins a call on the embedded server (``WebRTCEdge``); its
camera is a panning photo at 640x480, 30 fps (about 1 Mbit/s of detail); the agent's model
(``FakeRealtime``) takes 5 fps, so the page is asked for 10 fps. Every second it prints what
the page sends (kbit/s from ``outbound-rtp`` bytes, width, frames a second, Chromium's
``qualityLimitationReason``) and the estimate the server sends it (REMB).

``--estimator aiortc`` leaves aiortc's own estimator on the connection, for comparison in the
same session. ``--edge janus`` runs the same on a Janus VideoRoom (Debian's ``janus``, our
page and ``JanusEdge``): there the browser's sending rate is its own congestion control's,
with Janus's feedback, and the estimate column is empty. Cases (``--case``): ``live``; ``off`` (the camera track disabled for ``--event``
s after the first frame's arrival, then enabled); ``stall`` (every packet on lo dropped for 2 s,
``tbf`` with no room: this kernel has no netem); ``slow`` (lo shaped to 300 kbit/s, 400 ms
queue, for 12 s). Needs root for its loopback-only namespace and ``tc``. Run from the
repository root: ``python -m benchmarks.camera_bitrate --case off [--estimator aiortc]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import async_playwright

import vision_agents.plugins.webrtc.room as room_module
from tests.browser.chromium import launch
from tests.browser.media import write_photo_y4m, write_speech_wav
from tests.browser.netns import LoopbackOnlyNamespace, add_inside_veth
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.core.edge.transport import EdgeTransport
from vision_agents.plugins.janus import JanusEdge, JanusPage, JanusProcess
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime

OUTBOUND = """async () => {
  const pc = (window.vaCall || window.vaJanus).pc;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  for (const r of (await sender.getStats()).values())
    if (r.type === "outbound-rtp")
      return [r.bytesSent, r.frameWidth || 0, r.framesSent || 0, r.qualityLimitationReason || ""];
  return [0, 0, 0, ""];
}"""
EVENTS = {  # case -> (seconds after the start: what to do)
    "live": {},
    "off": {0: "camera off", 10: "camera on"},
    "stall": {8: "drop every packet", 10: "restore the link"},
    "slow": {8: "300 kbit/s", 20: "restore the link"},
}
TC = {
    "drop every packet": "tc qdisc add dev lo root tbf rate 8bit burst 100 limit 1",
    "300 kbit/s": "tc qdisc add dev lo root tbf rate 300kbit burst 16kb latency 400ms",
    "restore the link": "tc qdisc del dev lo root",
}


def _tc(command: str, *, check: bool) -> None:
    """Shape the namespace's loopback (a few ms; the loop can wait that long)."""
    subprocess.run(command.split(), check=check, capture_output=True)


CAMERA = """(enabled) => {
  const pc = (window.vaCall || window.vaJanus).pc;
  pc.getSenders().find((s) => s.track && s.track.kind === "video").track.enabled = enabled;
}"""


@contextlib.asynccontextmanager
async def make_edge(kind: str) -> AsyncIterator[EdgeTransport]:
    if kind == "webrtc":
        yield WebRTCEdge()
        return
    add_inside_veth("va-bench0", "10.254.3.1/24")
    janus = JanusProcess(interfaces="va-bench0")
    await janus.start()
    page = JanusPage()
    await page.start()
    try:
        yield JanusEdge(
            janus.url, token_secret=janus.token_secret, admin_key=janus.admin_key, page_url=page.url
        )
    finally:
        await page.stop()
        await janus.close()


async def run(case: str, seconds: int, stock: bool, edge_kind: str = "webrtc") -> None:
    if stock:
        # The room installs ours on each connection it makes; this run makes it install none.
        setattr(room_module, "use_model_estimator", lambda pc, *args: [])  # noqa: B010
    with tempfile.TemporaryDirectory() as tmp:
        media = (
            write_photo_y4m(Path(tmp) / "photo.y4m", seconds=4),
            write_speech_wav(Path(tmp) / "mic.wav", "Hello."),
        )
        model = FakeRealtime(fps=5)
        model.frame_policy = None
        async with make_edge(edge_kind) as edge:
            agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
            call = await agent.create_call("default", "bitrate")
            await measure(agent, call, edge, model, media, case, seconds)


async def measure(
    agent: Agent,
    call: Any,
    edge: Any,
    model: FakeRealtime,
    media: tuple[Path, Path],
    case: str,
    seconds: int,
) -> None:
    async with async_playwright() as pw, agent.join(call):
        browser = await launch(pw, *media)
        shaped = False
        try:
            page = await browser.new_page()
            await page.goto(edge.join_url(call, name="Ann"))
            await eventually(lambda: bool(model.frames), 30, "the agent's first frame")
            await eventually(
                lambda: page.evaluate("!!(window.vaCall || window.vaJanus).pc"), 30, "the pc"
            )
            rooms = getattr(getattr(edge, "server", None), "rooms", {})
            room = next(iter(rooms.values()), None)
            print("| s | event | sent kbit/s | width | fps | limited by | estimate kbit/s |")
            print("|---|---|---|---|---|---|---|")
            before: list[Any] = await page.evaluate(OUTBOUND)
            at = time.monotonic()
            for second in range(seconds + 1):
                event = EVENTS[case].get(second, "")
                if event == "camera off" or event == "camera on":
                    await page.evaluate(CAMERA, event == "camera on")
                elif event:
                    _tc(TC[event], check=True)
                    shaped = event != "restore the link"
                await asyncio.sleep(1.0)
                now_stats: list[Any] = await page.evaluate(OUTBOUND)
                now = time.monotonic()
                took = now - at
                estimates = (
                    [e.estimate_bps for m in room.members for e in m.estimators]
                    if room is not None
                    else []
                )
                print(
                    f"| {second + 1} | {event} | "
                    f"{(now_stats[0] - before[0]) * 8 / 1000 / took:.0f} | {now_stats[1]} | "
                    f"{(now_stats[2] - before[2]) / took:.1f} | {now_stats[3] or '-'} | "
                    f"{max(estimates) // 1000 if estimates else '-'} |",
                    flush=True,
                )
                before, at = now_stats, now
        finally:
            if shaped:
                _tc(TC["restore the link"], check=False)
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(EVENTS), default="live")
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--estimator", choices=("ours", "aiortc"), default="ours")
    parser.add_argument("--edge", choices=("webrtc", "janus"), default="webrtc")
    args = parser.parse_args()
    ns = LoopbackOnlyNamespace()
    if not ns.enter():
        raise SystemExit("needs root: a loopback-only network namespace and tc")
    try:
        asyncio.run(run(args.case, args.seconds, args.estimator == "aiortc", args.edge))
    finally:
        ns.exit()


if __name__ == "__main__":
    main()
