"""`DetectorBackend`: the interface every detector (OpenCV, ONNX, Ultralytics) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy.typing as npt

from vision_agents.core.processors.detection.types import Detection


class DetectorBackend(ABC):
    """Finds objects in one RGB image.

    ``detect`` is synchronous and may be slow: the detection processor calls it from its own
    worker thread, one call at a time, so it never runs on the event loop. Backends must not
    keep references to the array they are given.
    """

    name: ClassVar[str] = "detector"

    @abstractmethod
    def detect(self, rgb: npt.NDArray[Any]) -> list[Detection]:
        """Objects in ``rgb`` (H x W x 3 uint8), boxes in its pixels."""

    def close(self) -> None:
        """Release the model; called once from the worker thread when the processor closes."""
        return None


def check_rgb(rgb: npt.NDArray[Any]) -> None:
    """Raise a clear error for anything but an H x W x 3 uint8 array."""
    if rgb.dtype.name != "uint8" or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(
            f"expected an RGB image as an H x W x 3 uint8 array, "
            f"got shape {rgb.shape} dtype {rgb.dtype}"
        )
