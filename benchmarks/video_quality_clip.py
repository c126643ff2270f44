"""The test clip of ``benchmarks.video_quality``: a camera picture whose quality can be scored.

Drawn here (no downloads) at 640x480 (or any size, the same layout scaled), 30 fps, looping:
a photo (``skimage.data.chelsea``), a ball moving smoothly, four lines of text whose capital
letters are about 22, 13, 10 and 8 px high (at 480 rows; 1.5 times that at 720), a "printed
page" of ~8 px text, and the frame's index as a row of 16 px black / white blocks at the
bottom, centred (two reference blocks, 9 bits of index, 3 bits of index mod 7), which VP8
keeps readable. ``Clip.luma(i)`` is frame ``i`` as the y4m holds it, read as full-range gray.

A browser asked for another aspect than the camera's crops it (Chromium's ``resizeMode``
``crop-and-scale`` takes the middle): ``Clip.view_for(w, h)`` is the part of the clip a
``w``x``h`` frame shows, and frames are scored against that part (OCR against the words in it).
"""

from __future__ import annotations

import functools
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data as skdata

DESIGN = (640, 480)  # the layout's own geometry; other sizes scale it
INDEX_BITS, CHECK_BITS = 9, 3
BLOCK = 16  # barcode block side at 480 rows

# (cap height at 480 rows, font, thickness, words to fill the line with, in order)
LINES: list[tuple[int, int, int, str]] = [
    (22, cv2.FONT_HERSHEY_SIMPLEX, 2, "Morning light fills the quiet harbor today"),
    (
        13,
        cv2.FONT_HERSHEY_DUPLEX,
        1,
        "Seven brown horses crossed wide river under cloudy skies again",
    ),
    (
        10,
        cv2.FONT_HERSHEY_SIMPLEX,
        1,
        "Please bring fresh bread cheese apples and cold water for lunch after work tomorrow",
    ),
    (
        8,
        cv2.FONT_HERSHEY_SIMPLEX,
        1,
        "Our garden needs more rain because every flower looks tired during long summer "
        "weeks near town",
    ),
]
PAGE_CAP = 8
PAGE_TEXT = (
    "The committee met on Tuesday morning to review the budget for next year. Most members "
    "agreed that the library should stay open longer during winter, while others asked for "
    "better lighting in the reading room. After a short break the group discussed repairs to "
    "the old bridge, the cost of new benches in the park, and a plan to plant trees along the "
    "main street. A final vote will take place next month once every neighbor has had a chance "
    "to comment on the proposal. Several parents wrote letters about the crossing near the "
    "school, where cars often drive too fast in the afternoon. The council promised to paint "
    "new lines and to add a sign before the spring term begins. Volunteers from the garden club "
    "offered to clean the pond, and the baker on the corner will bring coffee and warm rolls "
    "for everyone who helps."
)


@dataclass(frozen=True)
class Box:
    """A rectangle in clip pixels: ``x0 <= x < x1``, ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def inside(self, other: Box) -> bool:
        return (
            other.x0 <= self.x0
            and self.x1 <= other.x1
            and other.y0 <= self.y0
            and self.y1 <= other.y1
        )

    def crop(self, img: np.ndarray, margin: int = 0) -> np.ndarray:
        h, w = img.shape[:2]
        return img[
            max(0, self.y0 - margin) : min(h, self.y1 + margin),
            max(0, self.x0 - margin) : min(w, self.x1 + margin),
        ]


@dataclass(frozen=True)
class TextItem:
    """Text drawn in the clip, and where (what OCR is scored against)."""

    name: str  # "22px" ... (cap height at 480 rows), or "page"
    cap_px: float  # its capital letters' height in this clip
    words: tuple[tuple[str, Box], ...]  # lower-case words (``words_of``), each where it is
    box: Box

    def visible(self, view: Box) -> tuple[str, ...]:
        """The words wholly inside ``view``."""
        return tuple(w for w, box in self.words if box.inside(view))


def words_of(text: str) -> list[str]:
    """Lower-case words, punctuation stripped (how OCR output and the truth are compared)."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w]


