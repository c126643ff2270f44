"""The local camera path: FFmpeg test patterns and files go through the same code as a device."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import MediaStreamError

from tests.conftest import wait_until
from vision_agents.core import Agent, User
from vision_agents.plugins.local import (
    CameraTrack,
    DeviceNotFoundError,
    LocalEdge,
    VideoPreview,
    list_cameras,
    preview_mode,
    resolve_camera,
    window_available,
)
from vision_agents.testing import FakeRealtime, make_test_video, read_frame_index, tone, write_wav


async def _frames_for(track: CameraTrack, seconds: float) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frames.append(await asyncio.wait_for(track.recv(), 5))
        except MediaStreamError:
            break
    return frames


async def test_lavfi_test_pattern_plays_in_real_time() -> None:
    source = resolve_camera("lavfi:testsrc2=size=320x240:rate=30")
    assert (source.format, source.live) == ("lavfi", False)
    track = CameraTrack(source)
    await track.start()
    try:
        started = time.monotonic()
        frames = await _frames_for(track, 1.5)
        elapsed = time.monotonic() - started
    finally:
        track.stop()
    # Paced at its timestamps like a device: ~30 fps, not as fast as FFmpeg can generate.
    fps = len(frames) / elapsed
    assert 20 <= fps <= 36, fps
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    pts = [f.pts for f in frames if f.pts is not None]
    assert len(pts) == len(frames) and pts == sorted(pts) and len(set(pts)) == len(pts)
    assert track.readyState == "ended"


async def test_video_file_plays_every_frame_in_order_then_ends(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "clip.mkv", seconds=1.5, fps=20)
    track = CameraTrack(resolve_camera(str(clip)))
    started = time.monotonic()
    frames = await _frames_for(track, 10)
    elapsed = time.monotonic() - started
    indexes = [read_frame_index(f) for f in frames]
    # Every frame is delivered in order or, when this loop fell behind (a loaded machine),
    # counted as dropped, as a real camera drops them; never reordered or repeated.
    assert indexes == sorted(set(indexes)) and indexes[0] == 0 and indexes[-1] == 29, indexes
    assert len(indexes) + track.dropped == 30 and track.dropped <= 3, (indexes, track.dropped)
    assert 1.2 <= elapsed <= 4.0, elapsed  # real time, then the track ends
    assert track.readyState == "ended"


async def test_looping_file_keeps_going_with_rising_timestamps(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "clip.mkv", seconds=0.5, fps=20)
    track = CameraTrack(resolve_camera(clip), loop=True)
    try:
        frames = await _frames_for(track, 1.6)
    finally:
        track.stop()
    indexes = [read_frame_index(f) for f in frames]
    assert indexes.count(0) >= 2, indexes
    pts = [f.pts for f in frames if f.pts is not None]
    assert len(pts) == len(frames) and pts == sorted(pts)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="V4L2 device naming is Linux's")
async def test_missing_device_goes_through_the_same_path_and_names_the_cameras() -> None:
    cameras = list_cameras()
    missing = max([c.index for c in cameras], default=-1) + 50
    source = resolve_camera(missing)
    assert (source.url, source.format) == (f"/dev/video{missing}", "v4l2")
    assert source.options == {"video_size": "640x480", "framerate": "30"}
    with pytest.raises(DeviceNotFoundError, match=rf"/dev/video{missing}.*cameras: "):
        await CameraTrack(source).start()
    with pytest.raises(DeviceNotFoundError, match=r"no camera named 'No Such Cam'; cameras: "):
        resolve_camera("No Such Cam")


async def test_preview_page_serves_the_agents_video() -> None:
    assert preview_mode("auto") == ("window" if window_available() else "page")
    with pytest.raises(ValueError, match="preview must be one of auto, window, page, none"):
        preview_mode("tv")
    preview = VideoPreview("page")
    track = CameraTrack(resolve_camera("lavfi:testsrc2=size=320x240:rate=15"))
    try:
        await preview.show(track)
        assert preview.url is not None and preview.url.startswith("http://127.0.0.1:")
        await wait_until(lambda: bool(preview.frames), 10, "the preview's first frame")
        page = await asyncio.to_thread(_get, preview.url)
        jpeg = await asyncio.to_thread(_get, preview.url + "frame.jpg")
        stream_head = await asyncio.to_thread(_get_head, preview.url + "stream")
    finally:
        await preview.close()
        track.stop()
    assert b'<img src="/stream"' in page
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 1000
    assert b"Content-Type: image/jpeg" in stream_head and b"--frame" in stream_head


async def test_agent_sees_the_camera_and_hears_a_wav_through_local_edge(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "mic.wav", tone(440, 1.0, sample_rate=16000))
    edge = LocalEdge(
        camera="lavfi:testsrc2=size=320x240:rate=30",
        microphone=wav,
        speaker=None,
        preview="none",
    )
    model = FakeRealtime(fps=5)
    agent = Agent(edge=edge, agent_user=User(name="Ada"), llm=model)
    async with agent.join(await agent.create_call("default", "local")):
        await asyncio.sleep(1.5)
    assert len(model.frames) >= 4
    assert model.audio_received >= 1.0
    assert edge.camera_track is not None and edge.camera_track.readyState == "ended"


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def _get_head(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read(3000))
