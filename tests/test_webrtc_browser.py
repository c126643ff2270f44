"""End to end: Debian's Chromium (headless) joins the embedded call server with real media.

The whole module runs in a network namespace that has only loopback (see
``tests/browser/netns.py``): the browsers, the server and aiortc cannot reach anything else.
Browsers are fed a y4m video of numbered frames and a wav of speech made here; the agent is a
real ``Agent`` with ``FakeRealtime`` as its model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.async_api import async_playwright

from tests.browser.agent_video import PatternPublisher
from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav, write_y4m
from tests.browser.netns import LoopbackOnlyNamespace, interfaces
from tests.browser.page import START_AUDIO_CAPTURE, TAKE_AUDIO, frames_decoded, read_index
from tests.browser.waiting import eventually
from vision_agents.core import Agent, User
from vision_agents.core.edge.events import (
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    TrackAddedEvent,
    TrackMutedEvent,
    TrackRemovedEvent,
)
from vision_agents.core.llm import Realtime
from vision_agents.plugins import gemini
from vision_agents.plugins.webrtc import WebRTCEdge
from vision_agents.testing import FakeRealtime, GeminiLiveServer, read_frame_index, tone

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "images" / "webrtc-call.png"
VIDEO_FRAMES = 30  # the y4m holds frames 0..29 (2 s at 15 fps), looped by Chromium


@pytest.fixture(scope="module", autouse=True)
def loopback_only() -> Iterator[bool]:
    ns = LoopbackOnlyNamespace()
    entered = ns.enter()
    if entered:
        assert interfaces() == ["lo"]
    try:
        yield entered
    finally:
        ns.exit()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("browser-media")
    video = write_y4m(folder / "camera.y4m", seconds=VIDEO_FRAMES / 15, fps=15)
    audio = write_speech_wav(folder / "mic.wav", "Hello agent, this is the browser speaking.")
    return video, audio


@dataclass
class EdgeLog:
    events: list[tuple[float, Any]] = field(default_factory=list)

    def first(self, kind: type, after: float = 0.0) -> tuple[float, Any] | None:
        return next(((t, e) for t, e in self.events if isinstance(e, kind) and t >= after), None)


@asynccontextmanager
async def call_with_agent(
    model: Realtime, *, max_participants: int = 6, video: bool = True
) -> AsyncIterator[tuple[WebRTCEdge, Agent, EdgeLog]]:
    edge = WebRTCEdge(max_participants=max_participants)
    processors = [PatternPublisher(fps=15)] if video else []
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model, processors=processors)
    edge.show_transcripts(model)
    log = EdgeLog()

    @edge.events.subscribe
    async def record(
        event: ParticipantJoinedEvent
        | ParticipantLeftEvent
        | TrackAddedEvent
        | TrackRemovedEvent
        | TrackMutedEvent,
    ) -> None:
        log.events.append((time.monotonic(), event))

    call = await agent.create_call("default", "e2e")
    async with agent.join(call):
        yield edge, agent, log


async def _roster_is(page: Any, names: list[str]) -> bool:
    return sorted(await page.evaluate("vaCall.members.map((m) => m.name)")) == names


async def _decoded_at_least(page: Any, seat: int, frames: int) -> bool:
    return await frames_decoded(page, seat) >= frames


INBOUND_STATS = """async (seat) => {
  const stats = await vaCall.slots[seat].video.receiver.getStats();
  for (const r of stats.values()) if (r.type === "inbound-rtp") {
    const { packetsReceived, framesReceived, framesDecoded, keyFramesDecoded, pliCount,
            nackCount, firCount, packetsLost } = r;
    return { packetsReceived, framesReceived, framesDecoded, keyFramesDecoded, pliCount,
             nackCount, firCount, packetsLost };
  }
  return null;
}"""


async def _frames_received(page: Any, seat: int) -> int | None:
    stats = await page.evaluate(INBOUND_STATS, seat)
    return int(stats["framesReceived"]) if stats else None


async def _slot_diagnosis(page: Any, edge: WebRTCEdge, own: int, other: int) -> str:
    """What the browser's receiver and the server's slot saw, for a failure message."""
    browser = await page.evaluate(INBOUND_STATS, other)
    member = edge.server.room("e2e").seats[own]  # None: that browser is no longer seated
    slot = member.slots[other]["video"] if member is not None else None
    server = (
        "no member"
        if slot is None
        else f"slot source={slot.source is not None} received={slot.received} "
        f"delivered={slot.delivered} live={slot.readyState}"
    )
    room = edge.server.room("e2e")
    left = [
        f"{d.name} (seat {d.seat}) {time.monotonic() - d.at:.1f} s ago: {d.reason}"
        for d in room.departures
    ]
    return f"browser inbound-rtp {browser}; server {server}; departures {left}"


def dominant_hz(samples: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.timeout(60)
async def test_agent_and_browser_exchange_audio_and_video(
    media: tuple[Path, Path], loopback_only: bool
) -> None:
    model = FakeRealtime(fps=5)
    async with call_with_agent(model) as (edge, _agent, log), async_playwright() as pw:
        browser = await launch(pw, *media)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 620})
            await page.goto(edge.join_url("e2e", name="Grace"))

            # The agent receives the browser's camera (numbered frames) and microphone.
            await eventually(lambda: len(model.frames) >= 5, 15, "frames at the agent")
            assert {read_frame_index(f) for f in model.latest_frames} <= set(range(VIDEO_FRAMES))
            await eventually(lambda: model.audio_received >= 1.0, 10, "audio at the agent")
            speech = np.concatenate([c.to_float32().samples[0] for c in model.audio_chunks])
            assert float(np.sqrt(np.mean(speech**2))) > 0.01, "the agent got silence"

            # The browser receives the agent's video: its frames read back in order.
            await eventually(lambda: edge.participants != [], 5, "the participant")
            await eventually(lambda: _decoded_at_least(page, 0, 10), 10, "the agent's video")
            first = await read_index(page, 0)
            await asyncio.sleep(0.5)
            later = await read_index(page, 0)
            assert 0 <= first < later, f"agent video did not advance: {first} then {later}"

            # ... and the agent's voice: two tones, heard in order, not silence.
            await page.evaluate(START_AUDIO_CAPTURE, 0)
            await asyncio.sleep(0.3)
            await page.evaluate(TAKE_AUDIO)  # drop what came before the reply
            reply = tone(440, 0.8, sample_rate=24000)
            reply.append(tone(1200, 0.8, sample_rate=24000))
            model.respond("Hello Grace, I can see you.", reply)
            await asyncio.sleep(2.2)
            heard = np.asarray(await page.evaluate(TAKE_AUDIO), dtype=np.float32)
            loud = np.flatnonzero(np.abs(heard) > 0.05)
            assert loud.size > 16000, f"the browser heard {loud.size / 16000:.2f} s of sound"
            start, end = loud[0], loud[-1]
            assert abs((end - start) / 16000 - 1.6) < 0.15, "reply length differs from 1.6 s"
            assert abs(dominant_hz(heard[start + 1600 : start + 11200]) - 440) < 15
            assert abs(dominant_hz(heard[end - 11200 : end - 1600]) - 1200) < 15

            # The transcript reaches the page; the screenshot for the docs is taken now.
            await page.wait_for_function(
                "vaCall.log.some((l) => l.includes('Hello Grace'))", timeout=5000
            )
            assert await page.evaluate("vaCall.error") is None
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT))

            # Muting the microphone on the page raises the edge's muted event.
            await page.click("#mute-audio")
            await eventually(lambda: log.first(TrackMutedEvent) is not None, 5, "a mute event")
            muted = log.first(TrackMutedEvent)
            assert muted is not None and (muted[1].kind, muted[1].muted) == ("audio", True)
        finally:
            await browser.close()


@pytest.mark.timeout(180)  # three Chromium processes on a loaded 2-core machine
async def test_three_browsers_see_each_other_and_leaving_stops_forwarding(
    media: tuple[Path, Path],
) -> None:
    model = FakeRealtime(fps=2)
    async with call_with_agent(model, video=False) as (edge, _agent, log), async_playwright() as pw:
        browsers = [await launch(pw, *media) for _ in range(3)]
        try:
            pages: list[Any] = []
            for name in ("Ann", "Bob", "Cy"):
                page = await browsers[len(pages)].new_page()
                await page.goto(edge.join_url("e2e", name=name))
                pages.append(page)
            # Three Chromium processes starting on two busy cores can take well over 15 s.
            await eventually(lambda: len(edge.participants) == 3, 90, "three participants")
            seats = [int(await p.evaluate("vaCall.seat")) for p in pages]
            assert sorted(seats) == [1, 2, 3]

            # Everyone decodes the video of the two others.
            for page, own in zip(pages, seats, strict=True):
                for other in seats:
                    if other == own:
                        continue
                    try:
                        await eventually(
                            lambda p=page, o=other: _decoded_at_least(p, o, 5),
                            30,
                            f"seat {own} to see seat {other}",
                        )
                    except AssertionError as exc:
                        raise AssertionError(
                            f"{exc}; {await _slot_diagnosis(page, edge, own, other)}"
                        ) from None
            # The agent got separate tracks for each of them.
            added = [e for _, e in log.events if isinstance(e, TrackAddedEvent)]
            assert len({e.participant.user_id for e in added}) == 3
            assert sorted(e.kind for e in added) == ["audio"] * 3 + ["video"] * 3

            # Cy leaves: the agent is told and every forward from Cy stops within 1 s of the
            # server learning of it (the departure record; the click reaching the server is
            # the browser's time, and beside CPU burners Playwright's click alone can take
            # most of a second). The server must learn of it promptly all the same.
            cy = next(e.participant for e in added if e.participant.name == "Cy")
            cy_tracks = [e.track for e in added if e.participant == cy]
            room = edge.server.room("e2e")
            members = [room.seats[s] for s in seats[:2]]
            cy_slots = [m.slots[seats[2]]["video"] for m in members if m is not None]
            assert len(cy_slots) == 2, "Ann or Bob lost their seat"
            clicked_at = time.monotonic()
            await pages[2].click("#leave")
            await eventually(
                lambda: log.first(ParticipantLeftEvent, clicked_at) is not None, 5.0, "Cy leaving"
            )
            departure = next(d for d in room.departures if d.name == "Cy")
            assert "closed its socket" in departure.reason, departure.reason
            assert departure.at - clicked_at < 3.0, "the server heard of the click late"
            left = log.first(ParticipantLeftEvent, clicked_at)
            assert left is not None and left[1].participant == cy
            assert left[0] - departure.at < 1.0, (
                f"the agent heard after {left[0] - departure.at:.2f} s"
            )
            removed = [
                e for t, e in log.events if isinstance(e, TrackRemovedEvent) and t >= clicked_at
            ]
            assert {e.track_id for e in removed} == {t.id for t in cy_tracks}
            assert all(t.readyState == "ended" for t in cy_tracks)
            await pages[2].close()
            # Forwarding is the server's act: from 1 s after the leave, none of the others'
            # slots for Cy gets or hands its sender another frame, and no further frame of
            # Cy's reaches their browsers. The browsers are judged on frames received (the
            # network side), not decoded: a starved renderer decodes what it already had late.
            await asyncio.sleep(max(0.0, departure.at + 1.0 - time.monotonic()))
            assert all(slot.source is None for slot in cy_slots), "a slot still shows Cy"
            before = [(s.received, s.delivered) for s in cy_slots]
            received = [await _frames_received(p, seats[2]) for p in pages[:2]]
            await asyncio.sleep(1.0)
            after = [(s.received, s.delivered) for s in cy_slots]
            assert before == after, f"the server still forwards Cy: {before} -> {after}"
            later = [await _frames_received(p, seats[2]) for p in pages[:2]]
            # None: the page dropped the receiver's stream stats with the track, nothing comes.
            assert all(
                b is None or a is None or b <= a for a, b in zip(received, later, strict=True)
            ), f"Cy's video still arrives: {received} -> {later}"
            # The page's roster follows (a busy renderer may take a moment to apply it).
            await eventually(
                lambda: _roster_is(pages[0], ["Ada", "Ann", "Bob"]), 10, "Cy gone from the roster"
            )
        finally:
            for browser in browsers:
                await browser.close()


@pytest.mark.timeout(60)
async def test_wrong_or_expired_token_is_refused_with_a_clear_message(
    media: tuple[Path, Path],
) -> None:
    model = FakeRealtime()
    async with (
        call_with_agent(model, video=False) as (edge, _agent, _log),
        async_playwright() as pw,
    ):
        browser = await launch(pw, *media)
        try:
            good = edge.join_url("e2e")
            expired = edge.join_url("e2e", ttl_s=0.001)
            forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
            other_call = edge.server.join_url("other-call")
            edge.server.room("other-call")
            other_call = other_call.replace("/call/other-call", "/call/e2e")
            await asyncio.sleep(0.01)
            for url, words in (
                (expired, "expired"),
                (forged, "signature"),
                (other_call, "another call"),
                (good.split("#")[0], "invalid"),
            ):
                page = await browser.new_page()
                await page.goto(url)
                await page.wait_for_function("vaCall.error !== null", timeout=5000)
                message = await page.evaluate("vaCall.error")
                assert words in message, message
                assert await page.evaluate("vaCall.pc") is None  # no WebRTC work began
                await page.close()
            assert edge.participants == []
        finally:
            await browser.close()


@pytest.mark.timeout(60)
async def test_browser_talks_to_gemini_through_the_agent(media: tuple[Path, Path]) -> None:
    """The whole path with a real provider plugin: browser -> call server -> Agent ->
    google-genai SDK -> the local Gemini Live server, and the model's voice back."""
    async with GeminiLiveServer() as server:
        model = gemini.Realtime(model="gemini-live-test", fps=2, client=server.client())
        async with (
            call_with_agent(model, video=False) as (edge, _agent, _log),
            async_playwright() as pw,
        ):
            browser = await launch(pw, *media)
            try:
                page = await browser.new_page()
                await page.goto(edge.join_url("e2e", name="Grace"))
                # The browser's camera reaches Gemini as JPEG at the model's fps, its
                # microphone as 16 kHz PCM.
                await eventually(lambda: len(server.frames) >= 3, 15, "frames at Gemini")
                assert {f.mime_type for f in server.frames} == {"image/jpeg"}
                await eventually(lambda: server.audio_seconds() >= 1.0, 10, "audio at Gemini")
                assert {a.sample_rate for a in server.audio} == {16000}
                pcm = np.concatenate(
                    [np.frombuffer(a.data, dtype=np.int16) for a in server.audio]
                ).astype(np.float32)
                assert float(np.sqrt(np.mean((pcm / 32768) ** 2))) > 0.01, "Gemini got silence"

                # Gemini speaks: the browser hears it.
                await page.evaluate(START_AUDIO_CAPTURE, 0)
                await asyncio.sleep(0.3)
                await page.evaluate(TAKE_AUDIO)
                await server.send_audio(tone(660, 1.0, sample_rate=24000), transcript="Hi Grace")
                await asyncio.sleep(1.8)
                heard = np.asarray(await page.evaluate(TAKE_AUDIO), dtype=np.float32)
                loud = np.flatnonzero(np.abs(heard) > 0.05)
                assert loud.size > 0.8 * 16000, f"the browser heard {loud.size / 16000:.2f} s"
                assert abs(dominant_hz(heard[loud[0] : loud[-1]]) - 660) < 15
            finally:
                await browser.close()
