"""The shared Graph request budget on Table Storage (Azurite): the ledger's contract, and two budgets with
separate caches and leases, drawing from one ledger in real time, never above the limit in any window."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.graph.shared_budget import SharedBudgetOptions, SharedFamilyBudget
from shared.storage import StorageFactory
from shared.storage.table_budget import TableBudgetLedgerStore
from tests.unit.budget_ledger_contract import BudgetLedgerContract

pytestmark = pytest.mark.azurite

TENANT = "11111111-1111-1111-1111-111111111111"


class TestTableBudgetLedgers(BudgetLedgerContract):
    @pytest.fixture
    def ledgers(self, storage: StorageFactory) -> TableBudgetLedgerStore:
        return storage.budget_ledgers()


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_two_budgets_sharing_a_table_ledger_never_exceed_the_limit(storage: StorageFactory) -> None:
    window, limit, writes_limit = 2.0, 100, 10
    # Each budget has its own store client too, as two processes would.
    stores = [storage.budget_ledgers(), storage.budget_ledgers()]
    budgets = [SharedFamilyBudget(store, tenant_id=TENANT, key="app|deviceConfiguration",
                                  write_limit=writes_limit, request_limit=limit, window=window,
                                  options=SharedBudgetOptions(store_timeout=10.0))
               for store in stores]
    sent: list[float] = []
    writes: list[float] = []
    deadline = time.time() + 5.0

    async def worker(budget: SharedFamilyBudget, n: int) -> None:
        i = 0
        while time.time() < deadline:
            write = (i + n) % 10 == 0
            await budget.acquire(reads=0 if write else 1, writes=1 if write else 0)
            now = time.time()
            sent.append(now)
            if write:
                writes.append(now)
            i += 1
            await asyncio.sleep(0.005)

    await asyncio.gather(*(worker(b, n) for b in budgets for n in range(6)))
    assert busiest(sent, window) <= limit
    assert busiest(writes, window) <= writes_limit
    # Both kept sending: about 5 s at 100 per 2.2 s (the ceiling of 2 s, 20 slices and 2-slice leases).
    assert len(sent) >= 2 * limit
    assert all(b.leases > 1 for b in budgets)
    assert not any(b.fallbacks for b in budgets)  # the ledger answered every time
    transactions = sum(s.transactions for s in stores)
    assert transactions < len(sent)  # blocks, not a transaction per request
