"""Which video frames go to the model: every one offered, or only those that show a change.

Frames reach a model at its ``fps`` (the forwarder's throttle). A webcam call is mostly a still
scene, and every frame sent is paid for in image tokens and context, so ``SceneChange`` sends a
frame only when it differs from the last one sent (a cheap look at a 64x36 luma thumbnail), and
still sends one every ``max_interval`` s, and at once when asked (the user started speaking).
A shared screen is looked at closer (256x144): a 64x36 thumbnail of a page of 14 px text
averages each line away, so scrolling it by less than a line looked like no change at all.

``FrameSelector`` applies a policy to the frames a consumer is offered; ``None`` as the policy
sends every frame (fixed rate).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import av
import cv2
import numpy as np

from vision_agents.core.errors import ConfigurationError
from vision_agents.core.utils.video import reformat_frame

THUMBNAIL = (64, 36)  # width, height: 16:9, and cheap (a few µs to compare)
DETAIL_THUMBNAIL = (256, 144)
"""The thumbnail of a shared screen: each cell 5x5 pixels of a 1280x720 screen, so scrolling
text by a pixel changes 19% of it (measured), while a JPEG of it at quality 60 changes none."""
FrameReason = Literal["request", "change", "interval", "fixed"]
"""Why a frame was sent: asked for (the first one, ``request_fresh``), the scene changed,
``max_interval`` passed, or no policy (every frame, fixed rate)."""

_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12", "gray"})


@dataclass(frozen=True)
class SceneChange:
    """Send a frame when the scene changed since the last frame sent.

    ``changed_share``: the share of thumbnail pixels whose luma moved by more than
    ``pixel_delta`` (0-255) that counts as a change. ``max_interval``: seconds after which a
    frame is sent anyway (the model still sees a still scene now and then; ``None``: never).
    """

    changed_share: float = 0.005
    pixel_delta: int = 16
    max_interval: float | None = 10.0

    def __post_init__(self) -> None:
        if not (isinstance(self.changed_share, (int, float)) and 0 < self.changed_share <= 1):
            raise ConfigurationError(f"changed_share must be in (0, 1], got {self.changed_share!r}")
        if not (isinstance(self.pixel_delta, int) and 1 <= self.pixel_delta <= 255):
            raise ConfigurationError(f"pixel_delta must be an int 1-255, got {self.pixel_delta!r}")
        if self.max_interval is not None and not (
            isinstance(self.max_interval, (int, float))
            and math.isfinite(self.max_interval)
            and self.max_interval > 0
        ):
            raise ConfigurationError(
                f"max_interval must be a positive number of seconds or None, got "
                f"{self.max_interval!r}"
            )


def thumbnail(frame: av.VideoFrame | np.ndarray, size: tuple[int, int] = THUMBNAIL) -> np.ndarray:
    """A luma thumbnail (uint8, ``size`` = width, height; 64x36 by default) of a frame, or of
    an RGB/BGR/gray array."""
    width, height = size
    if isinstance(frame, av.VideoFrame):
        if frame.format.name in _LUMA_FIRST:
            # What decoders hand out: the first plane is the luma, read in place.
            plane = frame.planes[0]
            luma = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
            # Every step-th pixel first (about twice the thumbnail's size), then an average:
            # a quarter of the time of averaging the whole frame at an odd ratio.
            step = max(1, min(frame.width // (2 * width), frame.height // (2 * height)))
            luma = luma[::step, : frame.width : step]
            return cv2.resize(luma, size, interpolation=cv2.INTER_AREA)
        small = reformat_frame(frame, width=width, height=height, format="gray")
        return np.ascontiguousarray(small.to_ndarray()[:height, :width])
    image = np.asarray(frame)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def changed_share(a: np.ndarray, b: np.ndarray, pixel_delta: int) -> float:
    """The share of pixels whose value differs by more than ``pixel_delta`` between a and b."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(np.count_nonzero(diff > pixel_delta)) / diff.size


class FrameSelector:
    """Applies a policy to offered frames: ``offer(frame)`` says whether to send it.

    Counts what it decided: ``offered``, ``sent``, and of those sent ``for_change``,
    ``for_interval`` and ``on_request`` (``request_fresh``: the next offered frame goes);
    ``last_reason`` says why the latest frame sent went. ``clock`` times ``max_interval``.
    ``detail`` looks at a finer thumbnail (``DETAIL_THUMBNAIL``: for a shared screen).
    """

    def __init__(
        self,
        policy: SceneChange | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        detail: bool = False,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self._last: np.ndarray | None = None
        self._last_at = -math.inf
        self._fresh = True  # the first frame always goes
        self.offered = self.sent = 0
        self.for_change = self.for_interval = self.on_request = 0
        self.last_reason: FrameReason | None = None
        self.detail = detail

    def request_fresh(self) -> None:
        """Send the next offered frame whatever it shows (the user started speaking)."""
        self._fresh = True

    def offer(self, frame: av.VideoFrame | np.ndarray) -> bool:
        self.offered += 1
        policy = self.policy
        if policy is None:
            self.sent += 1
            self.last_reason = "fixed"
            return True
        now = self.clock()
        thumb = thumbnail(frame, DETAIL_THUMBNAIL if self.detail else THUMBNAIL)
        reason: FrameReason
        if self._fresh or self._last is None or self._last.shape != thumb.shape:
            reason = "request"
        elif changed_share(thumb, self._last, policy.pixel_delta) >= policy.changed_share:
            reason = "change"
        elif policy.max_interval is not None and now - self._last_at >= policy.max_interval:
            reason = "interval"
        else:
            return False
        self._fresh = False
        self._last, self._last_at = thumb, now
        self.sent += 1
        self.last_reason = reason
        if reason == "change":
            self.for_change += 1
        elif reason == "interval":
            self.for_interval += 1
        else:
            self.on_request += 1
        return True
