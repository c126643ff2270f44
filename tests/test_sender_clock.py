"""Dating received frames on their sender's clock (RTCP sender reports), and keeping one
sender's streams in step in a recording.

The unit tests check the mapping's arithmetic (wraps included) and the recorder's grouping;
the end-to-end test sends audio and video from one aiortc peer to another and checks that
each received frame is dated to within a few tens of milliseconds of when it was sent, through
aiortc's real RTCP path (so an aiortc that moves what we tap fails here, not in a recording).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from types import SimpleNamespace

import aiortc
import av
import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from tests.conftest import wait_until
from vision_agents.core.edge.sender_clock import SenderClock, watch_receiver, watch_track
from vision_agents.core.recording.timing import SenderGroup

AUDIO = fractions.Fraction(1, 48000)
NTP_1900_TO_1970 = 2_208_988_800


def _ntp(seconds: float) -> int:
    return int(seconds * (1 << 32))


def test_a_frame_is_dated_from_the_latest_report() -> None:
    origin = 1_000_000
    clock = SenderClock(lambda: origin)
    assert clock.sender_time(0, AUDIO) is None  # no report yet
    clock.note_report(_ntp(5000.0), origin + 48000)  # pts 48000 was sent at 5000 s
    assert clock.sender_time(48000, AUDIO) == pytest.approx(5000.0, abs=1e-6)
    assert clock.sender_time(48000 + 960, AUDIO) == pytest.approx(5000.02, abs=1e-6)
    assert clock.sender_time(0, AUDIO) == pytest.approx(4999.0, abs=1e-6)
    video = fractions.Fraction(1, 90000)
    assert clock.sender_time(48000 + 9000, video) == pytest.approx(5000.1, abs=1e-6)
    clock.note_report(_ntp(5010.0), origin + 48000 * 11)  # a newer report replaces it
    assert clock.sender_time(48000 * 11, AUDIO) == pytest.approx(5010.0, abs=1e-6)
    assert clock.reports == 2


def test_wraps_of_the_rtp_timestamp_are_followed() -> None:
    origin = (1 << 32) - 4800  # the sender's timestamps wrap 0.1 s after the first frame
    clock = SenderClock(lambda: origin)
    clock.note_report(_ntp(100.0), 48000 - 4800)  # pts 48000, one second in, after the wrap
    assert clock.sender_time(48000, AUDIO) == pytest.approx(100.0, abs=1e-6)
    assert clock.sender_time(4000, AUDIO) == pytest.approx(100.0 - 44000 / 48000, abs=1e-6)
    # Hours later (pts past 2**32 after unwrapping), the same report's arithmetic still holds.
    later = (1 << 32) + 48000
    clock.note_report(_ntp(200.0), (origin + later) % (1 << 32))
    assert clock.sender_time(later + 480, AUDIO) == pytest.approx(200.01, abs=1e-6)


def test_a_retransmission_streams_reports_do_not_date_the_media() -> None:
    clock = SenderClock(lambda: 0)
    clock.media_ssrc = 1111
    clock.note_report(_ntp(50.0), 7_000_000, ssrc=2222)
    assert not clock.reported and clock.sender_time(48000, AUDIO) is None
    clock.note_report(_ntp(50.0), 48000, ssrc=1111)
    assert clock.reported
    clock.note_report(_ntp(50.0), 7_000_000, ssrc=2222)  # its RTX stream: other timestamps
    assert clock.sender_time(48000, AUDIO) == pytest.approx(50.0, abs=1e-6)


def test_no_date_without_a_wall_clock_an_origin_or_rtp_units() -> None:
    clock = SenderClock(lambda: None)
    clock.note_report(_ntp(5.0), 0)
    assert clock.sender_time(0, AUDIO) is None  # no frame decoded yet: no origin
    clock = SenderClock(lambda: 0)
    clock.note_report(0, 1234)  # "no wall clock" (RFC 3550)
    assert clock.sender_time(0, AUDIO) is None and clock.reports == 0
    clock.note_report(_ntp(5.0), 0)
    assert clock.sender_time(3, fractions.Fraction(3, 1000)) is None
    assert clock.sender_time(None, AUDIO) is None


def test_frames_in_another_time_base_are_dated_on_the_streams_rtp_clock() -> None:
    # PyAV's decoders may hand out a video frame's pts in microseconds, not 90 kHz ticks.
    origin = 3_000_000_000
    clock = SenderClock(lambda: origin, clock_rate=90000)
    clock.note_report(_ntp(700.0), (origin + 90000) % (1 << 32))  # pts 1 s in, at 700 s
    micro = fractions.Fraction(1, 1_000_000)
    assert clock.sender_time(1_000_000, micro) == pytest.approx(700.0, abs=1e-6)
    assert clock.sender_time(1_033_333, micro) == pytest.approx(700.033333, abs=1e-5)
    assert clock.sender_time(93000, fractions.Fraction(1, 90000)) == pytest.approx(
        700.0333, abs=1e-4
    )
    with pytest.raises(ValueError, match="clock_rate must be positive, got 0"):
        SenderClock(lambda: 0, clock_rate=0)


class _Receiver:
    """What ``watch_receiver`` reads of an aiortc receiver: its kind, codecs, timestamp mapper
    and the two packet handlers the transport calls."""

    def __init__(self) -> None:
        self.track = aiortc.mediastreams.VideoStreamTrack()
        self._RTCRtpReceiver__timestamp_mapper = SimpleNamespace(_origin=0)
        self._RTCRtpReceiver__codecs = {
            96: RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
            97: RTCRtpCodecParameters(
                mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
            ),
        }
        self.handled: list[int] = []

    async def _handle_rtcp_packet(self, packet: object) -> None:
        pass

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.handled.append(packet.ssrc)


async def test_bandwidth_probes_on_the_retransmission_stream_do_not_name_the_media() -> None:
    # Chromium's first video packets are often padding-only probes on its RTX stream, and a
    # retransmission may come before much media has: neither names the stream that is dated.
    receiver = _Receiver()
    clock = watch_receiver(receiver)  # type: ignore[arg-type]
    assert clock.clock_rate == 90000
    transport_calls = receiver._handle_rtp_packet
    await transport_calls(RtpPacket(payload_type=97, ssrc=222), 0)
    await transport_calls(RtpPacket(payload_type=97, ssrc=222, payload=b"\x00\x01old"), 1)
    assert clock.media_ssrc is None
    await transport_calls(RtpPacket(payload_type=96, ssrc=111, payload=b"\x90vp8"), 2)
    assert clock.media_ssrc == 111
    assert receiver.handled == [222, 222, 111]  # every packet still reaches aiortc
    assert "_handle_rtp_packet" not in receiver.__dict__  # the tap stepped aside


def test_a_sender_group_keeps_its_streams_in_step_despite_different_delays() -> None:
    group = SenderGroup()
    # Audio arrives 20 ms after capture, video 70 ms (encoding, more packets), each with some
    # jitter: a flash and a beep captured together (frame 24) must land at the same time.
    placed: dict[str, float] = {}
    for i in range(100):
        at = 1000.0 + i * 0.02
        audio = group.place("mic", at, at - 990.0 + 0.020 + (0.004 if i % 3 else 0.0))
        if i % 2 == 0:  # 25 fps
            video = group.place("cam", at, at - 990.0 + 0.070 + (0.010 if i % 4 else 0.0))
            if i == 24:
                placed["beep"], placed["flash"] = audio, video
    assert placed["flash"] == pytest.approx(placed["beep"], abs=1e-4)
    # Both wait for the later stream (its least-delayed frames): nothing lands too late.
    assert placed["beep"] == pytest.approx(10.48 + 0.070, abs=1e-4)


def test_a_pair_stays_together_while_the_offsets_settle() -> None:
    # The first video frames come 250 ms after capture, later ones 40 ms (an encoder and a
    # network warming up); audio always takes 20 ms. A beep and a flash captured together at
    # 0.3 s arrive 100 ms apart, while the video's offset is still falling.
    group = SenderGroup()
    placed: dict[str, float] = {}
    events = [(k * 0.02, "mic", 0.020) for k in range(100)]
    events += [(k / 30, "cam", max(0.040, 0.250 - 0.42 * k / 30)) for k in range(60)]
    for at, source, delay in sorted(events, key=lambda e: e[0] + e[2]):
        where = group.place(source, 500.0 + at, at + delay)
        if abs(at - 0.3) < 1e-9:
            placed[source] = where
    # Apart by at most what the offset settles in the 0.1 s between them (0.05 s a second).
    assert placed["cam"] == pytest.approx(placed["mic"], abs=0.008), placed
    # Settled (0.21 s at 0.05 s a second), the sender is placed with its video's least delay.
    assert group.place("mic", 505.0, 5.02) == pytest.approx(5.040, abs=0.001)
    with pytest.raises(ValueError, match="settle_per_s must not be negative, got -1"):
        SenderGroup(settle_per_s=-1)


def test_streams_that_fall_behind_move_later_together() -> None:
    group = SenderGroup()
    for i in range(50):
        at = i * 0.02
        group.place("mic", 100.0 + at, at + 0.02)
        group.place("cam", 100.0 + at, at + 0.05)
    # From 1 s on, everything comes 0.8 s later; the recording has written up to 0.5 s ago.
    beep = group.place("mic", 101.0, 1.8, not_before=1.3)
    flash = group.place("cam", 101.0, 1.85, not_before=1.35)
    assert group.raises == 1 and beep == pytest.approx(1.8)
    assert flash == pytest.approx(beep, abs=0.005)  # then settling: 0.05 s a second
    assert group.place("mic", 101.02, 1.82, not_before=1.32) == pytest.approx(1.82, abs=0.005)
    # Far behind (2 s), it is moved once too, not back and forth with each frame.
    for i in range(100):
        at = 101.04 + i * 0.02
        group.place("mic", at, at - 99.0 + 2.0, not_before=at - 99.0 + 1.5)
    assert group.raises == 2


def test_a_stream_far_out_of_step_keeps_its_own_placement() -> None:
    group = SenderGroup()
    for i in range(10):
        group.place("mic", 100.0 + i * 0.02, 10.0 + i * 0.02)
    # A camera whose sender times say it is 5 s early: placed by its own arrival, not moved 5 s.
    cam = group.place("cam", 100.0, 15.0)
    assert cam == pytest.approx(15.0, abs=1e-6)
    group.remove("cam")
    assert group.place("mic", 100.2, 10.2) == pytest.approx(10.2, abs=1e-6)


@pytest.mark.timeout(60)
async def test_frames_from_a_real_peer_are_dated_on_its_clock() -> None:
    sender, receiver = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    sender.addTrack(aiortc.mediastreams.AudioStreamTrack())
    sender.addTrack(aiortc.mediastreams.VideoStreamTrack())
    received: list[aiortc.MediaStreamTrack] = []
    receiver.on("track", received.append)
    try:
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        clocks = {track.kind: watch_track(receiver, track) for track in received}
        assert set(clocks) == {"audio", "video"} and all(clocks.values())
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)

        async def dated(track: aiortc.MediaStreamTrack) -> list[float]:
            """How far each frame's sender time is from when it arrived, once reports came."""
            clock = clocks[track.kind]
            assert clock is not None
            errors: list[float] = []
            while len(errors) < 20:
                frame = await asyncio.wait_for(track.recv(), 10)
                assert isinstance(frame, av.AudioFrame | av.VideoFrame)
                sent = clock.sender_time(frame.pts, frame.time_base)
                if sent is not None:  # the sender's NTP clock is this machine's wall clock
                    errors.append(time.time() + NTP_1900_TO_1970 - sent)
            return errors

        results = await asyncio.gather(*(dated(t) for t in received))
        await wait_until(lambda: all(c and c.reports for c in clocks.values()), 10, "reports")
        assert all(c and c.media_ssrc for c in clocks.values())
        for track, errors in zip(received, results, strict=True):
            print(track.kind, [round(1000 * e) for e in errors[:8]], "ms")
            # Sent, then received a little later: never dated in the future, never long ago.
            assert all(-0.005 < e < 0.25 for e in errors), (track.kind, errors)
    finally:
        await sender.close()
        await receiver.close()
