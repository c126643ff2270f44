"""Fixtures shared by the test modules: leak checks, the local protocol servers and media.

Timing-sensitive tests carry ``@pytest.mark.timing``; ``scripts/test_under_load.sh`` runs them
again with CPU burners beside them (see docs/testing.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from tests.browser.waiting import eventually
from vision_agents.core.audio import PcmData
from vision_agents.testing import make_test_video, synthesize_speech


@contextlib.asynccontextmanager
async def no_leaks() -> AsyncIterator[None]:
    """Fail if the block leaves tasks or threads behind."""
    tasks_before = asyncio.all_tasks()
    threads_before = set(threading.enumerate())
    yield
    leftover_tasks = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not leftover_tasks, f"tasks left running: {leftover_tasks}"
    leftover_threads = [
        t for t in threading.enumerate() if t not in threads_before and t.is_alive()
    ]
    assert not leftover_threads, f"threads left running: {leftover_threads}"


@pytest.fixture
async def leak_check() -> AsyncIterator[None]:
    """The test must leave no task or thread running (checked after the test body)."""
    async with no_leaks():
        yield


async def wait_until(
    check: Callable[[], bool] | Callable[[], Awaitable[bool]], within_s: float, what: str
) -> None:
    """Wait for a condition instead of sleeping; fails naming ``what`` after ``within_s``."""
    await eventually(check, within_s, what)


# -- media -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (one face; 512x512 RGB), shipped in the [models] extra."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def photo(astronaut: np.ndarray) -> np.ndarray:
    """A 640x480 frame holding the astronaut photo."""
    frame = np.zeros((480, 640, 3), dtype=np.uint8)
    frame[:, 80:560] = astronaut[16:496, 16:496]
    return frame


@pytest.fixture(scope="session")
def speech() -> PcmData:
    """A sentence spoken by espeak-ng (22.05 kHz mono)."""
    return synthesize_speech("Hello agent, this is a short test of the audio path.")


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory, speech: PcmData) -> Path:
    """3 s of numbered 30 fps frames with ``speech`` as its sound."""
    path = tmp_path_factory.mktemp("media") / "speech.mkv"
    return make_test_video(path, seconds=3.0, fps=30, audio=speech)
