"""The video jitter buffer hands a frame on at its marked last packet (aiortc's waits for the
next frame's first packet: one frame interval later)."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from vision_agents.plugins.webrtc.jitter import MarkerJitterBuffer


def packet(seq: int, timestamp: int, data: bytes, *, marker: bool) -> RtpPacket:
    p = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq, timestamp=timestamp)
    p._data = data  # type: ignore[attr-defined]  # what the receiver's depayloader sets
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[int, JitterFrame]]:
    """(index of the packet that completed it, frame) for each frame handed on."""
    out = []
    for i, p in enumerate(packets):
        _pli, frame = buffer.add(p)
        if frame is not None:
            out.append((i, frame))
    return out


def three_frames(*, marker: bool) -> list[RtpPacket]:
    packets = []
    seq = 100
    for n in range(3):
        for part in range(3):
            packets.append(packet(seq, 3000 * n, bytes([n, part]), marker=marker and part == 2))
            seq += 1
    return packets


def test_a_marked_frame_leaves_with_its_last_packet() -> None:
    frames = feed(MarkerJitterBuffer(capacity=128, is_video=True), three_frames(marker=True))
    assert [i for i, _f in frames] == [2, 5, 8]
    assert [f.data for _i, f in frames] == [b"\0\0\0\1\0\2", b"\1\0\1\1\1\2", b"\2\0\2\1\2\2"]
    assert [f.timestamp for _i, f in frames] == [0, 3000, 6000]


def test_aiortc_alone_waits_for_the_next_frame() -> None:
    frames = feed(JitterBuffer(capacity=128, is_video=True), three_frames(marker=True))
    assert [i for i, _f in frames] == [3, 6]  # the third frame is still waiting


def test_without_markers_frames_complete_as_aiortc_completes_them() -> None:
    frames = feed(MarkerJitterBuffer(capacity=128, is_video=True), three_frames(marker=False))
    assert [i for i, _f in frames] == [3, 6]
    assert [f.data for _i, f in frames] == [b"\0\0\0\1\0\2", b"\1\0\1\1\1\2"]


def test_a_frame_with_a_missing_packet_is_not_handed_on_at_its_marker() -> None:
    packets = three_frames(marker=True)
    del packets[1]  # the first frame's middle packet is lost
    buffer = MarkerJitterBuffer(capacity=128, is_video=True)
    frames = feed(buffer, packets[:2])
    assert frames == []
    # once it arrives late, the frame is whole and leaves at once
    _pli, frame = buffer.add(packet(101, 0, b"\0\1", marker=False))
    assert frame is not None and frame.data == b"\0\0\0\1\0\2"


def test_audio_buffers_keep_aiortc_behaviour() -> None:
    audio = [packet(10 + i, 960 * i, bytes([i]), marker=i == 0) for i in range(8)]
    ours = feed(MarkerJitterBuffer(capacity=16, prefetch=4), audio)
    theirs = feed(JitterBuffer(capacity=16, prefetch=4), audio)
    assert [(i, f.data) for i, f in ours] == [(i, f.data) for i, f in theirs]
