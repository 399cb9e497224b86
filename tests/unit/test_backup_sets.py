"""Backup sets below the durable boundary: batching rules, selection normalisation, plan and finish."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain import BackupSetRequest, ErrorInfo, ItemOutcome, Principal, RunStatus
from shared.domain.backupsets import MAX_SELECTED_POLICIES, SelectionBody, normalise_selection
from shared.domain.batches import batch_count, batch_windows, chunked, retry_round, summarise_batch
from shared.domain.capture import CaptureItemResult
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.graph.catalog import CATALOG
from shared.graph.errors import GraphThrottled
from shared.graph.reader import PolicySummary
from shared.services.backupsets import BackupSetService
from shared.storage.memory import InMemoryBlobStore
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import RunsHarness

TENANT = "22222222-2222-2222-2222-222222222222"
ALICE = Principal(tenant_id="11111111-1111-1111-1111-111111111111", object_id="alice", name="Alice")


def result(status: str, retry_after: float | None = None) -> CaptureItemResult:
    return CaptureItemResult(item_id="x", status=status, retry_after_seconds=retry_after)


class TestBatching:
    def test_batches_cover_every_item_once_and_windows_bound_the_width(self) -> None:
        assert [batch_count(n, 100) for n in (0, 1, 100, 101, 5_000)] == [0, 1, 1, 2, 50]
        assert [list(c) for c in chunked(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
        assert batch_windows(10, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
        assert batch_windows(0, 4) == []

    def test_a_round_retries_what_asked_for_it_after_the_longest_wait(self) -> None:
        results = [result("succeeded"), result("retry", 30), result("failed"), result("retry")]
        decided = retry_round(results, 1)
        assert decided.retry == [1, 3]
        assert decided.delay_seconds == 30
        assert [r.status for r in decided.settled] == ["succeeded", "failed"]

    def test_the_last_attempt_settles_everything(self) -> None:
        decided = retry_round([result("retry", 5)], 3)
        assert decided.retry == []
        assert decided.delay_seconds is None

    def test_a_summary_counts_by_status(self) -> None:
        summary = summarise_batch(2, [result("succeeded"), result("failed"), result("succeeded")], rounds=2)
        counted = (summary.batch, summary.total, summary.succeeded, summary.failed, summary.rounds)
        assert counted == (2, 3, 2, 1, 2)


class TestSelection:
    def test_equal_selections_normalise_alike(self) -> None:
        twice = ["settingsCatalog", "scopeTag", "settingsCatalog"]
        a = normalise_selection(SelectionBody(types=twice), CATALOG)
        b = normalise_selection(SelectionBody(types=["scopeTag", "settingsCatalog"]), CATALOG)
        assert a == b
        assert a.types == ("scopeTag", "settingsCatalog")
        p = normalise_selection(SelectionBody.model_validate({"policies": [
            {"type": "settingsCatalog", "id": "b"}, {"type": "scopeTag", "id": "1"},
            {"type": "settingsCatalog", "id": "b"}]}), CATALOG)
        assert [(r.type, r.id) for r in p.policies] == [("scopeTag", "1"), ("settingsCatalog", "b")]

    @pytest.mark.parametrize(("body", "code"), [
        ({}, "invalid-selection"), ({"all": True, "types": ["scopeTag"]}, "invalid-selection"),
        ({"all": False}, "empty-selection"), ({"types": []}, "empty-selection"),
        ({"policies": []}, "empty-selection"), ({"types": ["nope"]}, "unknown-policy-type"),
        ({"policies": [{"type": "nope", "id": "1"}]}, "unknown-policy-type"),
        ({"policies": [{"type": "scopeTag", "id": "../x"}]}, "invalid-policy-id"),
    ])
    def test_bad_selections_have_clear_codes(self, body: dict[str, Any], code: str) -> None:
        with pytest.raises(InvalidRequest) as caught:
            normalise_selection(SelectionBody.model_validate(body), CATALOG)
        assert caught.value.instance_code == code

    def test_too_many_policies(self) -> None:
        body = SelectionBody.model_validate({"policies": [{"type": "scopeTag", "id": str(n)}
                                                          for n in range(MAX_SELECTED_POLICIES + 1)]})
        with pytest.raises(PayloadTooLarge) as caught:
            normalise_selection(body, CATALOG)
        assert caught.value.instance_code == "too-many-policies"


class FakeGraph:
    """Lists a fixed number of policies per type; can throttle the first listing."""

    def __init__(self, per_type: dict[str, int], *, throttle_once: bool = False) -> None:
        self.per_type = per_type
        self.throttle_once = throttle_once
        self.calls: list[str] = []

    async def __call__(self, *, tenant_id: str, policy_type: str) -> list[PolicySummary]:
        self.calls.append(policy_type)
        if self.throttle_once:
            self.throttle_once = False
            raise GraphThrottled("busy", retry_after=7)
        return [PolicySummary(type_key=policy_type, id=f"{policy_type[:3]}-{n:04d}", name=f"P {n}",
                              odata_type=None, last_modified=None, listed={})
                for n in range(self.per_type.get(policy_type, 0))]


def harness(graph: FakeGraph, batch_size: int = 3) -> tuple[RunsHarness, InMemoryBackupSetRepository,
                                                             BackupSetService]:
    runs = RunsHarness()
    sets = InMemoryBackupSetRepository()
    service = BackupSetService(sets=sets, runs=runs.service, run_rows=runs.runs, blobs=InMemoryBlobStore(),
                               list_policies=graph, clock=runs.clock, batch_size=batch_size)
    return runs, sets, service


async def start(service: BackupSetService, selection: dict[str, Any], **options: Any) -> Any:
    request = BackupSetRequest.model_validate({"name": "n", "selection": selection, **options})
    result, backup_set = await service.start(principal=ALICE, tenant_id=TENANT, request=request,
                                             idempotency_key=None)
    return result, backup_set


class TestPlanAndFinish:
    async def test_plan_writes_pending_items_in_batches_and_returns_counts_only(self) -> None:
        graph = FakeGraph({"settingsCatalog": 5, "scopeTag": 2})
        runs, sets, service = harness(graph)
        result, backup_set = await start(service, {"types": ["settingsCatalog"]})
        plan = await service.plan(tenant_id=TENANT, run_id=result.run.id)
        assert (plan.status, plan.item_count, plan.batch_count) == ("planned", 7, 3)
        assert set(plan.model_dump()) >= {"item_count"}
        assert "items" not in plan.model_dump()
        # The foundations are listed with the selected type.
        assert sorted(graph.calls) == ["assignmentFilter", "notificationTemplate", "scopeTag",
                                       "settingsCatalog"]
        items = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=100).items
        assert len(items) == 7
        assert {i.status for i in items} == {"pending"}
        members = [service.batch_members(tenant_id=TENANT, backup_set_id=backup_set.id, batch=b)
                   for b in range(3)]
        in_batches = sorted(f"{m.type}:{m.id}" for batch in members for m in batch)
        assert in_batches == sorted(i.item_id for i in items)
        assert [len(b) for b in members] == [3, 3, 1]
        run = runs.service.get(tenant_id=TENANT, run_id=result.run.id)
        assert run.status == RunStatus.RUNNING
        assert run.expected_items == 7
        assert run.target.backup_set_id == backup_set.id

        # A repeated plan (the activity ran twice) lists nothing again and answers the same.
        calls = len(graph.calls)
        assert await service.plan(tenant_id=TENANT, run_id=result.run.id) == plan
        assert len(graph.calls) == calls

    async def test_a_throttled_listing_asks_to_retry_and_writes_nothing(self) -> None:
        _, sets, service = harness(FakeGraph({"settingsCatalog": 2}, throttle_once=True))
        result, backup_set = await start(service, {"all": True})
        plan = await service.plan(tenant_id=TENANT, run_id=result.run.id)
        assert (plan.status, plan.retry_after_seconds) == ("retry", 7)
        assert sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items == []

    async def test_finish_settles_what_is_pending_then_freezes_the_counts(self) -> None:
        runs, sets, service = harness(FakeGraph({}))
        result, backup_set = await start(service, {"policies": [{"type": "scopeTag", "id": "1"},
                                                                {"type": "scopeTag", "id": "2"}]},
                                         includeFoundations=False)
        await service.plan(tenant_id=TENANT, run_id=result.run.id)
        runs.service.record_item(tenant_id=TENANT, run_id=result.run.id, outcome=ItemOutcome(
            item_id="scopeTag:1", action="captured", status="succeeded"))
        item = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:1")
        assert item is not None
        sets.put_items([item.model_copy(update={"status": "captured", "complete": True})])

        run = service.finish(tenant_id=TENANT, run_id=result.run.id, failure=None)
        assert run.status == RunStatus.PARTIAL
        assert (run.counts.total, run.counts.succeeded, run.counts.failed) == (2, 1, 1)
        missing = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:2")
        assert missing is not None
        assert missing.status == "failed"
        assert missing.error is not None
        assert missing.error.code == "item-not-captured"
        finished = service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert (finished.status, finished.captured_count, finished.failed_count) == ("partial", 1, 1)
        # Finishing again changes nothing.
        assert service.finish(tenant_id=TENANT, run_id=result.run.id, failure=ErrorInfo(code="x")) == run

    async def test_equal_selections_in_another_order_reuse_the_active_run(self) -> None:
        _, sets, service = harness(FakeGraph({}))
        first, _ = await start(service, {"types": ["settingsCatalog", "scopeTag"]})
        again, again_set = await start(service, {"types": ["scopeTag", "settingsCatalog", "scopeTag"]})
        assert again.reused
        assert again.run.id == first.run.id
        assert again_set.id == first.run.id.replace("run_", "bs_")
        assert len(sets.list_sets(tenant_id=TENANT).items) == 1
