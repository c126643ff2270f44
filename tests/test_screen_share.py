"""Screen share, end to end: Debian's Chromium shares a tab of 14 px text into a call, on the
embedded call server and on a real Janus (Debian's), and the model reads it.

Chromium is started without its fake media UI, so that ``getDisplayMedia`` goes through the
real picker, which ``--auto-select-tab-capture-source-by-title`` answers with the tab titled
``SHARED_TITLE`` (the fake UI would share a dark fake monitor instead). The camera and the
microphone still come from files (permissions granted to the browser context). What the model
receives is read with Debian's ``tesseract-ocr``, after the same scaling and JPEG encoding a
provider plugin applies (``max_image_side`` 1024, quality 80).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from playwright.async_api import async_playwright

from benchmarks.video_quality_clip import Clip, ocr, ocr_item, word_accuracy, words_of
from tests.browser.chromium import chromium_args, chromium_path
from tests.browser.media import write_photo_y4m, write_speech_wav
from tests.browser.netns import add_inside_veth, loopback_only_module
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.core.edge.events import TrackAddedEvent, TrackRemovedEvent
from vision_agents.core.edge.transport import EdgeTransport
from vision_agents.core.llm.events import RealtimeFrameSentEvent
from vision_agents.core.utils.video import encode_jpeg
from vision_agents.plugins.janus import JanusEdge, JanusPage, JanusProcess
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime

SHARED_TITLE = "Shared text"
_WORDS = (
    "agent model screen window letter number paper table river garden yellow orange purple "
    "silver planet market engine bridge winter summer school doctor camera button little "
    "simple yesterday tomorrow morning evening kitchen window station picture history "
    "science reading writing singing sharing quickly slowly travel people family friend"
).split()


def shared_text(lines: int = 60, words_per_line: int = 9) -> list[str]:
    """The page's lines: common English words, the same every run."""
    rng = random.Random(14)
    return [" ".join(rng.choice(_WORDS) for _ in range(words_per_line)) for _ in range(lines)]


def shared_page(lines: list[str]) -> str:
    body = "".join(f"<p>{line}</p>" for line in lines)
    return (
        f"<!doctype html><html><head><title>{SHARED_TITLE}</title><style>"
        "body { margin: 16px; background: #fff; color: #000;"
        " font: 14px/20px 'DejaVu Sans', sans-serif; } p { margin: 0; }"
        f"</style></head><body>{body}</body></html>"
    )


VETH, VETH_ADDRESS = "va-screen0", "10.254.2.1/24"


@pytest.fixture(scope="module", autouse=True)
def loopback_only() -> Iterator[bool]:
    yield from loopback_only_module()


@pytest.fixture(params=["webrtc", "janus"])
async def make_edge(
    request: pytest.FixtureRequest, loopback_only: bool
) -> AsyncIterator[Callable[[], EdgeTransport]]:
    """A function making the edge under test (Janus and its page started for it)."""
    if request.param == "webrtc":
        yield WebRTCEdge
        return
    if not loopback_only:
        pytest.fail("the Janus edge needs a network namespace (run as root, as CI does)")
    add_inside_veth(VETH, VETH_ADDRESS)
    janus = JanusProcess(interfaces=VETH)
    await janus.start()
    page = JanusPage()
    await page.start()
    try:
        yield lambda: JanusEdge(
            janus.url,
            token_secret=janus.token_secret,
            admin_key=janus.admin_key,
            page_url=page.url,
        )
    finally:
        await page.stop()
        await janus.close()


def model_view(frame: Any) -> np.ndarray:
    """The frame as a provider plugin would send it (scaled to 1024 at most, JPEG 80), as
    luma."""
    data = encode_jpeg(frame, 80, 1024)
    gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert gray is not None, "a JPEG OpenCV cannot read"
    return gray


def visible_words(lines: list[str], scroll_px: int, view_height: int) -> tuple[str, ...]:
    """The words of the lines wholly inside the tab's viewport (16 px margin, 20 px lines)."""
    words: list[str] = []
    for index, line in enumerate(lines):
        top = 16 + 20 * index - scroll_px
        if top >= 0 and top + 20 <= view_height:
            words.extend(words_of(line))
    return tuple(words)


