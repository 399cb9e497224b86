"""Client-side request budgets, so our own workers never exceed Intune's published limits.

Intune allows, per app per tenant and per 20 seconds, 100 writes and 1,000 requests of any kind. A
:class:`RateBudget` is a sliding-window limiter: before a request leaves, it waits until fewer than ``limit``
requests were sent in the last ``window`` seconds. Every worker of a process that talks to the same
(tenant, app) shares one budget (see :class:`~shared.graph.client.GraphClientFactory`), so 20 concurrent
workers together stay under the limit instead of each of them discovering it through 429s.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["BudgetConfig", "RateBudget"]


@dataclass(frozen=True)
class BudgetConfig:
    """Published Intune limits per app per tenant, scalable for a simulator whose limits are scaled.

    Attributes:
        write_limit: writes (POST/PUT/PATCH/DELETE) per window.
        read_limit: requests of any kind per window (writes included).
        window: window length in seconds.
        margin: extra seconds added to the window, to absorb the gap between when we send and when
            Graph counts the request.
    """

    write_limit: int = 100
    read_limit: int = 1000
    window: float = 20.0
    margin: float = 0.25

    def scaled(self, scale: float) -> BudgetConfig:
        """Limits and window divided by ``scale``, as the simulator scales Graph's.

        The rate stays the published one while a burst reaches the limit after a handful of requests.
        """
        return BudgetConfig(
            write_limit=max(1, int(self.write_limit / scale)),
            read_limit=max(1, int(self.read_limit / scale)),
            window=self.window / scale,
            margin=self.margin,
        )


class RateBudget:
    """At most ``limit`` acquisitions in any ``window`` seconds (a sliding log of send times)."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a budget needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()
        self.waited = 0.0

    async def acquire(self, count: int = 1) -> None:
        """Wait until ``count`` more requests fit in the window, then record them as sent."""
        for _ in range(count):
            await self._acquire_one()

    async def _acquire_one(self) -> None:
        # The lock makes waiters queue fairly: the first to wait is the first to send.
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                delay = self._sent[0] + self.window - now
                self.waited += delay
                await self._sleep(max(delay, 0.001))

    def in_window(self) -> int:
        """Requests recorded in the current window (for logs and tests)."""
        now = self._clock()
        return sum(1 for t in self._sent if t > now - self.window)
