"""The call server's bandwidth estimate (REMB) for a browser's camera: its rule, fed with time
as a parameter, and that it is installed on our connections only."""

from __future__ import annotations

import aiortc
import pytest
from aiortc import rate

from vision_agents.plugins.webrtc.bandwidth import (
    MIN_BPS,
    START_BPS,
    LossWindow,
    ModelBitrateEstimator,
    ModelRateControl,
    use_model_estimator,
)

NORMAL, OVER, UNDER = (
    rate.BandwidthUsage.NORMAL,
    rate.BandwidthUsage.OVERUSING,
    rate.BandwidthUsage.UNDERUSING,
)


def feed(
    control: ModelRateControl | rate.AimdRateControl,
    start_ms: int,
    seconds: float,
    usage: rate.BandwidthUsage,
    throughput: int | None,
) -> int:
    """Updates every 500 ms, as the estimator makes them; returns the last estimate."""
    estimate = 0
    for step in range(int(seconds * 2)):
        sent = throughput if throughput is not None else None
        result = control.update(usage, sent, start_ms + step * 500)
        estimate = result if result is not None else estimate
    return estimate


def test_starts_high_and_a_thin_stream_does_not_pull_it_down() -> None:
    ours = ModelRateControl()
    assert ours.update(NORMAL, None, 0) == START_BPS  # with the first packet
    # A black or still camera: 30 kbit/s arriving for 20 s, no queue on the path.
    assert feed(ours, 500, 20, NORMAL, 30_000) == START_BPS
    # aiortc's own rule, fed the same, settles on what arrives: the browser then sends that.
    stock = rate.AimdRateControl()
    assert feed(stock, 0, 20, NORMAL, 30_000) <= 1.5 * 30_000 + 10_000 + 10_000


def test_follows_a_full_link_down_and_climbs_back_within_seconds() -> None:
    control = ModelRateControl()
    feed(control, 0, 5, NORMAL, 1_200_000)
    # The link narrows to 300 kbit/s: what arrives is what it carries, and the queue grows.
    down = feed(control, 5_000, 3, OVER, 300_000)
    assert down <= 0.85 * 300_000 + 1
    assert control.falls >= 1
    # Still full: never above what the link carries for long (no flood), never below the floor.
    steady = [
        feed(control, 8_000 + i * 1000, 1, OVER if i % 2 else NORMAL, 280_000) for i in range(8)
    ]
    assert all(MIN_BPS <= s <= 400_000 for s in steady), steady
    # The link recovers: the browser sends what it is allowed, no queue. Within 5 s the
    # estimate is back where it fell from (the start); at 1.5x a second it took 7.
    now, estimate = 16_000, control.estimate
    for _ in range(10):
        estimate = control.update(NORMAL, estimate, now)
        now += 500
    assert estimate >= START_BPS, estimate


def test_underuse_is_room_to_grow_and_an_unused_estimate_does_not_grow() -> None:
    control = ModelRateControl()
    feed(control, 0, 1, NORMAL, 100_000)
    fell = feed(control, 1_000, 1, OVER, 400_000)
    grown = feed(control, 4_000, 4, UNDER, fell)  # the queue drains, the sender uses it all
    assert grown > 2 * fell
    # The sender has little to send: the estimate climbs back to where it fell from (the
    # start), one step past it at most, and no further.
    held = feed(control, 8_000, 20, NORMAL, 50_000)
    assert START_BPS <= held <= START_BPS * 1.25 + 1000, held
    assert feed(control, 28_000, 20, NORMAL, 50_000) == held


def test_loss_without_a_growing_queue_is_a_full_link_too() -> None:
    control = ModelRateControl()
    feed(control, 0, 2, NORMAL, 1_000_000)
    control.loss = 0.6  # a shallow buffer: always full, so no delay growth to see
    assert feed(control, 2_000, 1, NORMAL, 300_000) <= 0.85 * 300_000 + 1


def test_loss_window_counts_missing_sequence_numbers_and_wraps() -> None:
    window = LossWindow()
    loss = 0.0
    for i in range(100):
        sequence = (65500 + 2 * i) & 0xFFFF  # every other packet lost, across the wrap
        loss = window.add(sequence, i * 5)
    assert 0.45 <= loss <= 0.55
    steady = LossWindow()
    assert max(steady.add((65500 + i) & 0xFFFF, i * 5) for i in range(100)) == 0.0


def test_after_a_fall_it_climbs_back_to_where_it_fell_from_even_while_little_is_sent() -> None:
    control = ModelRateControl()
    feed(control, 0, 2, NORMAL, 1_500_000)
    before = control.estimate
    feed(control, 2_000, 1, OVER, 200_000)  # a brief squeeze
    assert control.estimate <= 0.85 * 200_000 + 1 or control.estimate == MIN_BPS
    # The browser's own controller climbs slowly: it sends far less than half the estimate.
    back = feed(control, 3_000, 10, NORMAL, 120_000)
    assert back >= before, (back, before)
    assert feed(control, 13_000, 10, NORMAL, 120_000) == back  # and no further, unused


def test_the_packets_a_stall_swallowed_are_not_counted_as_loss() -> None:
    window = LossWindow()
    for i in range(50):
        window.add(i, i * 10)
    # 2 s with nothing, then the stream resumes 200 sequence numbers on.
    assert window.add(250, 490 + 2000) == 0.0
    assert max(window.add(250 + i, 2490 + i * 10) for i in range(1, 50)) == 0.0


def test_a_stall_starts_the_delay_detector_afresh() -> None:
    estimator = ModelBitrateEstimator()
    detector = estimator.detector
    estimator.add(arrival_time_ms=1_000, abs_send_time=0, payload_size=1000, ssrc=1)
    estimator.add(arrival_time_ms=1_010, abs_send_time=655, payload_size=1000, ssrc=1)
    assert estimator.detector is detector
    estimator.add(arrival_time_ms=3_500, abs_send_time=1310, payload_size=1000, ssrc=1)
    assert estimator.detector is not detector


async def test_installed_on_the_given_connection_only() -> None:
    ours, theirs = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    try:
        for pc in (ours, theirs):
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        installed = use_model_estimator(ours)
        assert len(installed) == 1
        attribute = "_RTCRtpReceiver__remote_bitrate_estimator"
        ours_video = next(t.receiver for t in ours.getTransceivers() if t.kind == "video")
        theirs_video = next(t.receiver for t in theirs.getTransceivers() if t.kind == "video")
        assert getattr(ours_video, attribute) is installed[0]
        # A connection made elsewhere in the process keeps aiortc's own estimator.
        stock = getattr(theirs_video, attribute)
        assert type(stock) is rate.RemoteBitrateEstimator
        assert "_handle_rtp_packet" not in vars(theirs_video)
    finally:
        await ours.close()
        await theirs.close()


def test_an_untested_aiortc_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import vision_agents.plugins.webrtc.bandwidth as bandwidth

    monkeypatch.setattr(bandwidth, "version", lambda name: "9.0.0")
    with pytest.raises(RuntimeError, match=r"aiortc 9\.0\.0 is installed"):
        use_model_estimator(aiortc.RTCPeerConnection())
