"""The shared request budget's block leasing, against the in-memory ledger (virtual time)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from shared.graph import GraphClient, GraphClientFactory
from shared.graph.budget import BudgetConfig, Budgets, LocalFamilyBudget
from shared.graph.shared_budget import SharedBudgetOptions, SharedBudgets, SharedFamilyBudget
from shared.ports import BudgetLedger
from shared.storage.memory_budget import InMemoryBudgetLedgerStore
from tests.graph.scripted import make_client

TENANT = "11111111-1111-1111-1111-111111111111"
KEY = "app|deviceConfiguration"


class Clock:
    """Virtual wall-clock time: a sleep moves time forward and yields to the other tasks."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def direct(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def budget(store: InMemoryBudgetLedgerStore, clock: Clock, *, write_limit: int = 10,
           request_limit: int = 100, window: float = 10.0, **options: Any) -> SharedFamilyBudget:
    return SharedFamilyBudget(store, tenant_id=TENANT, key=KEY, write_limit=write_limit,
                              request_limit=request_limit, window=window,
                              options=SharedBudgetOptions(**options), clock=clock, sleep=clock.sleep,
                              run_blocking=direct)


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def send_all(budgets: list[Any], clock: Clock, *, workers: int, each: int,
                   write_every: int = 0) -> tuple[list[float], list[float]]:
    """``workers`` tasks per budget (each its own process), each sending ``each`` requests."""
    sent: list[float] = []
    writes: list[float] = []

    async def worker(b: Any) -> None:
        for i in range(each):
            write = bool(write_every) and i % write_every == 0
            await b.acquire(reads=0 if write else 1, writes=1 if write else 0)
            sent.append(clock.now)
            if write:
                writes.append(clock.now)
            await clock.sleep(0.01)

    await asyncio.gather(*(worker(b) for b in budgets for _ in range(workers)))
    return sent, writes


async def test_two_processes_sharing_a_ledger_never_exceed_the_limit_in_any_window() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    processes = [budget(store, clock), budget(store, clock)]  # separate caches and leases, one ledger
    sent, writes = await send_all(processes, clock, workers=8, each=60, write_every=5)
    assert len(sent) == 960
    assert busiest(sent, 10.0) <= 100
    assert busiest(writes, 10.0) <= 10
    # Both processes were served (a greedy one does not starve the other).
    assert all(p.leases > 1 for p in processes)


async def test_two_in_process_budgets_exceed_the_limit_which_is_why_the_ledger_exists() -> None:
    clock = Clock()
    local = [Budgets(BudgetConfig(write_limit=10, read_limit=100, window=10.0, margin=0.0),
                     clock=clock, sleep=clock.sleep) for _ in range(2)]

    class Family:
        def __init__(self, budgets: Budgets) -> None:
            self.budgets = budgets

        async def acquire(self, *, reads: int, writes: int) -> None:
            await self.budgets.acquire(family="deviceConfiguration", reads=reads, writes=writes)

    sent, _ = await send_all([Family(b) for b in local], clock, workers=8, each=30)
    assert busiest(sent, 10.0) > 100


async def test_a_burst_at_the_end_of_a_window_is_not_repeated_at_the_start_of_the_next() -> None:
    clock = Clock(1_000_009.9)  # 0.1 s before a 10 s boundary of the epoch
    store = InMemoryBudgetLedgerStore()
    first, second = budget(store, clock), budget(store, clock)
    times: list[float] = []
    for _ in range(100):
        await first.acquire(reads=1, writes=0)
        times.append(clock.now)
    assert clock.now == pytest.approx(1_000_009.9)  # the whole limit at once, as Graph allows
    clock.now = 1_000_010.1  # the next aligned window has begun
    await second.acquire(reads=1, writes=0)
    times.append(clock.now)
    assert clock.now - 1_000_009.9 >= 10.0
    assert busiest(times, 10.0) <= 100


async def test_a_process_pays_one_transaction_per_block_not_per_request() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    only = budget(store, clock, request_limit=1000, write_limit=100, window=20.0)
    for _ in range(400):
        await only.acquire(reads=1, writes=0)
        await clock.sleep(0.02)  # 50 requests/s: the published rate
    # Blocks grow to a tenth of the limit; alone, each lease is one conditional write on the cached row.
    assert store.transactions <= 400 / 10


async def test_tokens_a_process_did_not_send_are_given_back_on_its_next_lease() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    process = budget(store, clock)
    await process.acquire(reads=1, writes=0)  # leases a block, sends one request
    await clock.sleep(5.0)  # the lease dies unused
    await process.acquire(reads=1, writes=0)
    ledger = store.ledger(TENANT, KEY)
    assert ledger is not None
    first, now = min(ledger.requests), int(clock.now / process.slice_seconds)
    assert ledger.requests[first] == 1  # what was really sent; the rest of the lease went back
    assert not [i for i in ledger.requests if first < i < now]
    assert ledger.requests[now] >= 1


async def test_a_process_whose_clock_runs_behind_charges_the_newest_slice() -> None:
    ahead = Clock()
    behind = Clock(ahead.now - 0.4)
    store = InMemoryBudgetLedgerStore()
    a, b = budget(store, ahead), budget(store, behind)
    await a.acquire(reads=100, writes=0)  # the whole limit, charged by the clock that runs ahead
    waited_from = behind.now
    await b.acquire(reads=1, writes=0)
    assert behind.now - waited_from >= 10.0 - 0.4 - 1e-6


