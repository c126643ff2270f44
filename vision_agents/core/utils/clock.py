"""Time for components that pace or stamp by it, injectable so tests can drive it.

``Clock`` is what such a component needs: the time now, and a wait that ends at a deadline
or when an event is set, whichever comes first. ``MONOTONIC`` is the real one (the event
loop's clock). ``vision_agents.testing.ManualClock`` moves only when a test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        """Return once ``event`` is set or ``seconds`` have passed on this clock."""
        ...


class MonotonicClock:
    """Real time: ``time.monotonic`` and the event loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()


MONOTONIC = MonotonicClock()
