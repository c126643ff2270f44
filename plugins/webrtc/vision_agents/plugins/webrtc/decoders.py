"""Video decoders that fall behind drop frames instead of delivering them late.

aiortc decodes every received frame in one thread per receiver, fed by an unbounded queue.
When the machine is short of CPU that queue grows, and every frame that comes out is older
than the one before: the model sees the past, seconds late. ``install_bounded_decoders``
(process-wide, once) gives aiortc's receivers a decoder loop that keeps video fresh:

- while at most ``max_backlog`` encoded video frames wait, each is decoded, as before;
- when more wait, everything before the newest waiting keyframe is thrown away undecoded
  (decoding it would only produce stale pictures) and the rest is decoded to catch up, if it
  is at most ``MAX_CATCH_UP`` frames;
- with no keyframe waiting (or one too far back), a backlog this decoder can get through in
  ``CATCH_UP_BUDGET_S`` (judged by how long its recent decodes took) is decoded: such a
  backlog is a burst from the network, not a decoder that falls behind. A scene change makes a
  large frame that the sender paces out, and the frames behind it arrive together (3-7 of
  them at 30 fps, measured with Chromium); throwing them away would freeze the picture, the
  change included, until a keyframe came (~250 ms);
- otherwise every waiting frame is thrown away, and so is each that arrives until a keyframe
  does; the sender is asked for one (a PLI, through the receiver's ``decode_error`` event,
  asked again every ``PLI_INTERVAL_S`` while waiting).

Dropping before decode is what saves the CPU: a dropped frame costs a queue operation, not a
VP8 or H.264 decode. Audio is never dropped. Frames of codecs whose keyframes we cannot tell
(neither VP8 nor H.264) are all decoded.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiortc.codecs
import aiortc.rtcrtpreceiver
import av

logger = logging.getLogger(__name__)

MAX_BACKLOG = 2  # encoded video frames allowed to wait: ~67 ms at 30 fps
MAX_CATCH_UP = 15  # frames decoded from a waiting keyframe to catch up: 0.5 s at 30 fps
CATCH_UP_BUDGET_S = 0.1  # decode time a backlog without a keyframe may take to get through
PLI_INTERVAL_S = 0.5
_DECODE_S_GUESS = 0.005  # a frame's decode time until one has been measured


@dataclass
class DecodeStats:
    """Process-wide counts, for tests, benchmarks and metrics."""

    decoded: int = 0
    dropped: int = 0
    keyframe_requests: int = 0
    bursts_decoded: int = 0
    """Backlogs without a keyframe that were decoded through (quick enough to decode)."""


aiortc_decoder_worker = aiortc.rtcrtpreceiver.decoder_worker
"""aiortc's own decoder loop (it decodes every frame), kept for comparison."""

stats = DecodeStats()
_stats_lock = threading.Lock()
_installed = False


def is_keyframe(codec_name: str, data: bytes) -> bool | None:
    """Whether an encoded frame starts a picture on its own; None when we cannot tell."""
    name = codec_name.lower()
    if name == "vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return bool(data) and data[0] & 0x01 == 0
    if name == "h264":
        # Annex B NAL units (RFC 6184 depayloaded): an IDR slice (type 5) makes a keyframe.
        i = data.find(b"\x00\x00\x01")
        while i != -1 and i + 3 < len(data):
            if data[i + 3] & 0x1F == 5:
                return True
            i = data.find(b"\x00\x00\x01", i + 3)
        return False
    return None


def _count(**kwargs: int) -> None:
    with _stats_lock:
        for key, value in kwargs.items():
            setattr(stats, key, getattr(stats, key) + value)


def bounded_decoder_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
    *,
    max_backlog: int = MAX_BACKLOG,
    get_decoder: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """aiortc's ``decoder_worker`` with the dropping described in the module docstring."""
    make = get_decoder or aiortc.codecs.get_decoder
    codec_name: str | None = None
    decoder: Any = None
    waiting_since: float | None = None  # dropping until a keyframe comes
    asked_at = 0.0
    decode_s = _DECODE_S_GUESS  # a video frame's decode time, smoothed (wall clock)

    def deliver(frame: Any) -> None:
        asyncio.run_coroutine_threadsafe(output_q.put(frame), loop)

    def decode(codec: Any, encoded: Any) -> None:
        nonlocal codec_name, decoder, decode_s
        if codec.name != codec_name:
            decoder = make(codec)
            codec_name = codec.name
        started = clock()
        try:
            frames = decoder.decode(encoded)
        except av.FFmpegError as exc:
            logger.debug("failed to decode a %s frame: %s", codec.name, exc)
            decode_error.set()  # the receiver asks for a keyframe
            return
        if codec.mimeType.lower().startswith("video/"):
            decode_s += 0.2 * (clock() - started - decode_s)
            _count(decoded=1)
        for frame in frames:
            deliver(frame)

    def ask_for_keyframe() -> None:
        nonlocal asked_at
        decode_error.set()
        asked_at = clock()
        _count(keyframe_requests=1)

    while True:
        task = input_q.get()
        if task is None:
            deliver(None)  # the track ends
            return
        codec, encoded = task
        if not codec.mimeType.lower().startswith("video/"):
            decode(codec, encoded)
            continue
        pending = [(codec, encoded)]
        ended = False
        if input_q.qsize() >= max_backlog:
            while True:  # take everything that waits, to skip to its newest keyframe
                try:
                    item = input_q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    ended = True
                    break
                pending.append(item)
        if len(pending) > max_backlog or waiting_since is not None:
            keys = [is_keyframe(c.name, e.data) for c, e in pending]
            if None in keys:  # a codec we cannot judge: decode everything
                first = 0
            else:
                newest = max((i for i, k in enumerate(keys) if k), default=None)
                if newest is not None and len(pending) - newest > MAX_CATCH_UP:
                    newest = None  # decoding that far only to catch up costs more than a PLI
                quick = (
                    len(pending) <= MAX_CATCH_UP and len(pending) * decode_s <= CATCH_UP_BUDGET_S
                )
                if newest is None and waiting_since is None and quick:
                    first = 0  # a burst: decoding it is quicker than waiting for a keyframe
                    _count(bursts_decoded=1)
                elif newest is None:
                    first = len(pending)
                    if waiting_since is None:
                        waiting_since = clock()
                        ask_for_keyframe()
                    elif clock() - asked_at >= PLI_INTERVAL_S:
                        ask_for_keyframe()
                else:
                    first = newest
                    waiting_since = None
            if first:
                _count(dropped=first)
            pending = pending[first:]
        for item in pending:
            decode(*item)
        if ended:
            deliver(None)
            return


def install_bounded_decoders(max_backlog: int = MAX_BACKLOG) -> None:
    """Make every aiortc receiver in this process use ``bounded_decoder_worker`` (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    def worker(
        loop: asyncio.AbstractEventLoop,
        input_q: queue.Queue[Any],
        output_q: asyncio.Queue[Any],
        decode_error: threading.Event,
    ) -> None:
        bounded_decoder_worker(loop, input_q, output_q, decode_error, max_backlog=max_backlog)

    # aiortc starts each receiver's thread with this module-level function (not exported).
    setattr(aiortc.rtcrtpreceiver, "decoder_worker", worker)  # noqa: B010
