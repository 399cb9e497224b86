"""Clocks for the engine: real time, or a virtual clock that tests (and demos) drive.

The virtual clock never sleeps. ``advance`` moves it forward and fires what became due; with
``auto_advance`` (the default for ``--clock virtual``) the engine jumps straight to the next due
timer whenever nothing else is runnable, so a 10-day timer costs nothing while the order of
events stays exactly what real time would give. Tests that need to act *before* a timer fires
(raise an event, terminate) switch auto-advance off and call ``advance`` themselves.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock:
    """Current time plus 'call me at' for timers."""

    def now(self) -> datetime:
        raise NotImplementedError

    def call_at(self, due: datetime, callback: Callable[[], None]) -> None:
        raise NotImplementedError

    def cancel_all(self) -> None:
        raise NotImplementedError


class RealClock(Clock):
    def __init__(self) -> None:
        self._handles: list[asyncio.TimerHandle] = []

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, due: datetime, callback: Callable[[], None]) -> None:
        delay = max(0.0, (due - self.now()).total_seconds())
        self._handles = [h for h in self._handles if not h.cancelled()]
        self._handles.append(asyncio.get_running_loop().call_later(delay, callback))

    def cancel_all(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()


class VirtualClock(Clock):
    def __init__(self, start: datetime | None = None, *, auto_advance: bool = True) -> None:
        # Whole seconds keep timestamps in histories readable and stable.
        self._now = (start or datetime.now(UTC)).replace(microsecond=0)
        self.auto_advance = auto_advance
        self._heap: list[tuple[datetime, int, Callable[[], None]]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_at(self, due: datetime, callback: Callable[[], None]) -> None:
        if due <= self._now:
            asyncio.get_running_loop().call_soon(callback)
            return
        heapq.heappush(self._heap, (due, next(self._counter), callback))

    def cancel_all(self) -> None:
        self._heap.clear()

    def next_due(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def advance(self, seconds: float) -> None:
        """Move time forward and fire every callback that became due."""
        self.advance_to(self._now + timedelta(seconds=seconds))

    def advance_to(self, moment: datetime) -> None:
        self._now = max(self._now, moment)
        while self._heap and self._heap[0][0] <= self._now:
            _, _, callback = heapq.heappop(self._heap)
            callback()