async def test_without_storage_a_process_keeps_to_its_share_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    store.fail = True
    process = budget(store, clock, fallback_share=4, retry_store_after=30.0)
    times = []
    for _ in range(50):
        await process.acquire(reads=1, writes=0)
        times.append(clock.now)
    assert process.on_fallback
    assert busiest(times, 10.0) <= 25  # a quarter of the limit, never unlimited
    assert "shared Graph budget unavailable" in caplog.text
    assert "ConnectionError" in caplog.text
    assert "unreachable" not in caplog.text  # the error's type, not its text
    # Storage is back: after the retry period the ledger is used again.
    store.fail = False
    clock.now += 31.0
    await process.acquire(reads=1, writes=0)
    assert not process.on_fallback
    assert store.ledger(TENANT, KEY) is not None


async def test_a_ledger_that_does_not_answer_counts_as_unavailable() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()

    async def hangs(function: Any, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)
        return function(*args, **kwargs)

    process = SharedFamilyBudget(store, tenant_id=TENANT, key=KEY, write_limit=10, request_limit=100,
                                 window=10.0, options=SharedBudgetOptions(store_timeout=0.05),
                                 clock=clock, sleep=clock.sleep, run_blocking=hangs)
    await asyncio.wait_for(process.acquire(reads=1, writes=0), timeout=5)
    assert process.on_fallback


async def test_budgets_draw_every_family_from_the_shared_ledger() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    config = BudgetConfig(write_limit=10, read_limit=100, window=10.0, margin=0.0)
    budgets = Budgets(config, source=SharedBudgets(store, tenant_id=TENANT, client_id="app", clock=clock,
                                                   sleep=clock.sleep, run_blocking=direct))
    await budgets.acquire(family="deviceConfiguration", reads=1, writes=1)
    await budgets.acquire(family="devices", reads=1, writes=0)
    assert isinstance(budgets.family("devices"), SharedFamilyBudget)
    assert store.ledger(TENANT, "app|deviceConfiguration") is not None
    devices = store.ledger(TENANT, "app|devices")
    assert devices is not None
    assert not devices.writes
    assert isinstance(Budgets(config).family("devices"), LocalFamilyBudget)


async def test_two_graph_clients_of_one_tenant_in_two_processes_share_its_write_limit() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    writes: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            writes.append(clock.now)
        return httpx.Response(204)

    config = BudgetConfig(write_limit=5, read_limit=50, window=1.0, margin=0.0)
    clients = [make_client(handler, budgets=Budgets(config, source=SharedBudgets(
        store, tenant_id=TENANT, client_id="app-a", clock=clock, sleep=clock.sleep, run_blocking=direct)))[0]
        for _ in range(2)]

    async def worker(client: GraphClient, n: int) -> None:
        for i in range(3):
            await client.patch(f"/beta/deviceManagement/deviceCategories/{n}", json_body={"i": i})

    await asyncio.gather(*(worker(c, n) for c in clients for n in range(10)))
    assert len(writes) == 60
    assert busiest(writes, 1.0) <= 5


def test_the_factory_shares_budgets_only_when_given_a_ledger_store() -> None:
    ids = {"tenant_id": TENANT, "client_id": "app-a", "credential": "secret"}
    shared = GraphClientFactory(graph_base_url="https://graph.example", authority_host="https://login.example",
                                budget_store=InMemoryBudgetLedgerStore())
    local = GraphClientFactory(graph_base_url="https://graph.example", authority_host="https://login.example")
    assert isinstance(shared.get(**ids).budgets.family("deviceConfiguration"), SharedFamilyBudget)
    assert isinstance(local.get(**ids).budgets.family("deviceConfiguration"), LocalFamilyBudget)


async def test_batches_mixing_reads_and_writes_keep_both_limits_across_processes() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    processes = [budget(store, clock), budget(store, clock)]
    sent: list[float] = []
    writes: list[float] = []

    async def worker(process: SharedFamilyBudget) -> None:
        for i in range(20):
            if i % 2:
                await process.acquire(reads=2, writes=1)  # a $batch of two GETs and a PATCH
                sent.extend([clock.now] * 3)
                writes.append(clock.now)
            else:
                await process.acquire(reads=5, writes=0)
                sent.extend([clock.now] * 5)
            await clock.sleep(0.01)

    await asyncio.gather(*(worker(p) for p in processes for _ in range(4)))
    assert len(writes) == 80
    assert busiest(sent, 10.0) <= 100
    assert busiest(writes, 10.0) <= 10


async def test_requests_another_process_reserved_ahead_count_in_every_window_they_fall_in() -> None:
    clock = Clock()
    store = InMemoryBudgetLedgerStore()
    process = budget(store, clock)
    length = process.slice_seconds
    now = int(clock.now / length)
    ahead = now + int(2.5 / length)
    # Another process reserved the whole limit for a slice 2.5 s from now.
    store.write(TENANT, KEY, BudgetLedger(round(length * 1000), {ahead: 100}, {}, current=now), etag=None)
    await process.acquire(reads=1, writes=0)
    # Sent only once no window of 10 s holds both it and the requests of that slice.
    assert clock.now >= (ahead + 1) * length + 10.0 - 1e-6
