"""Encoders that one bad frame cannot kill: frames normalised first, a failed encoder replaced.

aiortc makes one encoder per sender and, if it raises, ends that sender for good: a browser's
receive slot then stays black for whoever is shown in it next. ``install_resilient_encoders``
makes aiortc's senders (process-wide, once) use ``ResilientEncoder``: video frames become
even-sized yuv420p before encoding (``even_yuv420p``), and an encoder that still fails is
dropped and a fresh one encodes the frame (then the next frame, if that fails too), with the
failures counted and logged as a bounded warning.

A new video stream (a new sender, or a slot re-pointed at someone else) also sends extra
keyframes ``EARLY_KEYFRAMES_S`` into it: the first keyframe can reach a browser before it
can decrypt media (DTLS still finishing on its side) and be lost, and then its picture
stays black until a keyframe request gets through. Two more keyframes early on cost a few
kilobytes and make that wait short.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiortc.codecs
import aiortc.rtcrtpsender
import av
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from vision_agents.core.utils.video import even_yuv420p

logger = logging.getLogger(__name__)

_original: Callable[[RTCRtpCodecParameters], Encoder] | None = None

EARLY_KEYFRAMES_S = (0.5, 2.0)  # stream time after a video stream starts


class ResilientEncoder(Encoder):
    """Wraps an aiortc encoder for ``codec``; see the module docstring."""

    failures = 0  # across all encoders in the process, for tests and the summary
    restarts = 0  # fresh encoders for a timeline that went back (a slot showing someone new)

    def __init__(
        self, codec: RTCRtpCodecParameters, make: Callable[[RTCRtpCodecParameters], Encoder]
    ) -> None:
        self._codec = codec
        self._make = make
        self._inner = make(codec)
        self._last_pts: int | None = None
        self._first_s: float | None = None  # stream time of the first frame
        self._early = list(EARLY_KEYFRAMES_S)

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        if isinstance(frame, av.VideoFrame):
            frame = even_yuv420p(frame)
            # Encoders need rising timestamps; a receive slot re-pointed at another source
            # starts another timeline, often earlier: begin a fresh stream with a keyframe.
            if frame.pts is not None:
                if self._last_pts is not None and frame.pts <= self._last_pts:
                    ResilientEncoder.restarts += 1
                    self._inner = self._make(self._codec)
                    force_keyframe = True
                    self._first_s, self._early = None, list(EARLY_KEYFRAMES_S)
                self._last_pts = frame.pts
                if frame.time_base is not None:
                    now_s = float(frame.pts * frame.time_base)
                    if self._first_s is None:
                        self._first_s = now_s
                    if self._early and now_s - self._first_s >= self._early[0]:
                        self._early.pop(0)
                        force_keyframe = True
        try:
            return self._inner.encode(frame, force_keyframe)
        except Exception as exc:
            self._failed(exc)
        try:  # a fresh encoder starts with a keyframe
            return self._inner.encode(frame, True)
        except Exception as exc:
            self._failed(exc)
            return [], 0  # drop this frame; the sender lives on

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        return self._inner.pack(packet)

    @property
    def target_bitrate(self) -> int:
        return int(getattr(self._inner, "target_bitrate", 0))

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        if hasattr(self._inner, "target_bitrate"):
            self._inner.target_bitrate = bitrate

    def _failed(self, exc: Exception) -> None:
        ResilientEncoder.failures += 1
        count = ResilientEncoder.failures
        if count & (count - 1) == 0:  # 1st, 2nd, 4th, 8th...: bounded under a flood
            logger.warning(
                "%s encoder failed (%s: %s); replaced with a fresh one (%d failures so far)",
                self._codec.mimeType,
                type(exc).__name__,
                exc,
                count,
            )
        self._inner = self._make(self._codec)


def install_resilient_encoders() -> None:
    """Make every aiortc sender in this process use ``ResilientEncoder`` (idempotent)."""
    global _original
    if _original is not None:
        return
    original = aiortc.codecs.get_encoder  # what aiortc.rtcrtpsender imported
    _original = original

    def resilient(codec: RTCRtpCodecParameters) -> Encoder:
        return ResilientEncoder(codec, original)

    setattr(aiortc.rtcrtpsender, "get_encoder", resilient)  # noqa: B010 (not exported)
