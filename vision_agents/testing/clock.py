"""A clock that moves only when a test moves it, for components that pace by time."""

from __future__ import annotations

import asyncio
from typing import Any


class ManualClock:
    """Implements ``vision_agents.core.utils.clock.Clock``: ``now()`` changes only through
    ``advance``; a ``wait`` ends when its event is set or ``advance`` reaches its deadline."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        if event.is_set() or seconds <= 0:
            return
        due: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (self._now + seconds, due)
        self._waiters.append(waiter)
        setter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([due, setter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            setter.cancel()
            await asyncio.gather(setter, return_exceptions=True)
            self._waiters.remove(waiter)

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` and wake every wait whose deadline that reaches."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back; got {seconds!r} s")
        self._now += seconds
        for deadline, due in self._waiters:
            if deadline <= self._now + 1e-9 and not due.done():
                due.set_result(None)

    @property
    def waiting(self) -> int:
        """How many waits have not ended yet."""
        return len(self._waiters)
