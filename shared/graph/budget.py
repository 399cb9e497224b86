"""Client-side request budgets, so our own workers never exceed Intune's published limits.

Intune allows, per app per tenant, per service family and per 20 seconds, 100 writes and 1,000 requests of
any kind (double for the "Intune devices" family, which holds the scripts). A :class:`RateBudget` is a
sliding-window limiter: before a request leaves, it waits until fewer than ``limit`` requests were sent in the
last ``window`` seconds. :class:`Budgets` keeps one pair (writes, any) per family for one (tenant, app), and
every worker of the process that talks to that (tenant, app) shares it (see
:class:`~shared.graph.factory.GraphClientFactory`), so 20 concurrent workers together stay under the limit
instead of each of them discovering it through 429s. Where each family's budget lives is pluggable: in this
process (:class:`LocalFamilyBudget`, unit tests and tools) or shared by every process of the app through a
ledger in Table Storage (:mod:`shared.graph.shared_budget`, what the app uses).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

__all__ = [
    "PUBLISHED_LIMITS",
    "BudgetConfig",
    "Budgets",
    "FamilyBudget",
    "FamilyBudgetSource",
    "LocalFamilyBudget",
    "RateBudget",
]


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


class FamilyBudget(Protocol):
    """The budget of one throttling family of one (tenant, app): writes and requests of any kind."""

    async def acquire(self, *, reads: int, writes: int) -> None:
        """Wait until ``reads + writes`` more requests fit (``writes`` of them writes), then count them."""
        ...


class FamilyBudgetSource(Protocol):
    """Makes the budget of a family from its limits (in-process by default, shared across processes)."""

    def __call__(self, family: str, /, *, write_limit: int, request_limit: int,
                 window: float) -> FamilyBudget:
        """The budget of ``family``: at most the limits in any ``window`` seconds (margin included)."""
        ...


class LocalFamilyBudget:
    """A family's budget kept in this process only: a sliding log for writes and one for all requests."""

    def __init__(self, writes: RateBudget, requests: RateBudget) -> None:
        self.writes = writes
        self.requests = requests

    async def acquire(self, *, reads: int, writes: int) -> None:
        """Wait until ``reads + writes`` more requests fit (``writes`` of them writes), then count them."""
        if writes:
            await self.writes.acquire(writes)
        if reads + writes:
            await self.requests.acquire(reads + writes)


class Budgets:
    """The request budgets of one (tenant, app): per throttling family, one for writes and one for all."""

    def __init__(
        self,
        config: BudgetConfig | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        source: FamilyBudgetSource | None = None,
    ) -> None:
        """Create budgets for ``config``; ``None`` disables client-side budgeting.

        ``source`` makes each family's budget (by default one kept in this process; the factory passes
        one shared by every process of the app, see :mod:`shared.graph.shared_budget`).
        """
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._source: FamilyBudgetSource = source or self._local
        self._families: dict[str, FamilyBudget] = {}

    def _local(self, _family: str, /, *, write_limit: int, request_limit: int,
               window: float) -> FamilyBudget:
        return LocalFamilyBudget(RateBudget(write_limit, window, clock=self._clock, sleep=self._sleep),
                                 RateBudget(request_limit, window, clock=self._clock, sleep=self._sleep))

    def family(self, name: str) -> FamilyBudget | None:
        """The budget of a family, created on first use."""
        if self.config is None:
            return None
        budget = self._families.get(name)
        if budget is None:
            writes, requests = self.config.limits(name)
            budget = self._source(name, write_limit=writes, request_limit=requests,
                                  window=self.config.window + self.config.margin)
            self._families[name] = budget
        return budget

    async def acquire(self, *, family: str, reads: int, writes: int) -> None:
        """Wait until ``reads + writes`` more requests of ``family`` fit (``writes`` of them writes)."""
        budget = self.family(family)
        if budget is not None and reads + writes:
            await budget.acquire(reads=reads, writes=writes)
