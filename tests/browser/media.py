"""Media files for Chromium's fake capture devices: a y4m video and a wav of speech."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vision_agents.testing import pattern_frame, synthesize_speech, write_wav


def write_y4m(
    path: Path, *, seconds: float = 2.0, fps: int = 15, size: tuple[int, int] = (320, 240)
) -> Path:
    """Numbered pattern frames (``read_frame_index`` reads them back) as raw 4:2:0 y4m."""
    width, height = size
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(pattern_frame(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    return path


def write_speech_wav(path: Path, text: str) -> Path:
    """``text`` spoken by espeak-ng, as a 48 kHz mono wav (what Chromium's fake mic reads)."""
    return write_wav(path, synthesize_speech(text).resample(48000, 1))


def write_photo_y4m(
    path: Path, *, seconds: float = 2.0, fps: int = 30, size: tuple[int, int] = (640, 480)
) -> Path:
    """A real photo (scikit-image's astronaut) panning smoothly, as raw 4:2:0 y4m: detail a
    camera's encoder needs hundreds of kbit/s for, unlike the flat test pattern."""
    import cv2
    from skimage import data

    width, height = size
    photo = cv2.resize(data.astronaut(), (width + 160, height + 80))
    frames = round(seconds * fps)
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            angle = 2 * np.pi * i / frames
            dx, dy = int(80 + 80 * np.sin(angle)), int(40 + 40 * np.cos(angle))
            picture = np.ascontiguousarray(photo[dy : dy + height, dx : dx + width])
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    return path
