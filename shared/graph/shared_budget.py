"""A Graph request budget shared by every process of the app, kept in a ledger row per (tenant, app, family).

Intune's limits hold per app per tenant, whichever process sends. A budget kept in each process multiplies
the limit by the number of processes (Functions scales out; each instance runs several workers), so the
budget of a family lives in one ledger row in Table Storage, and each process leases blocks of requests
from it: one storage transaction per block, not per request.

Time is cut into *slices* (``window / slices_per_window``: 1.05 s for Intune's 20 s window plus the 1 s
margin), numbered from the Unix epoch so every process agrees on them. A lease reserves a number of requests
in each of the next ``lease_slices`` slices (4.2 s ahead by default), and a request reserved for slice ``i``
is sent only while the process's clock is in slice ``i``. The ledger counts what is reserved per slice, and a
lease is granted only where every run of ``R = ceil(window / slice) + 1`` consecutive slices stays within the
limit. Any interval of ``window`` seconds overlaps at most ``R`` slices, so no interval sees more than the
limit, whoever sent; ``window`` includes the margin, which covers clock skew between instances (NTP keeps it
to milliseconds) and the time between sending and Graph counting.

Why slices and not a counter per window: a counter per aligned 20 s window allows the limit at the end of one
window and again at the start of the next, twice the limit in 20 s; halving the limit per window to be safe
would waste half of it. The slices bound every interval, at the price of a ceiling of ``limit`` per ``R``
slices: 1,000 requests per 22.05 s, 91% of the published rate (the in-process budget allows 1,000 per 21 s,
95%). Finer slices raise the ceiling (40 per window: 1,000 per 21.525 s) but cut smaller reservations, which
measured twice the storage transactions per request (``benchmarks/graph_budget_processes.py``).
Reserving ahead keeps a lease alive for several slices (fewer storage transactions) without sending anything
outside the slice it was counted in, and a process that finds no room now reserves the first slice with room
and sleeps until it begins, instead of polling the row.

Requests reserved and not sent (a lease replaced early, demand lower than reserved) are given back by the
process's next lease write; the ledger never holds less than what was sent in a slice. Writes are
conditional on the row's ETag: a process first writes against its cached copy of the row (one transaction
when nobody else wrote since) and reads first after losing a race. No slice before the latest one any
writer's clock reached is charged again (a process whose clock is behind reserves from that one), so a row
pruned to the slices from one window before that one on holds every slice a check needs. Reads and writes
lease apart (a write waits for the smaller write budget without holding back the reads of its family).

If storage fails or does not answer within ``store_timeout``, the process falls back to ``1 / fallback_share``
of the limits, kept locally, for ``retry_store_after`` seconds, and logs it (the error's type only): fewer
requests than allowed rather than unlimited ones.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from shared.errors import ConcurrentUpdate
from shared.graph.budget import FamilyBudget, LocalFamilyBudget, RateBudget
from shared.ports import BudgetLedger, BudgetLedgerStore, Stored

__all__ = ["SharedBudgetOptions", "SharedBudgets", "SharedFamilyBudget"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
BlockingRunner = Callable[..., Awaitable[Any]]

# After this many lost races in one renewal, the process backs off for a fraction of a slice.
_MAX_CONFLICTS: Final = 6


@dataclass(frozen=True)
class SharedBudgetOptions:
    """How leases are cut and what happens without storage.

    Attributes:
        slices_per_window: slices per budget window (window and margin); finer slices raise the ceiling
            (``limit`` per ``window + slice``) and make each slice's reservation smaller.
        lease_slices: slices a lease reserves, the current one included (how long it lasts).
        lease_fraction: the most one lease reserves over its slices, as a fraction of the limit (what a
            process that stops sending keeps from the others until those slices age out).
        fallback_share: without storage, each process keeps to ``limit / fallback_share`` (the number of
            processes expected to send for one tenant at once).
        store_timeout: seconds a ledger call may take before the process falls back.
        retry_store_after: seconds spent on the fallback before storage is tried again.
    """

    slices_per_window: int = 20
    lease_slices: int = 4
    lease_fraction: float = 0.4
    fallback_share: int = 4
    store_timeout: float = 3.0
    retry_store_after: float = 30.0


@dataclass
class _Lease:
    """Requests reserved per slice (and still unsent) for this process."""

    requests: dict[int, int]
    writes: dict[int, int]
    reserved_requests: int
    reserved_writes: int

    @property
    def first(self) -> int:
        return min(self.requests)

    @property
    def last(self) -> int:
        return max(self.requests)


@dataclass
class _Counts:
    """One direction of a ledger: requests reserved per slice, and the room a slice has left."""

    limit: int
    ring: int
    slices: dict[int, int] = field(default_factory=dict)

    def room(self, index: int) -> int:
        """How many more requests slice ``index`` may hold, every window that contains it within the limit."""
        # A window ending after the last charged slice holds a part of the one ending there.
        last_end = min(index + self.ring - 1, max(max(self.slices, default=index), index))
        first = index - self.ring + 1
        totals = [0]
        for i in range(first, last_end + 1):
            totals.append(totals[-1] + self.slices.get(i, 0))
        # The window ending at ``end`` holds slices end - ring + 1 .. end.
        busiest = max(totals[end - first + 1] - totals[end - first + 1 - self.ring]
                      for end in range(index, last_end + 1))
        return self.limit - busiest

    def add(self, index: int, count: int) -> None:
        if count:
            self.slices[index] = self.slices.get(index, 0) + count


class _StoreDown(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SharedFamilyBudget:
    """One throttling family's budget of one (tenant, app), shared through a ledger row.

    Same interface as the in-process budget (:class:`~shared.graph.budget.LocalFamilyBudget`).
    """

    def __init__(
        self,
        store: BudgetLedgerStore,
        *,
        tenant_id: str,
        key: str,
        write_limit: int,
        request_limit: int,
        window: float,
        options: SharedBudgetOptions | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        run_blocking: BlockingRunner = asyncio.to_thread,
        rng: random.Random | None = None,
    ) -> None:
        """Create the budget.

        Args:
            store: the ledger rows.
            tenant_id: the managed tenant (the row's partition).
            key: the row within the tenant: app and family.
            write_limit: writes per ``window``.
            request_limit: requests of any kind per ``window``.
            window: the window with its safety margin, in seconds.
            options: lease and fallback tuning.
            clock: wall-clock seconds since the epoch (shared by every process through NTP).
            sleep: how to wait.
            run_blocking: runs a blocking store call off the event loop.
            rng: random source of the jitter that spreads processes waiting for the same slice.
        """
        self.options = options or SharedBudgetOptions()
        if write_limit < 1 or request_limit < 1 or window <= 0:
            raise ValueError("a budget needs limits >= 1 and window > 0")
        if self.options.slices_per_window < 1 or self.options.lease_slices < 1:
            raise ValueError("a shared budget needs at least one slice per window and per lease")
        self._store = store
        self._tenant_id = tenant_id
        self._key = key
        self.write_limit = write_limit
        self.request_limit = request_limit
        self.slice_seconds = window / self.options.slices_per_window
        self._slice_ms = max(1, round(self.slice_seconds * 1000))
        self.slice_seconds = self._slice_ms / 1000
        # Slices one window of sending can overlap (see the module docstring).
        self.ring = math.ceil(window / self.slice_seconds - 1e-9) + 1
        self._clock = clock
        self._sleep = sleep
        self._run_blocking = run_blocking
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        # Reads and writes lease apart: a write waiting for the (smaller) write budget must not hold back
        # the reads of its family. A write lease reserves, per slice, writes and the requests they are.
        self._leases: dict[bool, _Lease | None] = {False: None, True: None}
        self._cached: Stored[BudgetLedger] | None = None
        self._read_first = False
        self._block_requests = self._initial_block(request_limit)
        self._block_writes = self._initial_block(write_limit)
        share = self.options.fallback_share
        self._fallback = LocalFamilyBudget(
            RateBudget(max(1, write_limit // share), window, clock=clock, sleep=sleep),
            RateBudget(max(1, request_limit // share), window, clock=clock, sleep=sleep),
        )
        self._fallback_until: float | None = None
        self._warned_skew = False
        # Leases taken and times the ledger was found unavailable (for logs, tests and benchmarks).
        self.leases = 0
        self.fallbacks = 0

    def _max_block(self, limit: int) -> int:
        # Per slice. With the defaults a lease of 4 such slices is 40% of the limit, and R = 21 of them are
        # twice the limit, so one process alone still reaches the ceiling.
        return max(1, int(limit * self.options.lease_fraction / self.options.lease_slices))

    def _initial_block(self, limit: int) -> int:
        return max(1, self._max_block(limit) // 4)

    @property
    def on_fallback(self) -> bool:
        """Whether the process keeps to its local share because the ledger is unavailable."""
        return self._fallback_until is not None

    async def acquire(self, *, reads: int, writes: int) -> None:
        """Wait until ``reads + writes`` more requests fit (``writes`` of them writes), then count them."""
        # More than the limit can never fit in one slice; such a call (a $batch larger than a scaled limit)
        # takes the limit's worth instead.
        need_requests = min(reads + writes, self.request_limit)
        need_writes = min(writes, self.write_limit)
        if need_requests <= 0:
            return
        while True:
            wait = 0.0
            # One renewal at a time per process and family; nobody holds the lock while waiting for a slice,
            # so a write waiting for the (smaller) write budget does not hold back the reads behind it.
            async with self._lock:
                now = self._clock()
                if self._fallback_until is not None and now >= self._fallback_until:
                    self._fallback_until = None
                    self._read_first = True
                    logger.info("shared Graph budget: trying the ledger again family_key=%s", self._key)
                if self._fallback_until is None:
                    current = self._slice_of(now)
                    lease = self._leases[need_writes > 0]
                    if lease is not None and lease.first > current:
                        wait = self._start_of(lease.first) - now  # reserved ahead: wait for that slice
                    elif (lease is not None and lease.requests.get(current, 0) >= need_requests
                            and lease.writes.get(current, 0) >= need_writes):
                        lease.requests[current] -= need_requests
                        if need_writes:
                            lease.writes[current] -= need_writes
                        return
                    else:
                        try:
                            await self._renew(need_requests, need_writes)
                        except _StoreDown as down:
                            self._enter_fallback(down.error)
            if self._fallback_until is not None:
                await self._fallback.acquire(reads=reads, writes=writes)
                return
            if wait > 0:
                await self._sleep(wait)

    def _enter_fallback(self, error: str) -> None:
        # A lease whose renewal may still land (a call that timed out) is never used again: its refund may
        # have been written.
        self._leases = {False: None, True: None}
        self._cached = None
        self._fallback_until = self._clock() + self.options.retry_store_after
        self.fallbacks += 1
        logger.warning(
            "shared Graph budget unavailable, keeping to 1/%d of the limits for %.0f s "
            "family_key=%s error=%s",
            self.options.fallback_share, self.options.retry_store_after, self._key, error,
        )

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.wait_for(self._run_blocking(function, *args, **kwargs),
                                          timeout=self.options.store_timeout)
        except ConcurrentUpdate:
            raise
        except Exception as exc:  # noqa: BLE001  # any ledger failure means: fall back, never run unlimited
            raise _StoreDown(type(exc).__name__) from None

    def _slice_of(self, moment: float) -> int:
        return math.floor(moment * 1000 / self._slice_ms)

    def _start_of(self, index: int) -> float:
        return index * self._slice_ms / 1000

    def _counts(self, ledger: BudgetLedger | None, floor: int) -> tuple[_Counts, _Counts]:
        requests = _Counts(self.request_limit, self.ring)
        writes = _Counts(self.write_limit, self.ring)
        if ledger is None:
            return requests, writes
        if ledger.slice_ms != self._slice_ms:
            # Written by a process with other settings (a rollout): everything it reserved is kept, moved to
            # the current slice, which only delays what may be sent next.
            requests.add(floor, sum(ledger.requests.values()))
            writes.add(floor, sum(ledger.writes.values()))
            return requests, writes
        # Slices that left every window a new reservation can share are dropped.
        oldest = floor - self.ring + 1
        for source, target in ((ledger.requests, requests), (ledger.writes, writes)):
            target.slices.update({i: n for i, n in source.items() if i >= oldest and n > 0})
        return requests, writes

    def _give_back(self, lease: _Lease | None, requests: _Counts, writes: _Counts) -> None:
        if lease is None:
            return
        for counts, left in ((requests, lease.requests), (writes, lease.writes)):
            for index, unsent in left.items():
                if unsent and index in counts.slices:
                    counts.slices[index] = max(0, counts.slices[index] - unsent)
                    if not counts.slices[index]:
                        del counts.slices[index]

    def _adapt_blocks(self, lease: _Lease | None, current: int) -> None:
        if lease is None:
            return
        # Renewed while the lease still had slices ahead: this slice's share was too small for the demand.
        # Renewed after the lease ran out with most of it unsent: the shares were too large.
        ran_out = current > lease.last
        if lease.reserved_writes:
            self._block_writes = self._adapted(self._block_writes, lease.reserved_writes,
                                               sum(lease.writes.values()), ran_out, self.write_limit)
        else:
            self._block_requests = self._adapted(self._block_requests, lease.reserved_requests,
                                                 sum(lease.requests.values()), ran_out, self.request_limit)

    def _adapted(self, block: int, reserved: int, unsent: int, ran_out: bool, limit: int) -> int:
        if not ran_out:
            return min(self._max_block(limit), block * 2)
        if unsent * 2 > reserved:
            return max(1, block // 2)
        return block

    async def _renew(self, need_requests: int, need_writes: int) -> None:
        """Replace the read or write lease: give back what is unsent, reserve from a slice with room."""
        kind = need_writes > 0
        old = self._leases[kind]
        for _ in range(_MAX_CONFLICTS):
            fresh = self._read_first or self._cached is None
            stored = (await self._call(self._store.read, self._tenant_id, self._key)) if fresh \
                else self._cached
            ledger = stored.value if stored is not None else None
            now = self._clock()
            floor = self._slice_of(now)
            if ledger is not None and ledger.slice_ms == self._slice_ms:
                if ledger.current > floor + 1 and not self._warned_skew:
                    # Safe (this process waits for the others' slice), but a clock off by more than the
                    # margin voids the budget's guarantee and stalls this process: worth an operator's look.
                    self._warned_skew = True
                    logger.warning("shared Graph budget: this process's clock is %.1f s behind another's "
                                   "family_key=%s", (ledger.current - floor) * self.slice_seconds, self._key)
                floor = max(floor, ledger.current)
            requests, writes = self._counts(ledger, floor)
            self._give_back(old, requests, writes)
            start = floor
            while requests.room(start) < need_requests or writes.room(start) < need_writes:
                start += 1
            if start > floor and not fresh:
                self._read_first = True  # the cached row may be stale: look before waiting
                continue
            lease = _Lease(requests={}, writes={}, reserved_requests=0, reserved_writes=0)
            for index in range(start, start + self.options.lease_slices):
                first = index == start
                if kind:
                    # Writes, each one request too; the first slice also holds the reads sent with them.
                    reads_along = need_requests - need_writes if first else 0
                    take_writes = min(max(need_writes, self._block_writes) if first else self._block_writes,
                                      writes.room(index), requests.room(index) - reads_along)
                    take = take_writes + reads_along
                else:
                    take_writes = 0
                    take = min(max(need_requests, self._block_requests) if first else self._block_requests,
                               requests.room(index))
                if not first and take < 1:
                    break
                requests.add(index, take)
                writes.add(index, take_writes)
                lease.requests[index] = take
                lease.writes[index] = take_writes
                lease.reserved_requests += take
                lease.reserved_writes += take_writes
            updated = BudgetLedger(slice_ms=self._slice_ms, requests=requests.slices, writes=writes.slices,
                                   current=floor)
            try:
                etag = await self._call(self._store.write, self._tenant_id, self._key, updated,
                                        etag=stored.etag if stored is not None else None)
            except ConcurrentUpdate:
                self._read_first = True
                self._cached = None
                continue
            self._adapt_blocks(old, self._slice_of(now))
            self._cached = Stored(updated, etag)
            self._read_first = False
            self.leases += 1
            self._leases[kind] = lease
            return
        # Many processes raced for the row at once: step aside briefly instead of hammering it.
        await self._sleep(self._rng.uniform(0, self.slice_seconds / 2))


class SharedBudgets:
    """Makes the shared budget of each family of one (tenant, app) (a :class:`FamilyBudgetSource`)."""

    def __init__(
        self,
        store: BudgetLedgerStore,
        *,
        tenant_id: str,
        client_id: str,
        options: SharedBudgetOptions | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        run_blocking: BlockingRunner = asyncio.to_thread,
    ) -> None:
        """Budgets of ``(tenant_id, client_id)``; the other arguments as in :class:`SharedFamilyBudget`."""
        self._store = store
        self._tenant_id = tenant_id
        self._client_id = client_id
        self._options = options
        self._clock = clock
        self._sleep = sleep
        self._run_blocking = run_blocking

    def __call__(self, family: str, /, *, write_limit: int, request_limit: int,
                 window: float) -> FamilyBudget:
        """The shared budget of ``family``."""
        return SharedFamilyBudget(
            self._store, tenant_id=self._tenant_id, key=f"{self._client_id}|{family}",
            write_limit=write_limit, request_limit=request_limit, window=window, options=self._options,
            clock=self._clock, sleep=self._sleep, run_blocking=self._run_blocking,
        )
