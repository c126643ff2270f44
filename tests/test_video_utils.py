"""Frame <-> array conversions, aspect-keeping resize and JPEG encoding, with real PyAV and OpenCV."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_agents.core.utils.video import (
    encode_jpeg,
    frame_to_ndarray,
    ndarray_to_frame,
    resize_keep_aspect,
)

RED = (220, 20, 20)


def solid(width: int, height: int, rgb: tuple[int, int, int] = RED) -> np.ndarray:
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = rgb
    return img


def textured(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def stamped(frame: av.VideoFrame, pts: int = 4500) -> av.VideoFrame:
    frame.pts = pts
    frame.time_base = Fraction(1, 90000)
    return frame


def decode(jpeg: bytes, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), flags)
    assert img is not None
    return img


def test_array_round_trip_is_lossless_in_rgb() -> None:
    img = textured(64, 48)
    frame = ndarray_to_frame(img)
    assert (frame.width, frame.height, frame.format.name) == (64, 48, "rgb24")
    assert np.array_equal(frame_to_ndarray(frame), img)
    assert np.array_equal(frame_to_ndarray(frame, format="bgr24"), img[..., ::-1])


def test_frame_to_ndarray_converts_yuv_frames() -> None:
    frame = ndarray_to_frame(solid(32, 32)).reformat(format="yuv420p")
    rgb = frame_to_ndarray(frame)
    assert rgb.shape == (32, 32, 3)
    assert np.abs(rgb.astype(int) - RED).max() < 12


def test_conversion_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="bogus"):
        frame_to_ndarray(ndarray_to_frame(solid(8, 8)), format="bogus")
    with pytest.raises(ValueError):
        ndarray_to_frame(np.zeros((8, 8), np.uint8))  # rgb24 needs H x W x 3


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((640, 480), 320, (320, 240)),
        ((480, 640), 320, (240, 320)),
        ((1280, 720), 512, (512, 288)),
        ((641, 481), 100, (100, 75)),
        ((1000, 2), 10, (10, 1)),  # never rounds a side down to zero
    ],
)
def test_resize_fits_the_longer_side_and_keeps_timing(
    size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    frame = stamped(ndarray_to_frame(solid(*size)).reformat(format="yuv420p"))
    out = resize_keep_aspect(frame, max_side)
    assert (out.width, out.height) == expected
    assert out.pts == 4500 and out.time_base == Fraction(1, 90000)
    assert out.format.name == "yuv420p"
    assert np.abs(frame_to_ndarray(out).astype(int) - RED).mean() < 12


def test_resize_never_upscales() -> None:
    frame = stamped(ndarray_to_frame(solid(64, 48)))
    assert resize_keep_aspect(frame, 64) is frame
    assert resize_keep_aspect(frame, 1000) is frame


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    max_side=st.integers(1, 400),
)
def test_resize_property(width: int, height: int, max_side: int) -> None:
    frame = ndarray_to_frame(np.zeros((height, width, 3), np.uint8))
    out = resize_keep_aspect(frame, max_side)
    assert max(out.width, out.height) == min(max_side, max(width, height))
    assert out.width >= 1 and out.height >= 1
    if out is not frame:  # aspect ratio kept to within rounding of the shorter side
        scale = max(out.width, out.height) / max(width, height)
        assert abs(min(out.width, out.height) - min(width, height) * scale) <= 1


@pytest.mark.parametrize("max_side", [0, -5, 2.5, True, None])
def test_resize_rejects_bad_max_side(max_side: object) -> None:
    frame = ndarray_to_frame(solid(8, 8))
    with pytest.raises(ValueError, match="max_side"):
        resize_keep_aspect(frame, max_side)  # type: ignore[arg-type]


def test_encode_jpeg_from_frame_keeps_colours_and_size() -> None:
    frame = ndarray_to_frame(solid(160, 120)).reformat(format="yuv420p")
    bgr = decode(encode_jpeg(frame))
    assert bgr.shape == (120, 160, 3)
    assert np.abs(bgr.astype(int) - RED[::-1]).mean() < 12


def test_encode_jpeg_from_rgb_array_keeps_colours() -> None:
    bgr = decode(encode_jpeg(solid(40, 30)))
    assert bgr.shape == (30, 40, 3)
    assert np.abs(bgr.astype(int) - RED[::-1]).mean() < 12


def test_encode_jpeg_scales_down_frames_and_arrays() -> None:
    frame = ndarray_to_frame(textured(640, 360))
    assert decode(encode_jpeg(frame, max_side=256)).shape == (144, 256, 3)
    assert decode(encode_jpeg(textured(360, 640), max_side=256)).shape == (256, 144, 3)
    assert decode(encode_jpeg(textured(100, 50), max_side=256)).shape == (50, 100, 3)


def test_encode_jpeg_quality_trades_size() -> None:
    img = textured(128, 128)
    assert len(encode_jpeg(img, quality=10)) < len(encode_jpeg(img, quality=95))


def test_encode_jpeg_accepts_grey_arrays() -> None:
    grey = np.full((20, 30), 200, np.uint8)
    out = decode(encode_jpeg(grey), cv2.IMREAD_UNCHANGED)
    assert out.shape == (20, 30)
    assert np.abs(out.astype(int) - 200).max() < 4
    assert decode(encode_jpeg(grey[..., None]), cv2.IMREAD_UNCHANGED).shape == (20, 30)


@pytest.mark.parametrize("quality", [0, 101, 50.5, True, "80"])
def test_encode_jpeg_rejects_bad_quality(quality: object) -> None:
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(solid(8, 8), quality=quality)  # type: ignore[arg-type]


def test_encode_jpeg_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="max_side"):
        encode_jpeg(solid(8, 8), max_side=0)
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_jpeg(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        encode_jpeg(np.zeros((0, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        encode_jpeg(b"not an image")  # type: ignore[arg-type]


def test_one_frame_converted_from_many_threads_at_once() -> None:
    """The forwarder hands one frame to consumers in several threads; PyAV's per-frame
    scaler is not safe for that (it crashed the process), our helpers are."""
    import concurrent.futures

    from vision_agents.core.utils.video import encode_jpeg, frame_to_ndarray, resize_keep_aspect

    rng = np.random.default_rng(7)
    frame = av.VideoFrame.from_ndarray(
        rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), format="rgb24"
    ).reformat(format="yuv420p")
    expected = frame_to_ndarray(frame, "bgr24")

    def work(_: int) -> bool:
        ok = True
        for _ in range(40):
            ok &= bool(np.array_equal(frame_to_ndarray(frame, "bgr24"), expected))
            resize_keep_aspect(frame, 320)
            encode_jpeg(frame, max_side=320)
        return ok

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(8)))
