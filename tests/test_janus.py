"""The Janus edge against a real Janus (Debian's `janus`, our minimal config).

The module runs in a network namespace of its own: loopback, plus a veth pair whose two ends
both stay inside it (Janus never gathers ICE candidates on loopback, so it needs another
interface; nothing in the namespace can reach beyond it). Janus is a separate process; the
agent is a real ``Agent`` with ``FakeRealtime``; the other participant is a second
``JanusEdge`` publishing a 440 Hz tone and numbered frames. The browser end-to-end checks run
on both edges in ``tests/test_webrtc_browser.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiortc
import av
import numpy as np
import pytest
from playwright.async_api import async_playwright

from tests.browser.agent_video import PatternPublisher, PatternTrack
from tests.browser.chromium import launch
from tests.browser.media import write_speech_wav, write_y4m
from tests.browser.netns import LoopbackOnlyNamespace, add_inside_veth
from tests.browser.waiting import eventually
from vision_agents.cli import main as cli_main
from vision_agents.core import Agent, User
from vision_agents.core.edge.events import ParticipantLeftEvent, TrackAddedEvent
from vision_agents.demo import JanusOptions, run_demo
from vision_agents.plugins.janus import (
    JanusEdge,
    JanusError,
    JanusProcess,
    JanusSession,
    room_number,
    room_pin,
    signed_token,
)
from vision_agents.testing import FakeRealtime, dominant_hz, read_frame_index, tone

ROOT = Path(__file__).resolve().parents[1]
VETH = "va-janus0"
VETH_ADDRESS = "10.254.0.1/24"


@pytest.fixture(scope="module")
def namespace() -> Iterator[None]:
    ns = LoopbackOnlyNamespace()
    if not ns.enter():
        pytest.fail("these tests need a network namespace (run as root, as CI does)")
    try:
        add_inside_veth(VETH, VETH_ADDRESS)
        yield
    finally:
        ns.exit()


@pytest.fixture
async def janus(namespace: None) -> AsyncIterator[JanusProcess]:
    server = JanusProcess(interfaces=VETH)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class ToneTrack(aiortc.MediaStreamTrack):
    """A microphone that plays a 440 Hz tone: 20 ms frames at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self.hz = hz
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent / 48000 - time.monotonic()))
        t = (np.arange(960) + self._sent) / 48000
        samples = (0.3 * 32767 * np.sin(2 * np.pi * self.hz * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._sent
        frame.time_base = Fraction(1, 48000)
        self._sent += 960
        return frame


def _edge(server: JanusProcess) -> JanusEdge:
    return JanusEdge(server.url, token_secret=server.token_secret, admin_key=server.admin_key)


@asynccontextmanager
async def agent_in_call(server: JanusProcess) -> AsyncIterator[tuple[JanusEdge, FakeRealtime]]:
    edge = _edge(server)
    model = FakeRealtime(fps=5)
    agent = Agent(
        edge=edge, agent_user=User(name="Ada"), llm=model, processors=[PatternPublisher(fps=15)]
    )
    call = await agent.create_call("default", "janus-e2e")
    async with agent.join(call):
        yield edge, model


@asynccontextmanager
async def human(server: JanusProcess, name: str = "Grace") -> AsyncIterator[Human]:
    person = Human(_edge(server), name)
    await person.join()
    try:
        yield person
    finally:
        await person.close()


class Human:
    """A participant that publishes a tone and numbered frames and keeps what it receives."""

    def __init__(self, edge: JanusEdge, name: str) -> None:
        self.edge = edge
        self.name = name
        self.tracks: dict[str, aiortc.MediaStreamTrack] = {}
        self.heard: list[np.ndarray] = []  # the agent's voice as it arrives, 48 kHz mono
        self._listener: asyncio.Task[None] | None = None
        edge.events.subscribe(self._on_track)

    async def _on_track(self, event: TrackAddedEvent) -> None:
        self.tracks[event.kind] = event.track
        if event.kind == "audio":
            self._listener = asyncio.ensure_future(self._listen(event.track))

    async def _listen(self, track: aiortc.MediaStreamTrack) -> None:
        # Read as it comes (an unread track queues its frames): what is heard is current.
        with contextlib.suppress(aiortc.mediastreams.MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                samples = frame.to_ndarray().astype(np.float32) / 32768
                self.heard.append(samples.reshape(-1, len(frame.layout.channels)).mean(axis=1))

    def heard_since(self, index: int) -> np.ndarray:
        return np.concatenate(self.heard[index:]) if len(self.heard) > index else np.zeros(0)

    async def close(self) -> None:
        await self.edge.close()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def join(self) -> None:
        call = await self.edge.create_call("default", "janus-e2e")
        await self.edge.join(call, User(name=self.name))
        await self.edge.publish_audio(ToneTrack())
        await self.edge.publish_video(PatternTrack(fps=15))


async def _next_index(track: aiortc.MediaStreamTrack) -> int:
    frame = await asyncio.wait_for(track.recv(), 5)
    assert isinstance(frame, av.VideoFrame)
    return read_frame_index(frame)


@pytest.mark.timeout(60)
async def test_agent_and_participant_exchange_media_and_leaving_is_seen_within_1_s(
    janus: JanusProcess,
) -> None:
    async with agent_in_call(janus) as (edge, model), human(janus) as grace:
        left: list[float] = []

        @edge.events.subscribe
        async def on_left(event: ParticipantLeftEvent) -> None:
            left.append(time.monotonic())

        # The agent gets the participant's frames (numbered) and its tone.
        await eventually(lambda: len(model.frames) >= 5, 15, "frames at the agent")
        assert {read_frame_index(f) for f in model.latest_frames} <= set(range(10_000))
        indexes = [read_frame_index(f) for f in model.latest_frames]
        assert indexes == sorted(indexes) and indexes[-1] > indexes[0], indexes
        await eventually(lambda: model.audio_received >= 1.0, 10, "audio at the agent")
        heard = np.concatenate([c.to_float32().samples[0] for c in model.audio_chunks[-25:]])
        assert abs(dominant_hz(heard, model.audio_chunks[-1].sample_rate) - 440) < 15
        assert [p.name for p in edge.participants] == ["Grace"]

        # The participant sees the agent's video advance and hears its reply.
        await eventually(lambda: {"audio", "video"} <= set(grace.tracks), 10, "agent's tracks")
        first = await _next_index(grace.tracks["video"])
        await asyncio.sleep(0.5)
        later = await _next_index(grace.tracks["video"])
        assert 0 <= first < later, f"agent video did not advance: {first} then {later}"
        mark = len(grace.heard)
        model.respond("Hello Grace.", tone(1200, 2.0, sample_rate=24000))
        await eventually(lambda: len(grace.heard_since(mark)) >= 3 * 48000, 10, "3 s heard")
        audio = grace.heard_since(mark)
        loud = np.flatnonzero(np.abs(audio) > 0.05)
        assert loud.size > 48000, f"the participant heard {loud.size / 48000:.2f} s of sound"
        assert abs(dominant_hz(audio[loud[0] : loud[-1]], 48000) - 1200) < 15

        # Leaving: the agent hears of it within 1 s.
        gone = time.monotonic()
        await grace.edge.leave()
        await eventually(lambda: bool(left), 5, "the agent to see Grace leave")
        print(f"leave seen by the agent after {left[0] - gone:.3f} s")
        assert left[0] - gone < 1.0, f"the agent heard of it after {left[0] - gone:.2f} s"
        assert edge.participants == []


@pytest.mark.timeout(90)
async def test_janus_restart_mid_call_is_survived_within_5_s(janus: JanusProcess) -> None:
    async with agent_in_call(janus) as (edge, model), human(janus) as grace:
        await eventually(lambda: model.audio_received >= 0.5, 15, "audio at the agent")
        await janus.restart()
        back = time.monotonic()
        await eventually(lambda: edge.rejoins >= 1 and grace.edge.rejoins >= 1, 5, "rejoins")
        heard_before = model.audio_received
        await eventually(
            lambda: model.audio_received >= heard_before + 0.5, 5, "the agent hearing again"
        )
        took = time.monotonic() - back
        print(f"back in the room and hearing {took:.2f} s after Janus restarted")
        assert took < 5.0, f"back in the room and hearing {took:.1f} s after the restart"
        assert [p.name for p in edge.participants] == ["Grace"]


async def test_tokens_that_are_wrong_or_expired_are_refused(janus: JanusProcess) -> None:
    for token in (
        signed_token("not-the-secret", 60),
        signed_token(janus.token_secret, 60, plugins=("janus.plugin.echotest",)) + "x",
    ):
        with pytest.raises(JanusError, match="code 403"):
            await JanusSession.connect(janus.url, token)
    payload = f"{int(time.time()) - 5},janus,janus.plugin.videoroom"  # signed, but expired
    digest = hmac.new(janus.token_secret.encode(), payload.encode(), hashlib.sha1).digest()
    expired = f"{payload}:{base64.b64encode(digest).decode()}"
    with pytest.raises(JanusError, match="code 403"):
        await JanusSession.connect(janus.url, expired)
    session = await JanusSession.connect(janus.url, signed_token(janus.token_secret, 60))
    await session.close()


async def test_a_valid_token_admits_only_to_the_room_whose_pin_it_comes_with(
    janus: JanusProcess,
) -> None:
    """Janus's tokens admit to the whole server: the room's pin (in the join link, derived
    from the secret per call) keeps one call's link out of another call's room."""
    edge = _edge(janus)
    await edge.create_call("default", "pinned")
    room = room_number("pinned")
    session = await JanusSession.connect(janus.url, edge.token())
    try:
        for pin, refusal in (
            (None, "code 429"),  # "missing mandatory element (pin)"
            (room_pin(janus.token_secret, "another-call"), "code 433"),  # "unauthorized"
            ("x" * 32, "code 433"),
        ):
            handle = await session.attach()
            body: dict[str, Any] = {"request": "join", "ptype": "publisher", "room": room}
            if pin is not None:
                body["pin"] = pin
            with pytest.raises(JanusError, match=refusal):
                await handle.message(body)
            await handle.detach()
        handle = await session.attach()
        answer = await handle.message(
            {
                "request": "join",
                "ptype": "publisher",
                "room": room,
                "pin": room_pin(janus.token_secret, "pinned"),
            }
        )
        assert answer["plugindata"]["data"]["videoroom"] == "joined"
        await handle.detach()
    finally:
        await session.close()
    # The link carries the pin beside the token, in the fragment.
    link_fragment = (
        JanusEdge(
            janus.url,
            token_secret=janus.token_secret,
            admin_key=janus.admin_key,
            page_url="http://127.0.0.1:1/",
        )
        .join_url("pinned")
        .partition("#")[2]
    )
    assert f"pin={room_pin(janus.token_secret, 'pinned')}" in link_fragment


def test_janus_runs_in_its_own_folder_with_core_dumps_off(janus: JanusProcess) -> None:
    """Janus 1.1.2 sometimes crashes on shutdown; it must not leave a core dump (130 MB) in
    the directory the agent was started from."""
    assert janus.pid is not None
    limits = Path(f"/proc/{janus.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
    assert Path(f"/proc/{janus.pid}/cwd").resolve() != Path.cwd().resolve()


async def test_rooms_are_created_only_with_the_admin_key(janus: JanusProcess) -> None:
    edge = JanusEdge(janus.url, token_secret=janus.token_secret, admin_key="wrong")
    with pytest.raises(JanusError, match="create"):
        await edge.create_call("default", "no-key")


async def _reports(process: asyncio.subprocess.Process, into: dict[str, dict[str, int]]) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        report = json.loads(line)
        into[report["name"]] = report["heard"]


@pytest.mark.timeout(90)
async def test_two_agents_in_two_processes_hear_the_human_and_each_other(
    janus: JanusProcess,
) -> None:
    tones = {"Ada": 700, "Bo": 1000}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.janus.agent_process",
            *(janus.url, janus.token_secret, janus.admin_key, "janus-e2e", name, str(hz)),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for name, hz in tones.items()
    ]
    heard: dict[str, dict[str, int]] = {}
    readers = [asyncio.ensure_future(_reports(p, heard)) for p in processes]

    def each_hears_the_others() -> bool:
        wanted = {"Ada": {"Grace": 440, "Bo": 1000}, "Bo": {"Grace": 440, "Ada": 700}}
        return all(
            abs(heard.get(agent, {}).get(who, 0) - hz) < 15
            for agent, others in wanted.items()
            for who, hz in others.items()
        )

    try:
        async with human(janus):
            try:
                await eventually(each_hears_the_others, 30, "both agents hearing all")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; what each heard (Hz): {heard}") from None
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(p.wait() for p in processes))
        await asyncio.gather(*readers, return_exceptions=True)


@pytest.mark.timeout(120)
async def test_demo_runs_on_janus_and_a_browser_joins_it(
    janus: JanusProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    video = write_y4m(tmp_path / "camera.y4m", seconds=2, fps=15)
    audio = write_speech_wav(tmp_path / "mic.wav", "Hello there.")
    out = ""

    def said(text: str) -> bool:
        nonlocal out
        out += capsys.readouterr().out
        return text in out

    async with async_playwright() as pw:
        browser = await launch(pw, video, audio)

        async def join(url: str) -> None:
            page = await browser.new_page()
            await page.goto(url + "&name=Grace")

        options = JanusOptions(janus.url, janus.token_secret, janus.admin_key)
        demo = asyncio.ensure_future(
            run_demo(janus=options, port=0, open_browser=False, every_s=2.0, on_ready=join)
        )
        try:
            await eventually(lambda: said("Grace joined the call"), 60, "the browser joining")
            await eventually(
                lambda: said("agent says: Hello, I am the offline demo agent"), 30, "the greeting"
            )
            assert janus.token_secret not in out and janus.admin_key not in out
        finally:
            demo.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await demo
            await browser.close()


def test_demo_on_janus_names_the_missing_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VISION_AGENTS_JANUS_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("VISION_AGENTS_JANUS_ADMIN_KEY", "x")
    with pytest.raises(SystemExit) as exited:
        cli_main(["demo", "--edge", "janus", "--no-browser", "--duration", "1"])
    assert exited.value.code == 2
    assert "VISION_AGENTS_JANUS_TOKEN_SECRET" in capsys.readouterr().err