def _cap_height(font: int, scale: float, thickness: int) -> int:
    img = np.zeros((160, 120), np.uint8)
    cv2.putText(img, "H", (10, 130), font, scale, 255, thickness, cv2.LINE_AA)
    rows = np.flatnonzero(img.max(axis=1) > 127)
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@functools.cache
def font_scale(font: int, cap_px: float, thickness: int) -> float:
    """The putText scale whose capital H is closest to ``cap_px`` px high."""
    scales = np.arange(0.15, 3.0, 0.01)
    return float(min(scales, key=lambda s: abs(_cap_height(font, float(s), thickness) - cap_px)))


def _fit(words: list[str], font: int, scale: float, thickness: int, width: int) -> list[str]:
    line: list[str] = []
    for word in words:
        (w, _), _ = cv2.getTextSize(" ".join([*line, word]), font, scale, thickness)
        if w > width:
            break
        line.append(word)
    return line


def _wrap(words: list[str], font: int, scale: float, thickness: int, width: int) -> list[str]:
    lines: list[str] = []
    rest = list(words)
    while rest:
        line = _fit(rest, font, scale, thickness, width) or rest[:1]
        lines.append(" ".join(line))
        rest = rest[len(line) :]
    return lines


def _word_boxes(
    line: str, x0: int, top: int, bottom: int, font: int, scale: float, thickness: int
) -> list[tuple[str, Box]]:
    """Each word of ``line`` drawn from ``x0``, with the columns it covers."""
    out: list[tuple[str, Box]] = []
    words = line.split()
    for k, word in enumerate(words):
        before = " ".join(words[:k]) + " " if k else ""
        start = cv2.getTextSize(before, font, scale, thickness)[0][0] if k else 0
        end = cv2.getTextSize(before + word, font, scale, thickness)[0][0]
        out += [(w, Box(x0 + start, top, x0 + end, bottom)) for w in words_of(word)]
    return out


def _photo(width: int, height: int) -> np.ndarray:
    """``chelsea`` cropped to the box's aspect and resized to it (RGB)."""
    img = skdata.chelsea()
    h, w = img.shape[:2]
    if w / h > width / height:
        cw = round(h * width / height)
        img = img[:, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = round(w * height / width)
        img = img[(h - ch) // 2 : (h - ch) // 2 + ch]
    return np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))