@pytest.mark.timeout(150)
async def test_a_shared_screen_reaches_the_model_readable(
    tmp_path: Path, make_edge: Callable[[], EdgeTransport]
) -> None:
    """Sharing a tab of 14 px text: the agent gets it as the participant's screen track, the
    model watches it instead of the camera, OCR reads at least 95% of its words in what the
    model receives, scrolling it sends a frame at once, another person sees it, and stopping
    returns everyone to the camera."""
    camera = write_photo_y4m(tmp_path / "camera.y4m", seconds=2)
    mic = write_speech_wav(tmp_path / "mic.wav", "Hello.")
    model = FakeRealtime(fps=2, max_image_side=1024)
    edge = make_edge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    events: list[Any] = []

    reasons: list[str] = []

    @edge.events.subscribe
    async def record(event: TrackAddedEvent | TrackRemovedEvent) -> None:
        events.append(event)

    @model.events.subscribe
    async def sent(event: RealtimeFrameSentEvent) -> None:
        reasons.append(event.reason)

    def screens() -> list[TrackAddedEvent]:
        return [e for e in events if isinstance(e, TrackAddedEvent) and e.source == "screen"]

    def cameras() -> list[TrackAddedEvent]:
        return [e for e in events if isinstance(e, TrackAddedEvent) and e.source == "camera"]

    lines = shared_text()
    args = [a for a in chromium_args(camera, mic) if a != "--use-fake-ui-for-media-stream"]
    args.append(f"--auto-select-tab-capture-source-by-title={SHARED_TITLE}")
    call = await agent.create_call("default", "screen")
    async with agent.join(call), async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=args
        )
        try:
            context = await browser.new_context(
                permissions=["camera", "microphone"], viewport={"width": 1280, "height": 720}
            )
            text_tab = await context.new_page()
            await text_tab.set_content(shared_page(lines))
            page = await context.new_page()
            await page.goto(edge.join_url(call, name="Ann"))  # type: ignore[attr-defined]
            await eventually(lambda: len(model.frames) >= 1, 30, "a camera frame at the model")
            assert len(cameras()) == 1
            camera_id = cameras()[0].track.id
            assert agent.video_input.watched_track_id == camera_id
            bob = await context.new_page()
            await bob.goto(edge.join_url(call, name="Bob"))  # type: ignore[attr-defined]
            janus = isinstance(edge, JanusEdge)
            # The width of Ann's screen as Bob's page plays it (0: none): a tile of its own on
            # Janus, Ann's own tile on the embedded server (her camera is 640 wide).
            anns_screen = (
                "(vaJanus.screens['Ann'] || { videoWidth: 0 }).videoWidth"
                if janus
                else "(() => { const m = vaCall.members.find((m) => m.name === 'Ann');"
                " const v = m && document.querySelector(`.tile[data-seat='${m.seat}'] video`);"
                " return v ? v.videoWidth : 0; })()"
            )

            async def bob_sees(width: int) -> bool:
                return bool(await bob.evaluate(anns_screen) == width)

            await eventually(lambda: len(cameras()) == 2, 20, "Bob's camera at the agent")

            await page.click("#share-screen")
            await eventually(lambda: len(screens()) == 1, 20, "the screen track at the agent")
            screen = screens()[0]
            assert screen.participant == cameras()[0].participant
            # The edge's event is seen here before the agent has routed the track.
            await eventually(
                lambda: agent.video_input.watched_track_id == screen.track.id,
                5,
                "the model on the screen",
            )

            truth = visible_words(lines, 0, 720)
            seen: list[float] = []

            async def screen_read() -> bool:
                frames = list(model.latest_frames)
                if not frames or (frames[-1].width, frames[-1].height) != (1280, 720):
                    return False
                gray = model_view(frames[-1])
                assert max(gray.shape) == 1024, gray.shape
                # In a thread: the call goes on while tesseract reads.
                text = await asyncio.to_thread(ocr, gray, block=True, upscale=3)
                seen.append(word_accuracy(truth, text))
                return seen[-1] >= 0.95

            await eventually(screen_read, 40, "OCR to read 95% of the shared words")
            print(f"OCR word accuracy on the shared screen: {seen}")
            await eventually(lambda: bob_sees(1280), 20, "Bob's page playing Ann's screen")

            # Scrolling by less than a line (7 px; lines are 20) is a change, sent at once.
            # First the picture settles: the encoder refines a new screen for a while.
            async def settled() -> bool:
                changes = len(reasons)
                await asyncio.sleep(2.0)  # the condition: two seconds without a change
                return reasons[changes:].count("change") == 0

            await eventually(settled, 30, "the shared screen to settle")
            before = len(reasons)
            await text_tab.evaluate("window.scrollBy(0, 7)")
            await eventually(lambda: "change" in reasons[before:], 3, "a frame sent for the scroll")

            await page.click("#share-screen")
            await eventually(
                lambda: any(
                    isinstance(e, TrackRemovedEvent) and e.track_id == screen.track.id
                    for e in events
                ),
                10,
                "the screen track removed",
            )
            await eventually(
                lambda: agent.video_input.watched_track_id == cameras()[-1].track.id,
                5,
                "the model back on the newest camera (Bob's)",
            )
            await eventually(
                lambda: bob_sees(0 if janus else 640), 20, "Bob's page back to Ann's camera"
            )
        finally:
            await browser.close()


@pytest.mark.timeout(120)
async def test_the_camera_s_22_px_line_reaches_the_model_readable(
    tmp_path: Path, make_edge: Callable[[], EdgeTransport]
) -> None:
    """The camera path, held to the same bar: the benchmark clip's 22 px line (a 640x480
    camera), read by OCR in what the model receives, at least 95% of its words."""
    clip = Clip(seconds=2)
    camera = clip.write_y4m(tmp_path / "clip.y4m")
    mic = write_speech_wav(tmp_path / "mic.wav", "Hello.")
    model = FakeRealtime(fps=2, max_image_side=1024)
    model.frame_policy = None  # every frame the fps lets through: a fresh one to read
    edge = make_edge()
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    line = next(item for item in clip.items if item.name == "22px")
    call = await agent.create_call("default", "camera-ocr")
    async with agent.join(call), async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(), headless=True, args=chromium_args(camera, mic)
        )
        try:
            page = await browser.new_page()
            await page.goto(edge.join_url(call, name="Ann"))  # type: ignore[attr-defined]
            seen: list[float | None] = []

            async def line_read() -> bool:
                frames = list(model.latest_frames)
                if not frames or (frames[-1].width, frames[-1].height) != (640, 480):
                    return False
                gray = model_view(frames[-1])
                seen.append(await asyncio.to_thread(ocr_item, clip, gray, line))
                return (seen[-1] or 0.0) >= 0.95

            await eventually(line_read, 40, "OCR to read 95% of the 22 px line")
            print(f"OCR word accuracy on the camera's 22 px line: {seen}")
        finally:
            await browser.close()
