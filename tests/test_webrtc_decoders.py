"""Video that a receiver cannot decode in time is dropped before decoding, never delivered late.

The unit tests drive ``bounded_decoder_worker`` with real VP8 and H.264 frames from aiortc's
encoders. The end-to-end test sends 30 fps from one aiortc peer to another whose decoder is
slowed to ~12 fps (as on a machine short of CPU), and compares frame age with aiortc's own
decoder loop, which queues every frame.
"""

from __future__ import annotations

import asyncio
import fractions
import queue
import statistics
import threading
import time
from typing import Any

import aiortc
import aiortc.rtcrtpreceiver
import av
import numpy as np
import pytest
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from vision_agents.plugins.webrtc import decoders
from vision_agents.plugins.webrtc.decoders import bounded_decoder_worker, is_keyframe
from vision_agents.testing import pattern_frame, read_frame_index

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(
    mimeType="video/H264",
    clockRate=90000,
    payloadType=102,
    parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def _encoded_video(
    codec: RTCRtpCodecParameters, count: int, keyframes: set[int]
) -> list[JitterFrame]:
    """``count`` frames showing their index, encoded and depayloaded as a receiver sees them."""
    encoder = get_encoder(codec)
    out = []
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(pattern_frame(i), format="rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=i in keyframes)
        out.append(JitterFrame(b"".join(depayload(codec, p) for p in payloads), timestamp))
    return out


class _WatchedQueue(queue.Queue[Any]):
    """A queue that says when its consumer is waiting on it empty (all taken and handled)."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self.empty():
            self.idle.set()
        return super().get(block, timeout)


async def _run_worker(
    items: list[Any],
    *,
    max_backlog: int,
    feed_later: list[list[Any]] | None = None,
    get_decoder: Any = None,
) -> tuple[list[Any], threading.Event]:
    """Runs the worker in a thread over ``items`` (queued before it starts), then each batch
    of ``feed_later`` once the worker has handled all before it; returns what it delivered."""
    loop = asyncio.get_running_loop()
    input_q = _WatchedQueue()
    output_q: asyncio.Queue[Any] = asyncio.Queue()
    decode_error = threading.Event()
    for item in items:
        input_q.put(item)
    thread = asyncio.ensure_future(
        asyncio.to_thread(
            bounded_decoder_worker,
            loop,
            input_q,
            output_q,
            decode_error,
            max_backlog=max_backlog,
            get_decoder=get_decoder,
        )
    )
    for batch in [*(feed_later or []), [None]]:
        assert await asyncio.to_thread(input_q.idle.wait, 10), "the worker never caught up"
        input_q.idle.clear()
        for item in batch:
            input_q.put(item)
    await asyncio.wait_for(thread, 30)
    delivered: list[Any] = []
    while True:
        frame = await asyncio.wait_for(output_q.get(), 5)
        if frame is None:
            return delivered, decode_error
        delivered.append(frame)


@pytest.mark.parametrize("codec", [VP8, H264], ids=["vp8", "h264"])
def test_keyframes_are_told_apart(codec: RTCRtpCodecParameters) -> None:
    frames = _encoded_video(codec, 6, keyframes={0, 4})
    assert [is_keyframe(codec.name, f.data) for f in frames] == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert is_keyframe("AV1", frames[0].data) is None


@pytest.mark.parametrize("codec", [VP8, H264], ids=["vp8", "h264"])
async def test_a_backlog_skips_to_its_newest_keyframe_undecoded(
    codec: RTCRtpCodecParameters,
) -> None:
    frames = _encoded_video(codec, 40, keyframes={0, 25})
    before = decoders.stats.dropped
    delivered, _ = await _run_worker([(codec, f) for f in frames], max_backlog=2)
    # Frame 0 is taken, 39 wait: everything before keyframe 25 goes undecoded.
    assert [read_frame_index(f) for f in delivered] == list(range(25, 40))
    assert decoders.stats.dropped - before == 25


async def test_without_a_backlog_every_frame_is_decoded() -> None:
    frames = _encoded_video(VP8, 30, keyframes={0})
    delivered, decode_error = await _run_worker([(VP8, f) for f in frames], max_backlog=100)
    assert [read_frame_index(f) for f in delivered] == list(range(30))
    assert not decode_error.is_set()


async def test_a_backlog_without_a_keyframe_is_dropped_and_a_keyframe_asked_for() -> None:
    frames = _encoded_video(VP8, 40, keyframes={0, 30})
    asked = decoders.stats.keyframe_requests
    # Frames 0..20 wait: the only keyframe is the oldest, too far back to catch up from, so
    # all are dropped; then 21..29 come one by one (no keyframe: dropped while waiting for
    # one), then the keyframe 30 and what follows it.
    later = [[(VP8, f)] for f in frames[21:30]] + [[(VP8, f) for f in frames[30:]]]
    delivered, decode_error = await _run_worker(
        [(VP8, f) for f in frames[:21]], max_backlog=2, feed_later=later
    )
    assert [read_frame_index(f) for f in delivered] == list(range(30, 40))
    assert decode_error.is_set()  # the receiver sends a PLI on its next packet
    assert decoders.stats.keyframe_requests > asked


async def test_a_burst_without_a_keyframe_is_decoded_when_that_is_quick() -> None:
    # A scene change: a large frame paced out by the sender, the frames behind it arriving
    # together. Frames 0..3 come one by one, then 4..10 at once, with no keyframe among them.
    frames = _encoded_video(VP8, 11, keyframes={0})
    bursts, asked = decoders.stats.bursts_decoded, decoders.stats.keyframe_requests
    later = [[(VP8, f)] for f in frames[1:4]] + [[(VP8, f) for f in frames[4:]]]
    delivered, decode_error = await _run_worker([(VP8, frames[0])], max_backlog=2, feed_later=later)
    assert [read_frame_index(f) for f in delivered] == list(range(11))
    assert decoders.stats.bursts_decoded == bursts + 1
    assert decoders.stats.keyframe_requests == asked and not decode_error.is_set()


async def test_the_same_burst_is_dropped_by_a_decoder_too_slow_to_get_through_it() -> None:
    frames = _encoded_video(VP8, 11, keyframes={0})
    asked = decoders.stats.keyframe_requests
    later = [[(VP8, f)] for f in frames[1:4]] + [[(VP8, f) for f in frames[4:]]]
    delivered, decode_error = await _run_worker(
        [(VP8, frames[0])],
        max_backlog=2,
        feed_later=later,
        get_decoder=lambda c: _SlowDecoder(c, 0.03),  # 7 frames: 0.21 s, over the budget
    )
    assert [read_frame_index(f) for f in delivered] == list(range(4))
    assert decode_error.is_set() and decoders.stats.keyframe_requests == asked + 1


async def test_audio_is_never_dropped() -> None:
    encoder = get_encoder(OPUS)
    packets: list[tuple[RTCRtpCodecParameters, JitterFrame]] = []
    for i in range(50):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1920), dtype=np.int16), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, i * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payloads, timestamp = encoder.encode(frame)
        packets.extend((OPUS, JitterFrame(depayload(OPUS, p), timestamp)) for p in payloads)
    delivered, _ = await _run_worker(packets, max_backlog=2)
    assert len(delivered) == len(packets)


class _Camera(aiortc.VideoStreamTrack):
    """30 fps frames carrying their index; remembers when each was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: dict[int, float] = {}
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(pattern_frame(self._index), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.sent_at[self._index] = time.monotonic()
        self._index += 1
        return frame


class _SlowDecoder:
    """A real decoder that takes at least ``seconds`` a frame: a machine short of CPU."""

    def __init__(self, codec: Any, seconds: float) -> None:
        self._inner = get_decoder(codec)
        self._seconds = seconds

    def decode(self, encoded: Any) -> Any:
        started = time.monotonic()
        frames = self._inner.decode(encoded)
        time.sleep(max(0.0, self._seconds - (time.monotonic() - started)))
        return frames


async def _frame_ages(worker: Any, seconds: float) -> tuple[list[float], int]:
    """Ages (s) of the frames a receiver with ``worker`` as its decoder loop delivers."""
    original = aiortc.rtcrtpreceiver.decoder_worker
    aiortc.rtcrtpreceiver.decoder_worker = worker
    sender, receiver = aiortc.RTCPeerConnection(), aiortc.RTCPeerConnection()
    camera = _Camera()
    try:
        sender.addTrack(camera)
        got: asyncio.Future[aiortc.MediaStreamTrack] = asyncio.get_running_loop().create_future()

        @receiver.on("track")
        def _track(track: aiortc.MediaStreamTrack) -> None:
            if not got.done():
                got.set_result(track)

        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        track = await asyncio.wait_for(got, 10)
        await asyncio.wait_for(track.recv(), 10)  # connected and decoding
        ages: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(track.recv(), 10)
            assert isinstance(frame, av.VideoFrame)
            index = read_frame_index(frame)
            if index in camera.sent_at:
                ages.append(time.monotonic() - camera.sent_at[index])
        return ages, len(camera.sent_at)
    finally:
        aiortc.rtcrtpreceiver.decoder_worker = original
        await sender.close()
        await receiver.close()


@pytest.mark.timeout(90)
async def test_a_receiver_that_cannot_keep_up_delivers_fresh_frames_instead_of_late_ones() -> None:
    original = decoders.aiortc_decoder_worker  # the call server may have replaced it already
    slow = 1 / 12  # 12 frames a second at most, against 30 sent

    def queued(loop: Any, input_q: Any, output_q: Any, decode_error: Any) -> None:
        # aiortc's loop makes its decoder with this module-level name (not exported).
        real = getattr(aiortc.rtcrtpreceiver, "get_decoder")  # noqa: B009
        setattr(aiortc.rtcrtpreceiver, "get_decoder", lambda c: _SlowDecoder(c, slow))  # noqa: B010
        try:
            original(loop, input_q, output_q, decode_error)
        finally:
            setattr(aiortc.rtcrtpreceiver, "get_decoder", real)  # noqa: B010

    def bounded(loop: Any, input_q: Any, output_q: Any, decode_error: Any) -> None:
        bounded_decoder_worker(
            loop, input_q, output_q, decode_error, get_decoder=lambda c: _SlowDecoder(c, slow)
        )

    bounded_ages, sent = await _frame_ages(bounded, 6.0)
    queued_ages, _ = await _frame_ages(queued, 6.0)
    bounded_p95 = statistics.quantiles(bounded_ages, n=20)[-1]
    queued_p95 = statistics.quantiles(queued_ages, n=20)[-1]
    print(
        f"frame age p95: bounded {bounded_p95 * 1000:.0f} ms ({len(bounded_ages)} frames), "
        f"aiortc's queue {queued_p95 * 1000:.0f} ms ({len(queued_ages)} frames), {sent} sent"
    )
    # aiortc's own loop falls further behind every second (about 0.6 s per second here);
    # the bounded one stays within a few frames plus a keyframe request's round trip.
    assert queued_p95 > 1.5, f"the slowed decoder did not fall behind: p95 {queued_p95:.2f} s"
    assert bounded_p95 < 0.5, f"bounded decoding delivered old frames: p95 {bounded_p95:.2f} s"
    assert len(bounded_ages) >= 12, f"only {len(bounded_ages)} frames in 6 s ({sent} sent)"


def test_a_new_video_stream_sends_extra_keyframes_early_and_again_after_a_restart() -> None:
    """A browser can lose a stream's first keyframe (it reached it before DTLS finished on
    its side): the call server's encoders send two more, 0.5 s and 2 s in."""
    from vision_agents.plugins.webrtc.encoders import ResilientEncoder

    encoder = ResilientEncoder(VP8, get_encoder)

    def keyframes(pts: list[int]) -> list[int]:
        out = []
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i), format="rgb24")
            frame.pts, frame.time_base = p, fractions.Fraction(1, 90000)
            payloads, _ = encoder.encode(frame)
            if is_keyframe("VP8", b"".join(depayload(VP8, x) for x in payloads)):
                out.append(i)
        return out

    # 3 s at 30 fps: keyframes at the start, 0.5 s and 2 s in (frames 0, 15, 60), no others.
    assert keyframes([i * 3000 for i in range(90)]) == [0, 15, 60]
    # A slot re-pointed at another source starts an earlier timeline: the same again.
    assert keyframes([i * 3000 for i in range(90)]) == [0, 15, 60]