class Clip:
    """The clip's layout, its frames (drawn on demand) and the truth to score them against."""

    def __init__(self, width: int = 640, height: int = 480, fps: int = 30, seconds: float = 10):
        self.width, self.height, self.fps = width, height, fps
        self.frames = round(seconds * fps)
        if self.frames > 1 << INDEX_BITS:
            raise ValueError(f"at most {1 << INDEX_BITS} frames, got {self.frames}")
        sx, sy = width / DESIGN[0], height / DESIGN[1]
        self.scale = sy  # text and barcode grow with the rows; boxes with both sides

        def box(x0: float, y0: float, x1: float, y1: float) -> Box:
            return Box(round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))

        self.block = round(BLOCK * sy)
        self.barcode_top = round(444 * sy)  # rows from here on are left out of PSNR / SSIM
        self.barcode_y = round(452 * sy)
        self.barcode_x = (width - (2 + INDEX_BITS + CHECK_BITS) * self.block) // 2
        self.ball_area = box(8, 362, 632, 438)
        self.ball_r = round(18 * sy)

        rgb = np.full((height, width, 3), 255, np.uint8)
        # Text lines on white, across the top.
        self.items: list[TextItem] = []
        y = 8 * sy
        for cap, font, thickness, text in LINES:
            cap_px = cap * sy
            scale = font_scale(font, cap_px, thickness)
            words = _fit(text.split(), font, scale, thickness, round(620 * sx))
            line = " ".join(words)
            (tw, th), base = cv2.getTextSize(line, font, scale, thickness)
            top = round(y)
            x0 = round(10 * sx)
            cv2.putText(rgb, line, (x0, top + th), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
            bottom = top + th + base
            boxes = _word_boxes(line, x0, top, bottom, font, scale, thickness)
            self.items.append(
                TextItem(f"{cap}px", cap_px, tuple(boxes), Box(x0, top, x0 + tw, bottom))
            )
            y += (cap * 1.9 + 4) * sy
        # The photo (left) and the printed page (right).
        photo = box(8, 122, 318, 354)
        rgb[photo.y0 : photo.y1, photo.x0 : photo.x1] = _photo(
            photo.x1 - photo.x0, photo.y1 - photo.y0
        )
        page = box(326, 122, 632, 354)
        rgb[page.y0 : page.y1, page.x0 : page.x1] = (236, 232, 222)  # paper
        font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
        cap_px = PAGE_CAP * sy
        scale = font_scale(font, cap_px, thickness)
        pad = round(6 * sx)
        rows = _wrap(PAGE_TEXT.split(), font, scale, thickness, page.x1 - page.x0 - 2 * pad)
        pitch = cap_px * 1.75
        n_rows = min(len(rows), int((page.y1 - page.y0 - 2 * pad) // pitch))
        rows = rows[:n_rows]
        boxes = []
        for k, row in enumerate(rows):
            base_y = round(page.y0 + pad + cap_px + k * pitch)
            x0 = page.x0 + pad
            cv2.putText(rgb, row, (x0, base_y), font, scale, (20, 20, 20), thickness, cv2.LINE_AA)
            top, bottom = round(base_y - cap_px - 2 * sy), round(base_y + 4 * sy)
            boxes += _word_boxes(row, x0, top, bottom, font, scale, thickness)
        self.items.append(TextItem("page", cap_px, tuple(boxes), page))
        # The ball's field: a soft horizontal gradient; the barcode's band: black.
        ba = self.ball_area
        ramp = np.linspace(90, 170, ba.x1 - ba.x0).astype(np.uint8)
        rgb[ba.y0 : ba.y1, ba.x0 : ba.x1] = ramp[None, :, None]
        rgb[self.barcode_top :] = 0
        self._background = rgb

    @property
    def full(self) -> Box:
        return Box(0, 0, self.width, self.height)

    def view_for(self, width: int, height: int) -> Box:
        """The part of the clip a ``width``x``height`` frame shows: all of it at the same
        aspect, else its middle cut to that aspect (Chromium's ``crop-and-scale``)."""
        aspect = width / height
        if abs(aspect - self.width / self.height) < 0.01:
            return self.full
        if aspect < self.width / self.height:
            w = round(self.height * aspect)
            return Box((self.width - w) // 2, 0, (self.width - w) // 2 + w, self.height)
        h = round(self.width / aspect)
        return Box(0, (self.height - h) // 2, self.width, (self.height - h) // 2 + h)

    def source(self, index: int, width: int, height: int) -> np.ndarray:
        """Frame ``index``'s luma as a ``width``x``height`` frame shows it (cut to its view,
        resized to its size)."""
        view = self.view_for(width, height)
        gray = view.crop(self.luma(index))
        if gray.shape != (height, width):
            gray = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)
        return gray

    def to_view(self, gray: np.ndarray) -> tuple[np.ndarray, Box]:
        """A received frame's luma resized to the clip's geometry of the part it shows."""
        view = self.view_for(gray.shape[1], gray.shape[0])
        if gray.shape != (view.height, view.width):
            gray = cv2.resize(gray, (view.width, view.height), interpolation=cv2.INTER_CUBIC)
        return gray, view

    def ball_at(self, index: int) -> tuple[int, int]:
        """The ball's centre in frame ``index``: 5 s across and back, 2 s up and down."""
        t = (index % self.frames) / self.fps
        ba, r = self.ball_area, self.ball_r
        x = ba.x0 + r + (ba.x1 - ba.x0 - 2 * r) * (0.5 - 0.5 * math.cos(2 * math.pi * t / 5))
        y = ba.y0 + r + (ba.y1 - ba.y0 - 2 * r) * abs(math.sin(math.pi * t / 2))
        return round(x), round(y)

    def rgb(self, index: int) -> np.ndarray:
        """Frame ``index`` (RGB)."""
        img = self._background.copy()
        cv2.circle(img, self.ball_at(index), self.ball_r, (230, 120, 30), -1, cv2.LINE_AA)
        blocks = [1, 0] + [index >> b & 1 for b in range(INDEX_BITS)]
        blocks += [(index % 7) >> b & 1 for b in range(CHECK_BITS)]
        for k, on in enumerate(blocks):
            x0 = self.barcode_x + k * self.block
            img[self.barcode_y : self.barcode_y + self.block, x0 : x0 + self.block] = 255 * on
        return img

    def luma(self, index: int) -> np.ndarray:
        """Frame ``index`` as the y4m holds it (yuv420p), as full-range gray: how received
        frames are read too."""
        frame = av.VideoFrame.from_ndarray(self.rgb(index), format="rgb24")
        return np.asarray(frame.reformat(format="yuv420p").to_ndarray(format="gray"))

    def write_y4m(self, path: Path) -> Path:
        """The whole loop as raw 4:2:0 y4m (what Chromium's fake camera plays, looping)."""
        with av.open(str(path), "w", format="yuv4mpegpipe") as container:
            stream = container.add_stream("rawvideo", rate=self.fps)
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            for i in range(self.frames):
                frame = av.VideoFrame.from_ndarray(self.rgb(i), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, self.fps)
                container.mux(stream.encode(frame.reformat(format="yuv420p")))
            container.mux(stream.encode(None))
        return path

    def read_index(self, gray: np.ndarray) -> int | None:
        """The frame index in a received frame's luma (any size or view), or None where the
        blocks are unclear or their check fails (a black frame)."""
        gray, view = self.to_view(gray)
        q = self.block // 4
        means = []
        for k in range(2 + INDEX_BITS + CHECK_BITS):
            x0 = self.barcode_x - view.x0 + k * self.block
            cell = gray[
                self.barcode_y + q : self.barcode_y + self.block - q, x0 + q : x0 + self.block - q
            ]
            means.append(float(cell.mean()) if cell.size else float("nan"))
        white, black = means[0], means[1]
        middle, spread = (white + black) / 2, white - black
        if not spread >= 60 or any(not abs(m - middle) > spread / 4 for m in means[2:]):
            return None
        bits = [m > middle for m in means[2:]]
        index = sum(1 << b for b in range(INDEX_BITS) if bits[b])
        check = sum(1 << b for b in range(CHECK_BITS) if bits[INDEX_BITS + b])
        if check != index % 7 or index >= self.frames:
            return None
        return index


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


def ocr(gray: np.ndarray, *, block: bool, upscale: int = 3) -> str:
    """Text tesseract reads in ``gray`` (upscaled ``upscale`` times, cubic): one line, or a
    block of lines with ``block``."""
    big = cv2.resize(gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", big)
    if not ok:
        raise RuntimeError("could not encode a crop as PNG")
    done = subprocess.run(
        ["tesseract", "stdin", "stdout", "-l", "eng", "--psm", "6" if block else "7"],
        input=png.tobytes(),
        capture_output=True,
        check=True,
        env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"},
    )
    return done.stdout.decode(errors="replace")


def word_accuracy(truth: tuple[str, ...], text: str) -> float:
    """Share of ``truth``'s words (with repeats) found among the words of ``text``."""
    found = words_of(text)
    hits = 0
    for word in truth:
        if word in found:
            found.remove(word)
            hits += 1
    return hits / len(truth) if truth else float("nan")


def ocr_item(clip: Clip, gray: np.ndarray, item: TextItem) -> float | None:
    """Word accuracy of one text item in a received frame's luma (resized back to the clip's
    geometry first), against the words its view shows; None when it shows none."""
    gray, view = clip.to_view(gray)
    truth = item.visible(view)
    if not truth:
        return None
    shown = Box(
        max(item.box.x0, view.x0) - view.x0,
        max(item.box.y0, view.y0) - view.y0,
        min(item.box.x1, view.x1) - view.x0,
        min(item.box.y1, view.y1) - view.y0,
    )
    crop = shown.crop(gray, max(2, round(clip.scale * 4)))
    upscale = 3 if item.cap_px < 16 else 2
    return word_accuracy(truth, ocr(crop, block=item.name == "page", upscale=upscale))
