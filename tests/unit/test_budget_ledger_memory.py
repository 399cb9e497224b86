from __future__ import annotations

import pytest

from shared.storage.memory_budget import InMemoryBudgetLedgerStore
from tests.unit.budget_ledger_contract import BudgetLedgerContract


class TestInMemoryBudgetLedgers(BudgetLedgerContract):
    @pytest.fixture
    def ledgers(self) -> InMemoryBudgetLedgerStore:
        return InMemoryBudgetLedgerStore()
