"""`ProcessBackend`: a detector built and run in a child process at a lower CPU priority.

A detector in a thread of the agent's process shares its GIL and its CPU priority. Profiled
(py-spy) on 2 cores, OpenCV's detectors hold the GIL for well under 1% of the time, so the
cost of a busy detector is CPU time. Lowering a detection *thread's* priority is unsafe: a
thread preempted while holding the GIL stalls the event loop until it runs again (our
reading of a 3 s stall in one of 12 benchmark runs with a nice +10 thread under load). A child process has its own GIL, so its priority can be lowered
without that risk, and a crash in native model code stays in the child.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import numpy.typing as npt

from vision_agents.core.processors.detection.backend import DetectorBackend
from vision_agents.core.processors.detection.types import Detection

logger = logging.getLogger(__name__)

BackendFactory = Callable[[], DetectorBackend]
"""Builds a backend: a backend class or a ``functools.partial`` of one (it must pickle)."""


class ProcessBackend(DetectorBackend):
    """Runs the backend ``factory()`` builds in one child process, ``niceness`` below us.

    ``detect`` sends the image to the child and waits for its detections (call it from a
    worker thread, as the detection processor does). The child starts on the first call
    (a fresh interpreter: ~1-2 s) and stops on ``close``. Like any code using
    ``multiprocessing``, a script that creates one needs an ``if __name__ == "__main__":``
    guard. If building the backend fails in the child, every ``detect`` raises that error.
    """

    name: ClassVar[str] = "process"

    def __init__(self, factory: BackendFactory, *, niceness: int = 10) -> None:
        if not callable(factory):
            raise ValueError(f"factory must build a DetectorBackend, got {factory!r}")
        if isinstance(niceness, bool) or not isinstance(niceness, int) or not 0 <= niceness <= 19:
            raise ValueError(f"niceness must be an int from 0 to 19, got {niceness!r}")
        self.factory = factory
        self.niceness = niceness
        self.backend_name = factory_name(factory)
        """The name of the backend running in the child."""
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False

    def detect(self, rgb: npt.NDArray[Any]) -> list[Detection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("this ProcessBackend is closed")
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),  # no fork of our threads
                    initializer=_child_start,
                    initargs=(self.factory, self.niceness),
                )
            pool = self._pool
        return pool.submit(_child_detect, rgb).result()

    @property
    def child_pid(self) -> int | None:
        """The child's process id once it runs, else None."""
        pool = self._pool
        processes = list(getattr(pool, "_processes", {}).keys()) if pool else []
        return processes[0] if processes else None

    def close(self, timeout_s: float = 5.0) -> None:
        """Closes the backend in the child and stops it; kills it after ``timeout_s``."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            pool.submit(_child_close).result(timeout=timeout_s)
        except Exception as exc:
            logger.warning("closing detector %s in its process: %s", self.backend_name, exc)
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout_s)


def factory_name(factory: BackendFactory) -> str:
    """A backend's name from its factory: the class's ``name``, else the callable's name."""
    target: Any = factory.func if isinstance(factory, partial) else factory
    name = getattr(target, "name", None)
    return name if isinstance(name, str) else getattr(target, "__name__", "detector")


# -- in the child --------------------------------------------------------------------------

_backend: DetectorBackend | None = None
_start_error: BaseException | None = None


def _child_start(factory: BackendFactory, niceness: int) -> None:
    global _backend, _start_error
    if niceness:
        os.nice(niceness)  # the whole child: its own GIL, so no one waits on it
    try:
        _backend = factory()
        if not isinstance(_backend, DetectorBackend):
            raise TypeError(f"factory {factory!r} built {_backend!r}, not a DetectorBackend")
    except BaseException as exc:  # reported by every detect() rather than killing the pool
        _start_error = exc


def _child_detect(rgb: npt.NDArray[Any]) -> list[Detection]:
    if _start_error is not None:
        raise RuntimeError(f"building the detector failed: {_start_error!r}")
    assert _backend is not None
    return _backend.detect(rgb)


def _child_close() -> None:
    if _backend is not None:
        _backend.close()
