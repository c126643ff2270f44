"""Bytes on the wire and encode time per frame: our JPEG vs PNG at source size.

    python -m benchmarks.gemini_frames

A 1280x720 camera-like frame (gradient, texture and noise) is encoded the way this plugin
sends it (JPEG, long side <= 1024, quality 80) and the way the best-known SDK sends it
(PNG at source size); the base64 JSON message size is what actually crosses the socket.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import av
import cv2
import numpy as np

from vision_agents.core.utils.video import encode_jpeg


def camera_frame(width: int = 1280, height: int = 720) -> av.VideoFrame:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    texture = (np.sin(x / 7.0) * np.cos(y / 5.0) * 40)[..., None]
    noise = rng.normal(0, 6, (height, width, 3))
    rgb = np.clip(base + texture + noise, 0, 255).astype(np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")


def png_source_size(frame: av.VideoFrame) -> bytes:
    ok, data = cv2.imencode(".png", frame.to_ndarray(format="bgr24"))
    assert ok
    return bytes(data.tobytes())


def wire_bytes(data: bytes, mime: str) -> int:
    blob = {"data": base64.urlsafe_b64encode(data).decode(), "mime_type": mime}
    return len(json.dumps({"realtime_input": {"video": blob}}))


def measure(
    encode: Callable[[av.VideoFrame], bytes], frame: av.VideoFrame, repeat: int = 20
) -> tuple[bytes, float]:
    data = encode(frame)
    start = time.perf_counter()
    for _ in range(repeat):
        encode(frame)
    return data, (time.perf_counter() - start) / repeat * 1000


def main() -> None:
    frame = camera_frame()
    rows: list[tuple[str, str, Callable[[av.VideoFrame], bytes]]] = [
        ("JPEG q80, long side 1024 (ours)", "image/jpeg", lambda f: encode_jpeg(f, 80, 1024)),
        ("JPEG q80, long side 768", "image/jpeg", lambda f: encode_jpeg(f, 80, 768)),
        ("PNG at 1280x720 (best-known SDK)", "image/png", png_source_size),
    ]
    print(f"{'encoding':36} {'image bytes':>12} {'wire bytes':>12} {'encode ms':>10}")
    for name, mime, encode in rows:
        data, ms = measure(encode, frame)
        print(f"{name:36} {len(data):>12,} {wire_bytes(data, mime):>12,} {ms:>10.1f}")


if __name__ == "__main__":
    main()
