"""Per-participant video figures in serve's /metrics: labelled by session and participant,
set from the workers' stats and gone once the participant or the session is."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.browser.waiting import eventually
from tests.serve_kit import APP, Listener, ServeProcess
from vision_agents.server.metrics import ServerMetrics, VideoSeries


def _samples(metrics: ServerMetrics, prefix: str = "vision_agents_video_") -> dict[str, float]:
    """``name{participant,session}`` -> value, for the video series."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name.startswith(prefix) and not sample.name.endswith("_created"):
                labels = f"{sample.labels['session']}/{sample.labels['participant']}"
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def _camera(who: str, **figures: float | None) -> dict[str, object]:
    entry: dict[str, object] = {
        "participant": who,
        "width": 640,
        "height": 480,
        "fps": 14.8,
        "kbps": 850.0,
        "estimate_bps": 2_500_000,
        "freezes": 0,
        "frozen_s": 0.0,
        "model_frames": 3,
    }
    entry.update(figures)
    return entry


def test_video_series_follow_the_reports_and_go_with_the_session() -> None:
    metrics = ServerMetrics()
    series = VideoSeries(metrics, "s1")
    series.update([_camera("ann"), _camera("bob", estimate_bps=None, model_frames=None)])
    seen = _samples(metrics)
    assert seen["vision_agents_video_receive_fps{s1/ann}"] == pytest.approx(14.8)
    assert seen["vision_agents_video_receive_kbps{s1/ann}"] == 850.0
    assert seen["vision_agents_video_receive_width_pixels{s1/ann}"] == 640
    assert seen["vision_agents_video_receive_height_pixels{s1/ann}"] == 480
    assert seen["vision_agents_video_estimate_bps{s1/ann}"] == 2_500_000
    assert seen["vision_agents_video_freezes_total{s1/ann}"] == 0
    assert seen["vision_agents_video_model_frames_total{s1/ann}"] == 3
    assert "vision_agents_video_estimate_bps{s1/bob}" not in seen  # not known: no sample
    assert "vision_agents_video_model_frames_total{s1/bob}" not in seen

    # Totals become counter increments; a participant who is no longer reported goes.
    series.update([_camera("ann", freezes=2, frozen_s=1.25, model_frames=9, fps=4.0)])
    seen = _samples(metrics)
    assert seen["vision_agents_video_freezes_total{s1/ann}"] == 2
    assert seen["vision_agents_video_frozen_seconds_total{s1/ann}"] == pytest.approx(1.25)
    assert seen["vision_agents_video_model_frames_total{s1/ann}"] == 9
    assert seen["vision_agents_video_receive_fps{s1/ann}"] == 4.0
    assert not [name for name in seen if "/bob}" in name]

    # Another session's series are its own; ending one leaves no series of it behind.
    other = VideoSeries(metrics, "s2")
    other.update([_camera("ann")])
    series.update("not a list")  # ignored
    series.update([{"participant": 7}, "x", _camera("ann", fps=True)])  # odd entries skipped
    series.clear()
    seen = _samples(metrics)
    assert seen and all("{s2/" in name for name in seen), seen


@pytest.fixture
async def servers() -> AsyncIterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    try:
        yield started
    finally:
        for server in started:
            await server.close()


async def _metric(server: ServeProcess, prefix: str) -> float | None:
    reply = await server.call("GET", "/metrics", token=None)
    for line in str(reply.body).splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.timeout(120)
async def test_a_participant_s_camera_shows_in_the_metrics_while_the_session_runs(
    servers: list[ServeProcess],
) -> None:
    server = await ServeProcess.start(APP)
    servers.append(server)
    created = await server.call("POST", "/sessions", json={"call_id": "video-stats"})
    assert created.status == 201, created.body
    session_id = created.body["session_id"]
    listener = await Listener.join(created.body["join_url"])  # a 320x240 camera at 10 fps
    labels = '{participant="browser-'  # then session: labels are written sorted
    try:

        async def receiving() -> bool:
            fps = await _metric(server, "vision_agents_video_receive_fps" + labels)
            return fps is not None and fps > 2

        await eventually(receiving, 45, "the participant's camera in /metrics")
        reply = await server.call("GET", "/metrics", token=None)
        lines = [
            line
            for line in str(reply.body).splitlines()
            if line.startswith("vision_agents_video_receive_width")
        ]
        assert len(lines) == 1, lines
        assert lines[0].startswith("vision_agents_video_receive_width_pixels" + labels), lines
        assert f'session="{session_id}"}} 320.0' in lines[0], lines
        assert await _metric(server, "vision_agents_video_estimate_bps" + labels) is not None
    finally:
        await listener.leave()
    # The participant left: their series go (the session runs on until it is empty).
    await eventually(
        lambda: _gone(server, "vision_agents_video_receive_fps{"), 30, "the series to go"
    )
    deleted = await server.call("DELETE", f"/sessions/{session_id}")
    assert deleted.status in (204, 404), deleted.body


async def _gone(server: ServeProcess, prefix: str) -> bool:
    return await _metric(server, prefix) is None
