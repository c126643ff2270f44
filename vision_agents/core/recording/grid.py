"""Composes participants' video into one picture: a grid with a cell each, in arrival order."""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]

# Black in the limited range that H.264 and VP8 use.
_BLACK_Y, _NEUTRAL_UV = 16, 128


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    width: int
    height: int


def grid_cells(count: int, width: int, height: int) -> list[Cell]:
    """``count`` equal cells filling a ``width`` x ``height`` picture, row by row (even sizes)."""
    if count <= 0:
        return []
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w, cell_h = _even(width // columns), _even(height // rows)
    return [
        Cell((i % columns) * cell_w, (i // columns) * cell_h, cell_w, cell_h) for i in range(count)
    ]


class VideoGrid:
    """A ``width`` x ``height`` yuv420p canvas; each source's newest frame is scaled into its
    cell (aspect kept, centred). A frame is only scaled again when it changes."""

    def __init__(self, width: int, height: int) -> None:
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(
                f"the picture must be even-sized and at least 16x16, got {width}x{height}"
            )
        self.width, self.height = width, height
        self._y = np.full((height, width), _BLACK_Y, dtype=np.uint8)
        self._u = np.full((height // 2, width // 2), _NEUTRAL_UV, dtype=np.uint8)
        self._v = np.full((height // 2, width // 2), _NEUTRAL_UV, dtype=np.uint8)
        self._layout: list[str] = []
        self._shown: dict[str, int] = {}  # source -> number of the frame drawn in its cell

    def compose(self, frames: dict[str, tuple[int, av.VideoFrame]]) -> av.VideoFrame:
        """A picture of ``frames`` (source -> (a number that changes with the frame, the frame)),
        the cells in the dict's order."""
        layout = list(frames)
        if layout != self._layout:
            self._layout = layout
            self._shown.clear()
            self._y.fill(_BLACK_Y)
            self._u.fill(_NEUTRAL_UV)
            self._v.fill(_NEUTRAL_UV)
        cells = grid_cells(len(layout), self.width, self.height)
        for cell, (source, (number, frame)) in zip(cells, frames.items(), strict=True):
            if self._shown.get(source) != number:
                self._draw(cell, frame)
                self._shown[source] = number
        data = np.concatenate([self._y.ravel(), self._u.ravel(), self._v.ravel()])
        return av.VideoFrame.from_ndarray(data.reshape(-1, self.width), format="yuv420p")

    def _draw(self, cell: Cell, frame: av.VideoFrame) -> None:
        scale = min(cell.width / frame.width, cell.height / frame.height)
        w = max(2, _even(round(frame.width * scale)))
        h = max(2, _even(round(frame.height * scale)))
        x = cell.x + _even((cell.width - w) // 2)
        y = cell.y + _even((cell.height - h) // 2)
        flat = frame.reformat(width=w, height=h, format="yuv420p").to_ndarray().ravel()
        quarter = (w // 2) * (h // 2)
        self._y[y : y + h, x : x + w] = flat[: w * h].reshape(h, w)
        self._u[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = flat[
            w * h : w * h + quarter
        ].reshape(h // 2, w // 2)
        self._v[y // 2 : (y + h) // 2, x // 2 : (x + w) // 2] = flat[w * h + quarter :].reshape(
            h // 2, w // 2
        )


def _even(value: int) -> int:
    return value - value % 2
