"""Client-side request budgets, so our own workers never exceed Intune's published limits.

Intune allows, per app per tenant, per service family and per 20 seconds, 100 writes and 1,000 requests of
any kind (double for the "Intune devices" family, which holds the scripts). A :class:`RateBudget` is a
sliding-window limiter: before a request leaves, it waits until fewer than ``limit`` requests were sent in the
last ``window`` seconds. :class:`Budgets` keeps one pair (writes, any) per family for one (tenant, app), and
every worker of the process that talks to that (tenant, app) shares it (see
:class:`~shared.graph.factory.GraphClientFactory`), so 20 concurrent workers together stay under the limit
instead of each of them discovering it through 429s.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["PUBLISHED_LIMITS", "BudgetConfig", "Budgets", "RateBudget"]


def _default_multipliers() -> Mapping[str, float]:
    # The "Intune devices" family (scripts among them) has double the limits.
    return MappingProxyType({"devices": 2.0})


@dataclass(frozen=True)
class BudgetConfig:
    """Published Intune limits per app per tenant, scalable for a simulator whose limits are scaled.

    Attributes:
        write_limit: writes (POST/PUT/PATCH/DELETE) per window.
        read_limit: requests of any kind per window (writes included).
        window: window length in seconds.
        margin: extra seconds added to the window, to absorb the gap between when we send and when
            Graph counts the request.
        family_multipliers: families whose limits are a multiple of the default ones.
    """

    write_limit: int = 100
    read_limit: int = 1000
    window: float = 20.0
    margin: float = 1.0
    family_multipliers: Mapping[str, float] = field(default_factory=_default_multipliers)

    def limits(self, family: str) -> tuple[int, int]:
        """(writes, any requests) per window for ``family``."""
        factor = self.family_multipliers.get(family, 1.0)
        return max(1, int(self.write_limit * factor)), max(1, int(self.read_limit * factor))

    def scaled(self, scale: float) -> BudgetConfig:
        """Limits and window divided by ``scale``, as the simulator scales Graph's.

        The rate stays the published one while a burst reaches the limit after a handful of requests.
        """
        return BudgetConfig(
            write_limit=max(1, int(self.write_limit / scale)),
            read_limit=max(1, int(self.read_limit / scale)),
            window=self.window / scale,
            margin=self.margin,
            family_multipliers=self.family_multipliers,
        )


PUBLISHED_LIMITS: Final = BudgetConfig()


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


class Budgets:
    """The request budgets of one (tenant, app): per throttling family, one for writes and one for all."""

    def __init__(
        self,
        config: BudgetConfig | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Create budgets for ``config``; ``None`` disables client-side budgeting."""
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._families: dict[str, tuple[RateBudget, RateBudget]] = {}

    def family(self, name: str) -> tuple[RateBudget, RateBudget] | None:
        """The (writes, any requests) budgets of a family, created on first use."""
        if self.config is None:
            return None
        pair = self._families.get(name)
        if pair is None:
            writes, reads = self.config.limits(name)
            window = self.config.window + self.config.margin
            pair = (RateBudget(writes, window, clock=self._clock, sleep=self._sleep),
                    RateBudget(reads, window, clock=self._clock, sleep=self._sleep))
            self._families[name] = pair
        return pair

    async def acquire(self, *, family: str, reads: int, writes: int) -> None:
        """Wait until ``reads + writes`` more requests of ``family`` fit (``writes`` of them writes)."""
        pair = self.family(family)
        if pair is None:
            return
        if writes:
            await pair[0].acquire(writes)
        if reads + writes:
            await pair[1].acquire(reads + writes)
