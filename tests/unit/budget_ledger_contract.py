"""Contract of :class:`shared.ports.BudgetLedgerStore`, run against the in-memory fake and Table Storage."""

from __future__ import annotations

import pytest

from shared.errors import ConcurrentUpdate
from shared.ports import BudgetLedger, BudgetLedgerStore

TENANT = "11111111-1111-1111-1111-111111111111"
KEY = "22222222-2222-2222-2222-222222222222|deviceConfiguration"


class BudgetLedgerContract:
    """Subclasses provide a ``ledgers`` fixture: an empty store."""

    def test_a_ledger_never_written_reads_as_none(self, ledgers: BudgetLedgerStore) -> None:
        assert ledgers.read(TENANT, KEY) is None

    def test_a_created_ledger_reads_back_with_its_etag(self, ledgers: BudgetLedgerStore) -> None:
        # Slice numbers of 100 ms slices (a scaled budget) pass 32 bits.
        ledger = BudgetLedger(100, {17_961_951_703: 25, 17_961_951_704: 3}, {17_961_951_704: 2},
                              current=17_961_951_703)
        etag = ledgers.write(TENANT, KEY, ledger, etag=None)
        stored = ledgers.read(TENANT, KEY)
        assert stored is not None
        assert stored.etag == etag
        assert stored.value == ledger

    def test_only_one_of_two_creators_wins(self, ledgers: BudgetLedgerStore) -> None:
        ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 1}, {}), etag=None)
        with pytest.raises(ConcurrentUpdate):
            ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 5}, {}), etag=None)
        stored = ledgers.read(TENANT, KEY)
        assert stored is not None
        assert stored.value.requests == {1: 1}

    def test_a_write_on_a_stale_etag_is_refused_and_changes_nothing(self, ledgers: BudgetLedgerStore) -> None:
        first = ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 1}, {}), etag=None)
        second = ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 2}, {}), etag=first)
        assert second != first
        with pytest.raises(ConcurrentUpdate):
            ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 9}, {}), etag=first)
        stored = ledgers.read(TENANT, KEY)
        assert stored is not None
        assert stored.value.requests == {1: 2}
        assert stored.etag == second

    def test_ledgers_are_kept_per_tenant_and_key(self, ledgers: BudgetLedgerStore) -> None:
        ledgers.write(TENANT, KEY, BudgetLedger(1050, {1: 1}, {}), etag=None)
        ledgers.write(TENANT, "22222222-2222-2222-2222-222222222222|devices", BudgetLedger(1050, {1: 7}, {}),
                      etag=None)
        ledgers.write("33333333-3333-3333-3333-333333333333", KEY, BudgetLedger(1050, {1: 8}, {}), etag=None)
        stored = ledgers.read(TENANT, KEY)
        assert stored is not None
        assert stored.value.requests == {1: 1}
