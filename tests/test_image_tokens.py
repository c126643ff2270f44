"""What a video frame costs in tokens: the providers' published rules, our per-frame estimate
on the Realtime object and in ``llm.usage``, confirmed by the local OpenAI server's usage."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import cv2
import numpy as np
import openai
import pytest

from tests.conftest import wait_until
from tests.media_tracks import SyntheticVideoTrack
from vision_agents.core.errors import ConfigurationError
from vision_agents.core.llm.events import Usage, UsageEvent
from vision_agents.core.llm.image_tokens import (
    gemini_frame_tokens,
    jpeg_size,
    openai_image_tokens,
)
from vision_agents.core.llm.runtime import RetryPolicy
from vision_agents.core.utils.video import encode_jpeg
from vision_agents.plugins import gemini
from vision_agents.plugins import openai as openai_plugin
from vision_agents.testing import GeminiLiveServer, OpenAIRealtimeServer, ScriptedReply

pytestmark = pytest.mark.timeout(60)


# -- the published rules ---------------------------------------------------------------------


def test_openai_rule_matches_the_vision_guides_worked_examples() -> None:
    # OpenAI's vision guide: 1024x1024 high -> 768x768, 4 tiles: 765; 2048x4096 high ->
    # 1024x2048 -> 768x1536, 6 tiles: 1105; low detail is 85 whatever the size.
    assert openai_image_tokens(1024, 1024, "high") == 765
    assert openai_image_tokens(2048, 4096, "high") == 1105
    assert openai_image_tokens(4096, 8192, "low") == 85
    # "auto" and a missing detail are counted as high (the dearer reading).
    assert openai_image_tokens(2048, 4096, "auto") == 1105
    assert openai_image_tokens(2048, 4096, None) == 1105


def test_openai_rule_at_the_sizes_the_plugins_send() -> None:
    # 1280x720 at max_image_side 1024 is sent as 1024x576: short side under 768, 2x2 tiles.
    assert openai_image_tokens(1024, 576, "high") == 765
    assert openai_image_tokens(1280, 720, "high") == 1105  # 3x2 tiles
    assert openai_image_tokens(1920, 1080, "high") == 1105  # -> 1365x768, 3x2 tiles
    assert openai_image_tokens(512, 512, "high") == 255  # not scaled up: one tile
    assert openai_image_tokens(320, 240, "high") == 255
    assert openai_image_tokens(256, 1024, "high") == 425  # 1x2 tiles
    assert openai_image_tokens(513, 100, "high") == 425  # a pixel over a tile is a tile
    with pytest.raises(ValueError, match="detail must be"):
        openai_image_tokens(100, 100, "medium")
    with pytest.raises(ValueError, match="positive size"):
        openai_image_tokens(0, 100, "high")


def test_gemini_frame_count_by_media_resolution() -> None:
    assert gemini_frame_tokens(None) == 258
    assert gemini_frame_tokens("MEDIA_RESOLUTION_UNSPECIFIED") == 258
    assert gemini_frame_tokens("low") == 64
    assert gemini_frame_tokens("MEDIA_RESOLUTION_MEDIUM") == 256
    assert gemini_frame_tokens("MEDIA_RESOLUTION_HIGH") == 256
    with pytest.raises(ValueError, match="media_resolution must be one of"):
        gemini_frame_tokens("ultra")


def test_jpeg_size_reads_the_frame_header() -> None:
    rng = np.random.default_rng(1)
    for width, height, max_side in [(1280, 720, 1024), (360, 1440, 1024), (33, 17, None)]:
        image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        jpeg = encode_jpeg(image, 80, max_side)
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded is not None
        assert jpeg_size(jpeg) == (decoded.shape[1], decoded.shape[0])
    progressive = cv2.imencode(
        ".jpg", np.zeros((48, 80, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    )[1].tobytes()
    assert jpeg_size(progressive) == (80, 48)  # SOF2
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_size(b"\x89PNG\r\n")
    with pytest.raises(ValueError, match="no frame header"):
        jpeg_size(progressive[:20])


def test_usage_keeps_the_estimate_apart_from_what_was_reported() -> None:
    a = Usage(input_image=765, total=765, input_image_estimated=765)
    b = Usage(input_image=1530, total=1530)
    both = a + b
    assert both.input_image == 2295 and both.input_image_estimated == 765
    assert both.input == 2295 and both.total == 2295  # the estimate is no part of the bill


# -- end to end: the estimate and the local OpenAI server's usage agree ----------------------


@pytest.fixture
async def server() -> AsyncIterator[OpenAIRealtimeServer]:
    async with OpenAIRealtimeServer() as s:
        yield s


async def _send_frames(
    llm: openai_plugin.Realtime, track: SyntheticVideoTrack, frames: int
) -> None:
    target = llm.frames_sent + frames
    await llm.watch_video_track(track)
    try:
        await wait_until(lambda: llm.frames_sent >= target, 20, f"{frames} frames sent")
    finally:
        await llm.stop_watching_video_track()
        track.stop()


async def _reported_image_tokens(llm: openai_plugin.Realtime) -> Usage:
    """Ask for one response (its input is the whole conversation, every frame once)."""
    usage: list[UsageEvent] = []

    @llm.events.subscribe
    async def on_usage(event: UsageEvent) -> None:
        usage.append(event)

    await llm.simple_response("What do you see?")
    await wait_until(lambda: bool(usage), 10, "the response's usage")
    return usage[-1].usage


def _image_parts(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        part
        for e in received
        if e["type"] == "conversation.item.create"
        for part in e["item"]["content"]
        if part["type"] == "input_image"
    ]


def _decoded_size(url: str) -> tuple[int, int]:
    raw = base64.b64decode(url.split(",", 1)[1])
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return int(image.shape[1]), int(image.shape[0])


@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_estimate_equals_the_servers_image_tokens_for_two_frame_sizes(
    server: OpenAIRealtimeServer, transport: str
) -> None:
    server.responder = lambda _event: ScriptedReply(text="A test pattern.")
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    llm = openai_plugin.Realtime(
        client=client,
        transport=transport,  # type: ignore[arg-type]
        fps=5,
        image_detail="high",
        output_modalities=["text"],
        retry=RetryPolicy(initial_delay=0.01),
    )
    await llm.connect()
    try:
        # Landscape 1280x720 goes as 1024x576 (765 tokens); portrait 360x1440 as 256x1024 (425).
        await _send_frames(llm, SyntheticVideoTrack(fps=15, width=1280, height=720), 2)
        wide = llm.frames_sent
        await _send_frames(llm, SyntheticVideoTrack(fps=15, width=360, height=1440), 2)
        tall = llm.frames_sent - wide
        conn = server.connections[-1]
        await wait_until(
            lambda: len(_image_parts(conn.received)) == llm.frames_sent, 10, "every frame arrived"
        )
        sizes = [_decoded_size(part["image_url"]) for part in _image_parts(conn.received)]
        assert len(sizes) == wide + tall
        assert llm.image_tokens_sent == sum(openai_image_tokens(w, h, "high") for w, h in sizes)
        if transport == "websocket":
            assert sizes == [(1024, 576)] * wide + [(256, 1024)] * tall
            assert llm.image_tokens_sent == 765 * wide + 425 * tall, (wide, tall)
        # WebRTC: a data channel message has a size limit, so the plugin may send a frame
        # smaller than max_image_side (seen here: 512x288 for some landscape frames); the
        # estimate follows the size really sent.
        assert llm.usage.input_image_estimated == llm.image_tokens_sent

        reported = await _reported_image_tokens(llm)
        assert reported.input_image == llm.image_tokens_sent
        assert llm.usage.input_image == llm.image_tokens_sent
        assert {part.get("detail") for part in _image_parts(conn.received)} == {"high"}
        assert server.errors == []
    finally:
        await llm.close()


async def test_default_low_detail_is_85_a_frame_and_the_server_agrees(
    server: OpenAIRealtimeServer,
) -> None:
    server.responder = lambda _event: ScriptedReply(text="A test pattern.")
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    llm = openai_plugin.Realtime(
        client=client, fps=5, output_modalities=["text"], retry=RetryPolicy(initial_delay=0.01)
    )
    assert llm.image_detail == "low"
    await llm.connect()
    try:
        await _send_frames(llm, SyntheticVideoTrack(fps=15, width=1280, height=720), 3)
        assert llm.image_tokens_sent == 85 * llm.frames_sent
        reported = await _reported_image_tokens(llm)
        assert reported.input_image == llm.image_tokens_sent
    finally:
        await llm.close()


def test_image_detail_is_checked() -> None:
    client = openai.AsyncOpenAI(api_key="test-key", base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="image_detail must be"):
        openai_plugin.Realtime(client=client, image_detail="medium")  # type: ignore[arg-type]


async def test_server_refuses_an_image_it_cannot_decode(server: OpenAIRealtimeServer) -> None:
    client = openai.AsyncOpenAI(api_key="test-key", base_url=server.base_url)
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,AAAA"},
                ],
            }
        )
        async with asyncio.timeout(5):
            async for event in conn:
                if event.type == "error":
                    assert "not a decodable image" in event.error.message
                    break


# -- Gemini: one count a frame at the session's media resolution -----------------------------


@pytest.mark.parametrize(
    ("extra", "per_frame"), [({}, 258), ({"media_resolution": "MEDIA_RESOLUTION_LOW"}, 64)]
)
async def test_gemini_counts_each_frame_at_its_media_resolution(
    extra: dict[str, str], per_frame: int
) -> None:
    async with GeminiLiveServer() as srv:
        llm = gemini.Realtime(model="m", fps=5, client=srv.client(), session_extra=extra)
        await llm.connect()
        track = SyntheticVideoTrack(fps=15, width=640, height=480)
        try:
            await llm.watch_video_track(track)
            await wait_until(lambda: len(srv.frames) >= 3, 20, "3 frames at the server")
            await llm.stop_watching_video_track()
            await wait_until(lambda: len(srv.frames) == llm.frames_sent, 5, "frames arrived")
            assert llm.image_tokens_sent == per_frame * llm.frames_sent
            assert llm.usage.input_image_estimated == llm.image_tokens_sent
        finally:
            track.stop()
            await llm.close()


def test_gemini_refuses_an_unknown_media_resolution() -> None:
    with pytest.raises(ConfigurationError, match="media_resolution must be one of"):
        gemini.Realtime(model="m", client=object(), session_extra={"media_resolution": "8k"})  # type: ignore[arg-type]
