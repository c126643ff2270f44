"""End to end: what the call server receives of a browser's camera reaches the app (an event)
and the browser's own page (``vaCall.stats`` and its Stats panel).

Debian's Chromium (headless) joins the embedded call server with a y4m camera made here, in a
network namespace that has only loopback (``tests/browser/netns.py``), as in
``tests/test_webrtc_browser.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright

from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav, write_y4m
from tests.browser.netns import loopback_only_module
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.core.edge.events import VideoReceiveStatsEvent
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime


@pytest.fixture(scope="module", autouse=True)
def loopback_only() -> Iterator[bool]:
    yield from loopback_only_module()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("stats-media")
    video = write_y4m(folder / "camera.y4m", seconds=2, fps=15, size=(320, 240))
    audio = write_speech_wav(folder / "mic.wav", "Hello.")
    return video, audio


@pytest.mark.timeout(60)
async def test_the_server_s_view_of_a_browser_camera_reaches_the_app_and_the_page(
    media: tuple[Path, Path],
) -> None:
    edge = WebRTCEdge(stats_interval_s=1.0)
    model = FakeRealtime(fps=5)
    model.frame_policy = None  # every frame the fps lets through goes to the model
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    events: list[VideoReceiveStatsEvent] = []

    @edge.events.subscribe
    async def on_stats(event: VideoReceiveStatsEvent) -> None:
        events.append(event)

    def plausible(figures: Any) -> bool:
        return bool(
            figures
            and figures["width"] == 320
            and figures["height"] == 240
            and 3 <= figures["fps"] <= 20
            and (figures["kbps"] or 0) > 0
            and (figures["model_frames"] or 0) >= 1
        )

    call = await agent.create_call("default", "stats")
    async with agent.join(call), async_playwright() as pw:
        browser = await launch(pw, *media)
        try:
            page = await browser.new_page()
            await page.goto(edge.join_url(call, name="Ann"))
            await eventually(
                lambda: any(plausible(vars(e)) for e in events),
                30,
                "a VideoReceiveStatsEvent with Ann's 320x240 camera at a few fps",
            )
            event = next(e for e in events if plausible(vars(e)))
            assert event.participant.name == "Ann"
            assert event.estimate_bps is not None and event.estimate_bps > 0, event
            assert event.freezes >= 0 and not event.muted

            async def page_shows_it() -> bool:
                return plausible(await page.evaluate("vaCall.stats"))

            await eventually(page_shows_it, 10, "vaCall.stats with the same figures")
            stats = await page.evaluate("vaCall.stats")
            print(f"server received: {vars(event)}\npage shows: {stats}")
            assert stats["estimate_bps"] > 0 and stats["at"] > 0, stats
            await eventually(
                lambda: _sending(page), 10, "the browser's own outbound figures in vaCall"
            )
            await page.click("#stats-panel summary")  # the collapsed panel opens
            assert await page.is_visible("#stats")
            text = await page.inner_text("#stats")
            assert "Server receives" in text and "320x240" in text, text
            assert "Frames to the model" in text and "Limited by" in text, text
        finally:
            await browser.close()


async def _sending(page: Any) -> bool:
    sending = await page.evaluate("vaCall.sending")
    return bool(sending and sending["width"] == 320 and sending["kbps"] is not None)
