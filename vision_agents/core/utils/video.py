"""Conversions between PyAV video frames, NumPy arrays and JPEG bytes.

Arrays are RGB (``H x W x 3`` uint8) unless a format says otherwise, matching
``frame_to_ndarray``'s default, so the helpers compose without colour swaps.
"""

from __future__ import annotations

import threading
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

_local = threading.local()


def reformat_frame(frame: av.VideoFrame, **kwargs: Any) -> av.VideoFrame:
    """``frame.reformat(**kwargs)`` that is safe when several threads convert one frame.

    PyAV caches one scaler on each frame and uses it without the GIL, so two threads calling
    ``frame.reformat`` or ``frame.to_ndarray(format=...)`` on the same frame at once can
    crash the process. The forwarder hands the same frame to many consumers, some in
    threads; this uses one scaler per thread instead.
    """
    reformatter: VideoReformatter | None = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    return reformatter.reformat(frame, **kwargs)


def frame_to_ndarray(frame: av.VideoFrame, format: str = "rgb24") -> npt.NDArray[Any]:
    """The frame's pixels as an array in ``format`` (any PyAV pixel format, e.g. "bgr24").

    Thread-safe for shared frames (see ``reformat_frame``).
    """
    if frame.format.name == format:
        return frame.to_ndarray()
    return reformat_frame(frame, format=format).to_ndarray()


def ndarray_to_frame(arr: npt.NDArray[Any], format: str = "rgb24") -> av.VideoFrame:
    """A new frame holding ``arr``'s pixels, read as pixel format ``format``."""
    return av.VideoFrame.from_ndarray(arr, format=format)


def resize_keep_aspect(frame: av.VideoFrame, max_side: int) -> av.VideoFrame:
    """Scale ``frame`` down so its longer side is at most ``max_side``; never upscales.

    Returns ``frame`` itself when it already fits; a resized frame keeps ``pts`` and
    ``time_base``.
    """
    _check_max_side(max_side)
    size = _fit(frame.width, frame.height, max_side)
    if size is None:
        return frame
    resized = reformat_frame(frame, width=size[0], height=size[1], interpolation="AREA")
    resized.pts = frame.pts
    if frame.time_base is not None:  # PyAV refuses None here
        resized.time_base = frame.time_base
    return resized


def encode_jpeg(
    frame_or_array: av.VideoFrame | npt.NDArray[Any],
    quality: int = 80,
    max_side: int | None = None,
) -> bytes:
    """JPEG bytes of a frame or an RGB (or greyscale) uint8 array, optionally scaled down."""
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int from 1 to 100, got {quality!r}")
    if max_side is not None:
        _check_max_side(max_side)
    if isinstance(frame_or_array, av.VideoFrame):
        size = (
            None
            if max_side is None
            else _fit(frame_or_array.width, frame_or_array.height, max_side)
        )
        width, height = size if size is not None else (frame_or_array.width, frame_or_array.height)
        # One swscale pass does both the scaling and the conversion to OpenCV's BGR.
        bgr = reformat_frame(
            frame_or_array, width=width, height=height, format="bgr24", interpolation="AREA"
        ).to_ndarray()
    else:
        bgr = _array_to_bgr(frame_or_array, max_side)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode an array of shape {bgr.shape} as JPEG")
    return bytes(encoded.tobytes())


def _array_to_bgr(arr: npt.NDArray[Any], max_side: int | None) -> npt.NDArray[Any]:
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected an av.VideoFrame or a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.uint8:
        raise ValueError(f"image array must be uint8, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)) or 0 in arr.shape:
        raise ValueError(
            f"image array must be H x W (grey) or H x W x 3 (RGB), got shape {arr.shape}"
        )
    if max_side is not None and (size := _fit(arr.shape[1], arr.shape[0], max_side)) is not None:
        arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    return arr


def _fit(width: int, height: int, max_side: int) -> tuple[int, int] | None:
    """(width, height) scaled to fit ``max_side``, or None when no scaling is needed."""
    longest = max(width, height)
    if longest <= max_side:
        return None
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_max_side(max_side: int) -> None:
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side <= 0:
        raise ValueError(f"max_side must be a positive int, got {max_side!r}")


ENCODER_FORMAT = "yuv420p"


def even_yuv420p(frame: av.VideoFrame) -> av.VideoFrame:
    """``frame`` as video encoders take it: yuv420p with even width and height.

    4:2:0 chroma needs even sizes (libx264 refuses odd ones); an odd side is scaled down by
    one pixel (at least 2). Returns ``frame`` itself when it already fits; keeps pts and
    time_base.
    """
    width, height = max(2, frame.width - frame.width % 2), max(2, frame.height - frame.height % 2)
    if (width, height) == (frame.width, frame.height) and frame.format.name == ENCODER_FORMAT:
        return frame
    out = reformat_frame(frame, width=width, height=height, format=ENCODER_FORMAT)
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out
