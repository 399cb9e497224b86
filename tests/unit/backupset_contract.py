"""The backup set repository contract, run against the in-memory fake (unit) and Azurite (integration).

Subclasses provide a ``sets`` fixture returning a :class:`shared.ports.BackupSetRepository`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import (
    BackupSet,
    BackupSetBatch,
    BackupSetItem,
    CreatedBy,
    PolicyRef,
    Selection,
    new_run_id,
)
from shared.domain.backupsets import BackupSetChange, backup_set_id_for_run
from shared.domain.base import ErrorInfo
from shared.domain.batches import SetItemOutcome
from shared.errors import InvalidRequest
from shared.ports import BackupSetRepository

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
TENANT = "22222222-2222-2222-2222-222222222222"
OTHER = "33333333-3333-3333-3333-333333333333"


def a_set(tenant: str = TENANT, at: datetime = T0, name: str = "nightly") -> BackupSet:
    run_id = new_run_id(at)
    return BackupSet(id=backup_set_id_for_run(run_id), tenant_id=tenant, name=name, run_id=run_id,
                     selection=Selection(all=True), created_by=CreatedBy(id="alice"), created_at=at)


def items(backup_set: BackupSet, count: int) -> list[BackupSetItem]:
    return [BackupSetItem.pending(tenant_id=backup_set.tenant_id, backup_set_id=backup_set.id,
                                  policy_type="settingsCatalog", policy_id=f"p-{n:04d}", display_name=f"P{n}",
                                  batch=n // 100) for n in range(count)]


class BackupSetContract:
    def test_sets_list_newest_first_in_pages_per_tenant(self, sets: BackupSetRepository) -> None:
        made = [a_set(at=T0 + timedelta(minutes=n), name=f"s{n}") for n in range(5)]
        for backup_set in made:
            sets.put_set(backup_set)
        sets.put_set(a_set(tenant=OTHER))
        first = sets.list_sets(tenant_id=TENANT, top=3)
        assert [s.name for s in first.items] == ["s4", "s3", "s2"]
        assert first.continuation
        rest = sets.list_sets(tenant_id=TENANT, top=3, continuation=first.continuation)
        assert [s.name for s in rest.items] == ["s1", "s0"]
        assert sets.get_set(tenant_id=TENANT, backup_set_id=made[0].id) == made[0]
        assert sets.get_set(tenant_id=OTHER, backup_set_id=made[0].id) is None
        assert sets.get_set(tenant_id=TENANT, backup_set_id="bs_not-a-set-id!") is None

    def test_items_are_written_in_chunks_and_read_back_in_order_and_by_status(
            self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        planned = items(backup_set, 250)  # three transactions
        sets.put_items(planned)
        page = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=200)
        assert [i.item_id for i in page.items] == [i.item_id for i in planned[:200]]
        rest = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=200,
                               continuation=page.continuation)
        assert len(rest.items) == 50
        assert rest.continuation is None
        captured = planned[7].model_copy(update={"status": "captured", "content_hash": "a" * 64,
                                                 "size_bytes": 10, "complete": True})
        sets.put_items([captured])  # a repeat of the same item replaces it
        stored = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=captured.item_id)
        assert stored == captured
        assert [i.item_id for i in sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id,
                                                   status="captured").items] == [captured.item_id]
        assert sets.get_item(tenant_id=OTHER, backup_set_id=backup_set.id, item_id=captured.item_id) is None
        # Another set of the same tenant is not mixed in.
        assert sets.list_items(tenant_id=TENANT, backup_set_id=a_set().id).items == []

    def test_an_outcome_settles_a_planned_item_in_place_and_never_creates_one(
            self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        planned = items(backup_set, 3)
        sets.put_items(planned)

        def get(item_id: str, tenant: str = TENANT) -> BackupSetItem | None:
            return sets.get_item(tenant_id=tenant, backup_set_id=backup_set.id, item_id=item_id)

        def settle(item_id: str, outcome: SetItemOutcome, tenant: str = TENANT) -> bool:
            return sets.settle_item(tenant_id=tenant, backup_set_id=backup_set.id, item_id=item_id,
                                    outcome=outcome)

        def listed(status: str | None = None) -> list[BackupSetItem]:
            return sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, status=status).items

        first, second, third = (item.item_id for item in planned)
        captured = SetItemOutcome(status="captured", display_name="Renamed", captured_at=T0,
                                  content_hash="a" * 64, normalised_hash="b" * 64, size_bytes=10,
                                  complete=True, attempts=2)
        expected = planned[0].model_copy(update={
            "status": "captured", "display_name": "Renamed", "captured_at": T0, "content_hash": "a" * 64,
            "normalised_hash": "b" * 64, "size_bytes": 10, "complete": True, "attempts": 2})
        for _ in range(2):  # a repeated activity writes the same
            assert settle(first, captured)
            assert get(first) == expected
        # A failure after a capture keeps the planned name and batch, and no body reference.
        error = ErrorInfo(code="graph-server-error", message="Microsoft Graph failed.")
        assert settle(second, captured)
        assert settle(second, SetItemOutcome(status="failed", attempts=3, error=error))
        failed = planned[1].model_copy(update={"status": "failed", "attempts": 3, "error": error})
        assert get(second) == failed
        # Filters and listings see the settled items.
        assert listed("captured") == [expected]
        assert listed("pending") == [planned[2]]
        assert listed() == [expected, failed, planned[2]]
        # An item that was never planned, or is another tenant's, is not created.
        assert not settle("settingsCatalog:stray", captured)
        assert not settle(first, captured, tenant=OTHER)
        assert get("settingsCatalog:stray") is None
        assert get(first, tenant=OTHER) is None
        # Replacing a whole item afterwards (finishing settles what is pending that way) wins.
        replaced = planned[0].model_copy(update={"status": "failed", "error": error})
        sets.put_items([replaced])
        assert get(first) == replaced
        assert get(third) == planned[2]

    def test_outcomes_settle_planned_items_together_and_never_create_one(
            self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        planned = items(backup_set, 130)
        sets.put_items(planned)
        error = ErrorInfo(code="graph-server-error", message="Microsoft Graph failed.")

        def outcome(n: int) -> SetItemOutcome:
            if n % 2:
                return SetItemOutcome(status="failed", attempts=3, error=error)
            return SetItemOutcome(status="captured", display_name=f"Renamed {n}", captured_at=T0,
                                  content_hash="a" * 64, normalised_hash="b" * 64, size_bytes=n,
                                  complete=True, attempts=1)

        def expected(n: int) -> BackupSetItem:
            return outcome(n).applied_to(planned[n])

        outcomes = {planned[n].item_id: outcome(n) for n in range(120)}  # two transactions
        for _ in range(2):  # a repeated activity writes the same
            assert sets.settle_items(tenant_id=TENANT, backup_set_id=backup_set.id, outcomes=outcomes) == []
            listed = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=200).items
            assert listed == [expected(n) for n in range(120)] + planned[120:]
        assert len(sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, status="failed",
                                   top=200).items) == 60
        # An item never planned fails its transaction: the planned items beside it are still settled, and
        # it is not created (nor in another tenant's partition).
        stray = {"settingsCatalog:stray": outcome(0), planned[121].item_id: outcome(121),
                 "settingsCatalog:p-9999": outcome(0), planned[122].item_id: outcome(122)}
        left_out = sets.settle_items(tenant_id=TENANT, backup_set_id=backup_set.id, outcomes=stray)
        assert sorted(left_out) == ["settingsCatalog:p-9999", "settingsCatalog:stray"]
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=planned[121].item_id) \
            == expected(121)
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=planned[122].item_id) \
            == expected(122)
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id,
                             item_id="settingsCatalog:stray") is None
        assert sets.settle_items(tenant_id=OTHER, backup_set_id=backup_set.id,
                                 outcomes={planned[0].item_id: outcome(1)}) == [planned[0].item_id]
        assert sets.get_item(tenant_id=OTHER, backup_set_id=backup_set.id, item_id=planned[0].item_id) is None
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id,
                             item_id=planned[0].item_id) == expected(0)
        assert sets.settle_items(tenant_id=TENANT, backup_set_id=backup_set.id, outcomes={}) == []
        # One item alone, planned or not.
        assert sets.settle_items(tenant_id=TENANT, backup_set_id=backup_set.id,
                                 outcomes={planned[125].item_id: outcome(125)}) == []
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id,
                             item_id=planned[125].item_id) == expected(125)
        assert sets.settle_items(tenant_id=TENANT, backup_set_id=backup_set.id,
                                 outcomes={"settingsCatalog:alone": outcome(0)}) == ["settingsCatalog:alone"]
        assert sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id,
                             item_id="settingsCatalog:alone") is None

    def test_batches_round_trip(self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        batches = [BackupSetBatch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=n,
                                  members=(PolicyRef(type="scopeTag", id=str(n)),)) for n in range(3)]
        sets.put_batches(batches)
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=2) == batches[2]
        done = batches[1].model_copy(update={"finished": True, "succeeded": 1})
        sets.put_batches([done])
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=1) == done
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=9) is None

    def test_a_runs_counts_sum_its_finished_batches_only(self, sets: BackupSetRepository) -> None:
        backup_set, other_set = a_set(), a_set()
        adding = new_run_id(T0 + timedelta(minutes=5))

        def batch(number: int, *, of: str = backup_set.id, run_id: str | None = None, finished: bool = True,
                  succeeded: int = 0, failed: int = 0, skipped: int = 0) -> BackupSetBatch:
            return BackupSetBatch(tenant_id=TENANT, backup_set_id=of, batch=number, run_id=run_id,
                                  members=(PolicyRef(type="scopeTag", id=str(number)),), finished=finished,
                                  succeeded=succeeded, failed=failed, skipped=skipped)

        assert sets.batch_counts(tenant_id=TENANT, backup_set_id=backup_set.id).total == 0
        sets.put_batches([batch(0, succeeded=90, failed=10), batch(1, succeeded=60, skipped=3),
                          batch(2, finished=False, succeeded=99),
                          # An addition's batches, another set's and another tenant's are not counted.
                          batch(0, run_id=adding, succeeded=7, failed=1),
                          batch(0, of=other_set.id, succeeded=50)])
        sets.put_batches([batch(0, succeeded=500).model_copy(update={"tenant_id": OTHER})])
        counts = sets.batch_counts(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert counts.model_dump() == {"total": 163, "succeeded": 150, "failed": 10, "skipped": 3}
        added = sets.batch_counts(tenant_id=TENANT, backup_set_id=backup_set.id, run_id=adding)
        assert added.model_dump() == {"total": 8, "succeeded": 7, "failed": 1, "skipped": 0}
        assert sets.batch_counts(tenant_id=OTHER, backup_set_id=backup_set.id, run_id=adding).total == 0

    def test_changes_are_replaced_per_set_and_paged_in_item_order(self, sets: BackupSetRepository) -> None:
        backup_set, other_set = a_set(), a_set()
        kinds = ("new", "changed", "unchanged", "deleted")

        def lines(of: BackupSet, count: int) -> list[BackupSetChange]:
            return [BackupSetChange(tenant_id=TENANT, backup_set_id=of.id,
                                    item_id=f"settingsCatalog:p-{n:04d}", policy_type="settingsCatalog",
                                    source_id=f"p-{n:04d}", display_name=f"P{n}", change=kinds[n % 4])
                    for n in reversed(range(count))]

        def every_line(of: BackupSet, top: int) -> list[BackupSetChange]:
            found: list[BackupSetChange] = []
            continuation = None
            while True:
                page = sets.list_changes(tenant_id=TENANT, backup_set_id=of.id, top=top,
                                         continuation=continuation)
                assert len(page.items) <= top
                found.extend(page.items)
                if page.continuation is None:
                    return found
                assert len(page.items) == top
                continuation = page.continuation

        changes = lines(backup_set, 250)
        sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=changes)
        sets.replace_changes(tenant_id=TENANT, backup_set_id=other_set.id, changes=lines(other_set, 1))
        in_order = sorted(changes, key=lambda c: c.item_id)
        # Any page size reads every line once, in item order: within a stored page, at its end, across pages.
        for top in (1, 7, 99, 100, 101, 250, 1000):
            assert every_line(backup_set, top) == in_order, top
        # A repeat writes the same; a comparison with fewer lines leaves only those.
        sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=changes)
        assert every_line(backup_set, 100) == in_order
        sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=changes[-3:])
        assert every_line(backup_set, 100) == in_order[:3]
        sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=[])
        assert sets.list_changes(tenant_id=TENANT, backup_set_id=backup_set.id).items == []
        assert len(sets.list_changes(tenant_id=TENANT, backup_set_id=other_set.id).items) == 1
        assert sets.list_changes(tenant_id=OTHER, backup_set_id=other_set.id).items == []
        # Change rows are not items of the set; a set's lines are its own.
        assert sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items == []
        with pytest.raises(ValueError, match="one set"):
            sets.replace_changes(tenant_id=TENANT, backup_set_id=backup_set.id, changes=lines(other_set, 1))
        with pytest.raises(InvalidRequest):
            sets.list_changes(tenant_id=TENANT, backup_set_id=backup_set.id, continuation="bm90IG91cnM")

    def test_keys_that_table_storage_refuses_are_refused(self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        bad = items(backup_set, 1)[0].model_copy(update={"item_id": "settingsCatalog:a/b"})
        with pytest.raises(InvalidRequest):
            sets.put_items([bad])

    def test_creating_a_set_never_replaces_one(self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        assert sets.create_set(backup_set) is True
        planned = backup_set.model_copy(update={"item_count": 3, "batch_count": 1})
        sets.put_set(planned)
        # A late create (a storage retry of the start) leaves the planned set as it is.
        assert sets.create_set(backup_set) is False
        assert sets.get_set(tenant_id=TENANT, backup_set_id=backup_set.id) == planned

    def test_creating_items_and_batches_keeps_the_rows_already_there(self, sets: BackupSetRepository) -> None:
        backup_set = a_set()
        planned = items(backup_set, 130)
        sets.create_items(planned[:120])
        first = planned[0].item_id
        outcome = SetItemOutcome(status="captured", content_hash="c" * 64, size_bytes=5)
        assert sets.settle_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=first, outcome=outcome)
        batch = BackupSetBatch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0,
                               members=(PolicyRef(type="settingsCatalog", id="p-0000"),))
        sets.create_batches([batch])
        done = batch.model_copy(update={"finished": True, "succeeded": 1})
        sets.put_batches([done])

        # A repeated plan writes every row again: the missing ones are created, none is replaced.
        sets.create_items(planned)
        sets.create_batches([batch, batch.model_copy(update={"batch": 1})])
        stored = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id=first)
        assert stored is not None
        assert (stored.status, stored.content_hash) == ("captured", "c" * 64)
        assert len(sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=1000).items) == 130
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0) == done
        assert sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=1) is not None
