"""The restore repository contract (ledger and plan records), run against the in-memory fake (unit) and
Azurite (integration).

Subclasses provide a ``restores`` fixture returning a :class:`shared.ports.RestoreRepository`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain import new_run_id
from shared.domain.restore import LedgerEntry, PlanRecord, PlanSummary
from shared.ports import RestoreRepository

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
TARGET = "22222222-2222-2222-2222-222222222222"
SOURCE = "33333333-3333-3333-3333-333333333333"
OTHER = "44444444-4444-4444-4444-444444444444"
SET_ID = "bs_01HZZZZZZZZZZZZZZZZZZZZZZZ"


def entry(source_id: str, *, target: str = TARGET, source: str = SOURCE, policy_type: str = "settingsCatalog",
          target_id: str | None = "t-1", state: str = "done", at: datetime = T0) -> LedgerEntry:
    return LedgerEntry.model_validate({
        "target_tenant_id": target, "source_tenant_id": source, "policy_type": policy_type,
        "source_id": source_id, "target_id": target_id, "state": state, "run_id": new_run_id(at),
        "updated_at": at})


def record(run_id: str, *, tenant: str = TARGET, request_key: str = "", plan_hash: str = "a" * 64,
           at: datetime = T0) -> PlanRecord:
    return PlanRecord(tenant_id=tenant, run_id=run_id, backup_set_id=SET_ID, plan_hash=plan_hash,
                      summary=PlanSummary(create=2, update=1, unchanged=4), item_count=7,
                      set_fingerprint="set-fp", live_fingerprint="live-fp", request_key=request_key,
                      created_at=at)


def _ledger_key(e: LedgerEntry) -> tuple[str, str]:
    return (e.policy_type, e.source_id)


class RestoreRepositoryContract:
    def test_a_ledger_entry_is_read_back_as_written(self, restores: RestoreRepository) -> None:
        written = entry("src-1", target_id=None, state="intent")
        restores.put_ledger(written)
        assert restores.get_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE,
                                   policy_type="settingsCatalog", source_id="src-1") == written
        assert restores.get_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE,
                                   policy_type="settingsCatalog", source_id="src-2") is None

    def test_writing_a_ledger_entry_again_replaces_it(self, restores: RestoreRepository) -> None:
        restores.put_ledger(entry("src-1", target_id=None, state="intent"))
        done = entry("src-1", target_id="t-9", state="done", at=T0 + timedelta(seconds=5))
        restores.put_ledger(done)
        assert restores.get_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE,
                                   policy_type="settingsCatalog", source_id="src-1") == done
        assert restores.list_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE) == [done]

    def test_the_ledger_is_kept_per_tenant_pair_and_policy_type(self, restores: RestoreRepository) -> None:
        mine = [entry("src-1"), entry("src-2", target_id="t-2"),
                entry("src-1", policy_type="scopeTag", target_id="7")]
        for e in mine:
            restores.put_ledger(e)
        other_source = entry("src-1", source=OTHER, target_id="x-1")
        other_target = entry("src-1", target=OTHER, target_id="y-1")
        same_tenant = entry("src-1", source=TARGET, target_id="src-1")
        for e in (other_source, other_target, same_tenant):
            restores.put_ledger(e)

        listed = restores.list_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE)
        assert sorted(listed, key=_ledger_key) == sorted(mine, key=_ledger_key)
        assert restores.list_ledger(target_tenant_id=TARGET, source_tenant_id=OTHER) == [other_source]
        assert restores.list_ledger(target_tenant_id=OTHER, source_tenant_id=SOURCE) == [other_target]
        assert restores.list_ledger(target_tenant_id=TARGET, source_tenant_id=TARGET) == [same_tenant]
        assert restores.list_ledger(target_tenant_id=OTHER, source_tenant_id=OTHER) == []
        scope_tag = restores.get_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE,
                                        policy_type="scopeTag", source_id="src-1")
        assert scope_tag is not None
        assert scope_tag.target_id == "7"
        assert restores.get_ledger(target_tenant_id=OTHER, source_tenant_id=SOURCE, policy_type="scopeTag",
                                   source_id="src-1") is None

    def test_the_ledger_of_one_source_is_not_listed_under_a_source_sharing_its_prefix(
            self, restores: RestoreRepository) -> None:
        restores.put_ledger(entry("p", source="tenant-a", target_id="1"))
        restores.put_ledger(entry("p", source="tenant-ab", target_id="2"))
        listed = restores.list_ledger(target_tenant_id=TARGET, source_tenant_id="tenant-a")
        assert [e.target_id for e in listed] == ["1"]

    def test_the_ledger_lists_many_entries(self, restores: RestoreRepository) -> None:
        for n in range(120):
            restores.put_ledger(entry(f"src-{n:03d}", target_id=f"t-{n:03d}"))
        listed = restores.list_ledger(target_tenant_id=TARGET, source_tenant_id=SOURCE)
        assert sorted(e.source_id for e in listed) == [f"src-{n:03d}" for n in range(120)]

    def test_a_plan_record_is_read_back_per_tenant_and_run(self, restores: RestoreRepository) -> None:
        run_id = new_run_id(T0)
        written = record(run_id)
        restores.put_plan(written)
        assert restores.get_plan(tenant_id=TARGET, run_id=run_id) == written
        assert restores.get_plan(tenant_id=OTHER, run_id=run_id) is None
        assert restores.get_plan(tenant_id=TARGET, run_id=new_run_id(T0)) is None

    def test_an_execution_plan_is_not_indexed_as_a_preview(self, restores: RestoreRepository) -> None:
        restores.put_plan(record(new_run_id(T0)))
        assert restores.latest_preview(tenant_id=TARGET, request_key="k" * 64) is None

    def test_the_newest_preview_of_a_request_is_indexed(self, restores: RestoreRepository) -> None:
        key, other_key = "a" * 64, "b" * 64
        first = record(new_run_id(T0), request_key=key, plan_hash="1" * 64)
        restores.put_plan(first)
        assert restores.latest_preview(tenant_id=TARGET, request_key=key) == first
        newer = record(new_run_id(T0 + timedelta(minutes=1)), request_key=key, plan_hash="2" * 64,
                       at=T0 + timedelta(minutes=1))
        unrelated = record(new_run_id(T0 + timedelta(minutes=2)), request_key=other_key, plan_hash="3" * 64)
        elsewhere = record(new_run_id(T0 + timedelta(minutes=3)), tenant=OTHER, request_key=key,
                           plan_hash="4" * 64)
        for r in (newer, unrelated, elsewhere):
            restores.put_plan(r)
        assert restores.latest_preview(tenant_id=TARGET, request_key=key) == newer
        assert restores.latest_preview(tenant_id=TARGET, request_key=other_key) == unrelated
        assert restores.latest_preview(tenant_id=OTHER, request_key=key) == elsewhere
        assert restores.latest_preview(tenant_id=OTHER, request_key=other_key) is None
        # Each run keeps its own record.
        assert restores.get_plan(tenant_id=TARGET, run_id=first.run_id) == first
        assert restores.get_plan(tenant_id=TARGET, run_id=newer.run_id) == newer
