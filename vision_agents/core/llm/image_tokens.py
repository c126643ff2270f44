"""What one video frame costs in input tokens, by the providers' published rules.

These are estimates for what we send; the provider's usage events say what it billed. Sources,
and where they disagree, are in docs/realtime.md ("What video costs"), docs/openai.md and
docs/gemini.md. No provider SDK types here: detail and media resolution are plain strings.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = [
    "GEMINI_FRAME_TOKENS",
    "OPENAI_LOW_DETAIL_TOKENS",
    "GeminiMediaResolution",
    "OpenAIDetail",
    "gemini_frame_tokens",
    "jpeg_size",
    "openai_image_tokens",
]

OpenAIDetail = Literal["low", "high", "auto"]
GeminiMediaResolution = Literal["unspecified", "low", "medium", "high"]

# OpenAI's vision guide ("Calculating costs", GPT-4o-style tiling): a low-detail image is a
# flat charge; a high-detail one is fitted in a square, its short side capped, then covered by
# square tiles, each charged, plus the flat charge once.
OPENAI_LOW_DETAIL_TOKENS = 85
OPENAI_TILE_TOKENS = 170
OPENAI_TILE_SIDE = 512
OPENAI_FIT_SIDE = 2048
OPENAI_SHORT_SIDE = 768

GEMINI_FRAME_TOKENS: dict[str, int] = {
    "unspecified": 258,  # Vertex AI "Provisioned Throughput for Live API", its 1 fps example
    "low": 64,  # the MediaResolution enum reference (Gemini API and Vertex AI)
    "medium": 256,  # same reference
    "high": 256,  # same reference: "zoomed reframing with 256 tokens"
}
"""Tokens a Live API video frame counts, by media resolution (one figure a frame whatever
its pixel size: the pages give no per-pixel rule for video frames)."""


def openai_image_tokens(width: int, height: int, detail: str | None = "auto") -> int:
    """Input tokens of one ``width`` x ``height`` image at ``detail`` (None: the field is left
    out, which the API treats as ``auto``; we count ``auto`` as ``high``, the dearer case)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"an image needs a positive size, got {width}x{height}")
    if detail == "low":
        return OPENAI_LOW_DETAIL_TOKENS
    if detail not in (None, "auto", "high"):
        raise ValueError(f"detail must be 'low', 'high' or 'auto', got {detail!r}")
    w, h = float(width), float(height)
    fit = min(1.0, OPENAI_FIT_SIDE / max(w, h))
    w, h = w * fit, h * fit
    short = min(1.0, OPENAI_SHORT_SIDE / min(w, h))  # scaled down only, never up
    w, h = w * short, h * short
    # Rounding as an image would be resized (to whole pixels) before it is cut into tiles.
    tiles = math.ceil(round(w) / OPENAI_TILE_SIDE) * math.ceil(round(h) / OPENAI_TILE_SIDE)
    return OPENAI_TILE_TOKENS * tiles + OPENAI_LOW_DETAIL_TOKENS


def gemini_frame_tokens(media_resolution: str | None = None) -> int:
    """Input tokens of one Live API video frame at ``media_resolution`` ("low", "medium",
    "high", or None / "unspecified" for the service's default; a ``MEDIA_RESOLUTION_*`` name
    works too)."""
    key = (media_resolution or "unspecified").lower().removeprefix("media_resolution_")
    if key not in GEMINI_FRAME_TOKENS:
        raise ValueError(
            f"media_resolution must be one of {', '.join(GEMINI_FRAME_TOKENS)}, "
            f"got {media_resolution!r}"
        )
    return GEMINI_FRAME_TOKENS[key]


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # DHT, JPG, DAC are not SOFs


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header, without decoding the image."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG (no start-of-image marker)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"bad JPEG marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                break
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise ValueError("JPEG has no frame header (truncated?)")
