"""Backup sets below the durable boundary: batching rules, selection normalisation, plan and finish."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from shared.domain import BackupSet, BackupSetRequest, ErrorInfo, ItemOutcome, Principal, RunStatus
from shared.domain.backupsets import MAX_SELECTED_POLICIES, SelectionBody, coverage_of, normalise_selection
from shared.domain.batches import (
    SetItemOutcome,
    batch_count,
    chunked,
    retry_round,
    spread_by_group,
    summarise_batch,
)
from shared.domain.capture import CaptureItemResult
from shared.domain.normalise import normalised_hash
from shared.errors import InvalidRequest, PayloadTooLarge
from shared.graph.catalog import CATALOG, ItemGet
from shared.graph.errors import GraphPermissionMissing, GraphThrottled
from shared.graph.reader import PolicySummary
from shared.services.backupsets import SET_KINDS, BackupSetService, PolicyLister, batch_counter, set_of_run
from shared.services.capture import POLICY_NORMAL_FORM, policy_normal_form
from shared.services.consent import ReadableTypes
from shared.services.outbox import OutboxDispatcher
from shared.services.recovery import RunRecovery
from shared.services.run_reads import RunCounter
from shared.services.runs import RunService
from shared.storage.memory import InMemoryBlobStore
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import RunsHarness

TENANT = "22222222-2222-2222-2222-222222222222"
ALICE = Principal(tenant_id="11111111-1111-1111-1111-111111111111", object_id="alice", name="Alice")


def result(status: str, retry_after: float | None = None) -> CaptureItemResult:
    return CaptureItemResult(item_id="x", status=status, retry_after_seconds=retry_after)


class TestBatching:
    def test_batches_cover_every_item_once(self) -> None:
        assert [batch_count(n, 100) for n in (0, 1, 100, 101, 5_000)] == [0, 1, 1, 2, 50]
        assert [list(c) for c in chunked(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]

    def test_groups_are_spread_evenly_and_keep_their_own_order(self) -> None:
        values = [f"a{i}" for i in range(6)] + ["b0", "b1", "c0"]
        spread = spread_by_group(values, lambda v: v[0])
        assert sorted(spread) == sorted(values)
        # Each group keeps its order; a group of n sits at (i + 1/2) / n of the run.
        assert [v for v in spread if v[0] == "a"] == [f"a{i}" for i in range(6)]
        assert spread == ["a0", "a1", "b0", "a2", "c0", "a3", "a4", "b1", "a5"]
        # Every prefix has consumed about the same share of every group.
        for cut in range(1, len(spread) + 1):
            for group, size in (("a", 6), ("b", 2)):
                share = sum(1 for v in spread[:cut] if v[0] == group) / size
                assert abs(share - cut / len(spread)) <= 0.5, (cut, group)
        assert spread_by_group([], lambda v: v) == []
        assert spread_by_group(values, lambda v: v[0]) == spread  # deterministic

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


def harness(graph: PolicyLister, batch_size: int = 3) -> tuple[RunsHarness, InMemoryBackupSetRepository,
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

        # The families are spread over the batches: not one batch of each type in listing order.
        families = [{CATALOG[m.type].throttle_family for m in batch} for batch in members]
        assert families[:2] == [{"deviceConfigV2", "rbac"}] * 2, families

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

    async def test_a_type_graph_refuses_or_consent_lacks_is_left_out_not_the_whole_backup(self) -> None:
        graph = FakeGraph({"settingsCatalog": 2, "scopeTag": 1})
        refused = "powerShellScript"

        async def lister(*, tenant_id: str, policy_type: str) -> list[PolicySummary]:
            if policy_type == refused:
                raise GraphPermissionMissing("denied", status=403, graph_code="Forbidden")
            return await graph(tenant_id=tenant_id, policy_type=policy_type)

        async def readable(tenant_id: str, types: Sequence[str]) -> ReadableTypes:
            return ReadableTypes(readable=tuple(t for t in types if t != "remediationScript"),
                                 unreadable={"remediationScript": "DeviceManagementScripts.Read.All"})

        runs = RunsHarness()
        sets = InMemoryBackupSetRepository()
        service = BackupSetService(sets=sets, runs=runs.service, run_rows=runs.runs,
                                   blobs=InMemoryBlobStore(), list_policies=lister, clock=runs.clock,
                                   batch_size=3, readable_types=readable)
        result, backup_set = await start(service, {"all": True})
        plan = await service.plan(tenant_id=TENANT, run_id=result.run.id)
        assert (plan.status, plan.item_count) == ("planned", 3)
        # The consent check saved the call; Graph's refusal left only its own type out.
        assert "remediationScript" not in graph.calls
        planned = service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        left_out = planned.types_left_out or {}
        assert sorted(left_out) == ["powerShellScript", "remediationScript"]
        assert left_out["remediationScript"].code == "graph-permission-missing"
        assert "DeviceManagementScripts.Read.All" in left_out["remediationScript"].message
        assert left_out["powerShellScript"].graph_code == "Forbidden"
        for item in sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items:
            runs.service.record_item(tenant_id=TENANT, run_id=result.run.id, outcome=ItemOutcome(
                item_id=item.item_id, action="captured", status="succeeded"))
            sets.put_items([item.model_copy(update={"status": "captured", "complete": True})])
        run = service.finish(tenant_id=TENANT, run_id=result.run.id, failure=None)
        assert run.status == RunStatus.SUCCEEDED
        # Every item it listed was captured, but the set is not whole.
        assert service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id).status == "partial"
        coverage = coverage_of(planned, ())
        assert not coverage.holds("powerShellScript", "any")
        assert coverage.holds("settingsCatalog", "any")

    async def test_equal_selections_in_another_order_reuse_the_active_run(self) -> None:
        _, sets, service = harness(FakeGraph({}))
        first, _ = await start(service, {"types": ["settingsCatalog", "scopeTag"]})
        again, again_set = await start(service, {"types": ["scopeTag", "settingsCatalog", "scopeTag"]})
        assert again.reused
        assert again.run.id == first.run.id
        assert again_set.id == first.run.id.replace("run_", "bs_")
        assert len(sets.list_sets(tenant_id=TENANT).items) == 1


class LateFirstSetWrite(InMemoryBackupSetRepository):
    """Holds back the first write of a set row until :meth:`land` (a storage retry that lands late)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: tuple[Any, BackupSet] | None = None
        self.holding = True

    def put_set(self, backup_set: BackupSet) -> None:
        if self.holding:
            self.holding, self.held = False, (super().put_set, backup_set)
            return
        super().put_set(backup_set)

    def create_set(self, backup_set: BackupSet) -> bool:
        if self.holding:
            self.holding, self.held = False, (super().create_set, backup_set)
            return True
        return super().create_set(backup_set)

    def land(self) -> None:
        assert self.held is not None
        write, backup_set = self.held
        write(backup_set)


class TestNothingPlannedIsOverwritten:
    async def test_a_late_write_of_the_start_leaves_the_planned_set(self) -> None:
        runs = RunsHarness()
        sets = LateFirstSetWrite()
        service = BackupSetService(sets=sets, runs=runs.service, run_rows=runs.runs,
                                   blobs=InMemoryBlobStore(), list_policies=FakeGraph({}), clock=runs.clock)
        result, backup_set = await start(service, {"policies": [{"type": "scopeTag", "id": "1"}]},
                                         includeFoundations=False)
        await service.plan(tenant_id=TENANT, run_id=result.run.id)
        sets.land()
        stored = service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert (stored.item_count, stored.batch_count) == (1, 1)

    async def test_a_repeated_plan_keeps_what_the_batches_captured(self) -> None:
        runs, sets, service = harness(FakeGraph({}), batch_size=1)
        result, backup_set = await start(service, {"policies": [{"type": "scopeTag", "id": "1"},
                                                                {"type": "scopeTag", "id": "2"}]},
                                         includeFoundations=False)
        await service.plan(tenant_id=TENANT, run_id=result.run.id)
        assert sets.settle_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:1",
                                outcome=SetItemOutcome(status="captured", content_hash="c" * 64))
        service.close_batch(tenant_id=TENANT, backup_set_id=backup_set.id, summary=summarise_batch(
            0, [CaptureItemResult(item_id="scopeTag:1", status="succeeded")], rounds=1))
        # A second delivery of the plan activity that read the set before the first wrote its marker.
        sets.put_set(set_of_run(runs.service.get(tenant_id=TENANT, run_id=result.run.id)))
        await service.plan(tenant_id=TENANT, run_id=result.run.id)
        item = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:1")
        assert item is not None
        assert (item.status, item.content_hash) == ("captured", "c" * 64)
        batch = sets.get_batch(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0)
        assert batch is not None
        assert (batch.finished, batch.succeeded) == (True, 1)


    async def test_an_active_run_is_counted_from_its_finished_batches_not_its_items(self) -> None:
        runs, sets, service = harness(FakeGraph({}), batch_size=2)
        # As if the run were large: counted from its batches whatever its size.
        def runs_counted_by(counter: RunCounter) -> RunService:
            return RunService(runs=runs.runs, items=runs.items, notifications=runs.notifications,
                              clock=runs.clock, counters=dict.fromkeys(SET_KINDS, counter))

        counted = runs_counted_by(batch_counter(sets, count_items_up_to=0))
        small = runs_counted_by(batch_counter(sets))
        result, backup_set = await start(service, {"policies": [
            {"type": "scopeTag", "id": str(n)} for n in range(5)]}, includeFoundations=False)
        run_id = result.run.id
        assert counted.get(tenant_id=TENANT, run_id=run_id).counts.total == 0  # not planned yet
        await service.plan(tenant_id=TENANT, run_id=run_id)
        members = service.batch_members(tenant_id=TENANT, backup_set_id=backup_set.id, batch=0)
        outcomes = [ItemOutcome(item_id=f"{m.type}:{m.id}", policy_type=m.type, source_id=m.id,
                                action="captured", status=status)
                    for m, status in zip(members, ("succeeded", "failed"), strict=True)]
        # Batch 0's items and one item of batch 1 are recorded; only batch 0 has finished.
        runs.service.record_batch_items(tenant_id=TENANT, run_id=run_id, outcomes=outcomes)
        other = service.batch_members(tenant_id=TENANT, backup_set_id=backup_set.id, batch=1)[0]
        runs.service.record_batch_items(tenant_id=TENANT, run_id=run_id, outcomes=[ItemOutcome(
            item_id=f"{other.type}:{other.id}", policy_type=other.type, source_id=other.id,
            action="captured", status="succeeded")])
        assert runs.service.get(tenant_id=TENANT, run_id=run_id).counts.total == 3  # from the items
        service.close_batch(tenant_id=TENANT, backup_set_id=backup_set.id, summary=summarise_batch(
            0, [CaptureItemResult(item_id=o.item_id, status=o.status) for o in outcomes], rounds=1))
        live = counted.get(tenant_id=TENANT, run_id=run_id).counts
        assert live.model_dump() == {"total": 2, "succeeded": 1, "failed": 1, "skipped": 0}
        # A run of up to a thousand items is counted item by item.
        assert small.get(tenant_id=TENANT, run_id=run_id).counts.total == 3
        # Its completion counts the items once and freezes that.
        done = counted.complete(tenant_id=TENANT, run_id=run_id)
        assert done.counts.model_dump() == {"total": 3, "succeeded": 2, "failed": 1, "skipped": 0}
        assert counted.get(tenant_id=TENANT, run_id=run_id).counts == done.counts


class StatusClient:
    """Answers every status request with one runtime status."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    async def get_status(self, instance_id: str) -> Any:
        return DurableOrchestrationStatus.from_json({
            "name": "backup_set_orchestrator", "instanceId": instance_id, "runtimeStatus": self.runtime,
            "createdTime": "2026-01-15T09:30:00Z", "lastUpdatedTime": "2026-01-15T09:30:01Z"})


class TestEndedOutsideItsOrchestration:
    async def test_a_set_whose_run_never_launched_fails_instead_of_capturing_forever(self) -> None:
        runs, _, service = harness(FakeGraph({}))
        outbox = OutboxDispatcher(runs=runs.runs, service=runs.service, clock=runs.clock,
                                  tenant_ids=lambda: [TENANT], finish_run=service.finish_run)
        result, backup_set = await start(service, {"types": ["scopeTag"]})
        runs.launcher.fail_next = 1000
        outbox.submit(result, runs.launcher)
        await outbox.idle()
        for _ in range(40):  # the sweeper retries for half an hour, then abandons the run
            runs.clock.advance(minutes=1)
            await outbox.sweep(runs.launcher)
        run = runs.service.get(tenant_id=TENANT, run_id=result.run.id)
        assert run.failure is not None
        assert run.failure.code == "launch-failed"
        stored = service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert stored.status == "failed"
        assert stored.completed_at == run.finished_at

    async def test_a_set_whose_orchestration_was_terminated_settles_its_items(self) -> None:
        runs, sets, service = harness(FakeGraph({}))
        recovery = RunRecovery(runs=runs.runs, service=runs.service, clock=runs.clock,
                               tenant_ids=lambda: [TENANT], finish_run=service.finish_run)
        result, backup_set = await start(service, {"policies": [{"type": "scopeTag", "id": "1"},
                                                                {"type": "scopeTag", "id": "2"}]},
                                         includeFoundations=False)
        await service.plan(tenant_id=TENANT, run_id=result.run.id)
        assert sets.settle_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:1",
                                outcome=SetItemOutcome(status="captured", content_hash="c" * 64))
        runs.service.record_item(tenant_id=TENANT, run_id=result.run.id, outcome=ItemOutcome(
            item_id="scopeTag:1", action="captured", status="succeeded"))
        running = runs.service.get(tenant_id=TENANT, run_id=result.run.id)
        assert await recovery.sweep(StatusClient("Terminated")) == 1
        ended = runs.service.get(tenant_id=TENANT, run_id=running.id)
        assert ended.failure is not None
        assert ended.failure.code == "orchestration-ended"
        stored = service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id)
        assert (stored.status, stored.captured_count, stored.failed_count) == ("partial", 1, 1)
        left = sets.get_item(tenant_id=TENANT, backup_set_id=backup_set.id, item_id="scopeTag:2")
        assert left is not None
        assert left.error is not None
        assert (left.status, left.error.code) == ("failed", "item-not-captured")


def a_policy() -> dict[str, Any]:
    """A captured settings catalog policy, as the reader merges it, with two settings and two assignments."""
    return {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#configurationPolicies/$entity",
        "id": "pol-1", "name": "Baseline", "description": "d", "platforms": "windows10",
        "createdDateTime": "2026-01-01T00:00:00Z", "lastModifiedDateTime": "2026-01-02T00:00:00Z",
        "settingCount": 2, "roleScopeTagIds": ["0", "7"], "isAssigned": True,
        "settings@odata.context": "https://graph.microsoft.com/beta/$metadata#settings",
        "settings": [
            {"id": "0", "settingInstance": {"settingDefinitionId": "firewall_enabled",
                                            "choiceSettingValue": {"value": "on", "children": []}}},
            {"id": "1", "settingInstance": {"settingDefinitionId": "dns_servers",
                                            "simpleSettingCollectionValue": [{"value": "10.0.0.1"},
                                                                             {"value": "10.0.0.2"}]}},
        ],
        "assignments": [
            {"id": "pol-1_g1", "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget",
                                          "groupId": "g1"}},
            {"id": "pol-1_g2", "target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget",
                                          "groupId": "g2"}},
        ],
    }


class TestNormalForm:
    def test_what_graph_changes_on_its_own_leaves_the_hash_alone(self) -> None:
        first = a_policy()
        again = a_policy()
        # Another read: collections in another order, new timestamps, versions and annotations, and the
        # settings renumbered (Graph numbers them by position).
        again["settings"] = [dict(again["settings"][1], id="0"), dict(again["settings"][0], id="1")]
        again["assignments"].reverse()
        again["roleScopeTagIds"] = ["7", "0"]
        again["lastModifiedDateTime"] = "2026-03-03T00:00:00Z"
        again["version"] = 9
        again["assignments@odata.context"] = "https://graph.microsoft.com/beta/$metadata#assignments"
        again["settings"][0]["settingInstance"]["@odata.type"] = "#microsoft.graph.x"
        first["settings"][1]["settingInstance"]["@odata.type"] = "#microsoft.graph.x"
        read = copy.deepcopy(again)
        assert normalised_hash(first, POLICY_NORMAL_FORM) == normalised_hash(again, POLICY_NORMAL_FORM)
        assert again == read, "the captured body itself is left as Graph returned it"

    @pytest.mark.parametrize("edit", [
        lambda p: p["settings"][0]["settingInstance"]["choiceSettingValue"].update(value="off"),
        lambda p: p["assignments"][1]["target"].update(groupId="g3"),
        lambda p: p["assignments"].pop(),
        lambda p: p["roleScopeTagIds"].append("9"),
        lambda p: p.update(description="changed"),
        # The order of values the admin lists (DNS servers) is theirs: it is content, not Graph's whim.
        lambda p: p["settings"][1]["settingInstance"]["simpleSettingCollectionValue"].reverse(),
    ])
    def test_a_change_an_admin_makes_changes_the_hash(self, edit: Any) -> None:
        edited = a_policy()
        edit(edited)
        assert normalised_hash(edited, POLICY_NORMAL_FORM) != normalised_hash(a_policy(), POLICY_NORMAL_FORM)

    def test_the_unordered_collections_come_from_the_catalog(self) -> None:
        assert {"settings", "assignments", "definitionValues", "presentationValues",
                "scheduledActionsForRule", "scheduledActionConfigurations", "apps",
                "localizedNotificationMessages"} <= POLICY_NORMAL_FORM.unordered
        assert "assignments" not in POLICY_NORMAL_FORM.drop_top_level
        expanding = dataclasses.replace(CATALOG["powerShellScript"], read_steps=(ItemGet(MappingProxyType({
            "$expand": "roleDefinition($select=id,displayName),roleScopeTags($expand=tags;$top=5)"})),))
        assert policy_normal_form([expanding]).unordered == {"assignments", "roleDefinition", "roleScopeTags",
                                                             "tags"}


class Tenant:
    """A tenant's live policies (``type -> id -> name``) as the plan lists them, and their bodies."""

    def __init__(self) -> None:
        self.policies: dict[str, dict[str, str]] = {
            "settingsCatalog": {"sc-1": "One", "sc-2": "Two", "sc-3": "Three"},
            "compliancePolicy": {"cp-1": "Comply"},
            "scopeTag": {"7": "Tag"},
        }
        self.bodies: dict[str, dict[str, Any]] = {}

    async def __call__(self, *, tenant_id: str, policy_type: str) -> list[PolicySummary]:
        return [PolicySummary(type_key=policy_type, id=i, name=name, odata_type=None, last_modified=None,
                              listed={}) for i, name in self.policies.get(policy_type, {}).items()]

    def body(self, policy_type: str, policy_id: str) -> dict[str, Any]:
        return self.bodies.setdefault(f"{policy_type}:{policy_id}", {"id": policy_id, "value": 1,
                                                                     "lastModifiedDateTime": "t0"})


async def back_up(runs: RunsHarness, sets: InMemoryBackupSetRepository, service: BackupSetService,
                  tenant: Tenant, selection: dict[str, Any], *, fail: frozenset[str] = frozenset(),
                  **options: Any) -> Any:
    """Plan a set, capture each item as the capture service would (hash of the normal form), finish it."""
    runs.clock.advance(minutes=1)
    result, backup_set = await start(service, selection, **options)
    await service.plan(tenant_id=TENANT, run_id=result.run.id)
    for item in sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id, top=1000).items:
        if item.item_id in fail:
            continue
        runs.service.record_item(tenant_id=TENANT, run_id=result.run.id, outcome=ItemOutcome(
            item_id=item.item_id, action="captured", status="succeeded"))
        body = tenant.body(item.policy_type, item.source_id)
        sets.put_items([item.model_copy(update={
            "status": "captured", "complete": True, "content_hash": "c" * 64,
            "normalised_hash": normalised_hash(body, POLICY_NORMAL_FORM)})])
    service.finish(tenant_id=TENANT, run_id=result.run.id, failure=None)
    return backup_set.id


def changes_of(service: BackupSetService, set_id: str) -> dict[str, str]:
    _, page = service.list_changes(tenant_id=TENANT, backup_set_id=set_id, top=1000)
    return {c.item_id: c.change for c in page.items}


class TestChanges:
    async def test_a_first_set_is_all_new_and_a_second_of_an_untouched_tenant_all_unchanged(self) -> None:
        tenant = Tenant()
        runs, sets, service = harness(tenant)
        first = await back_up(runs, sets, service, tenant, {"all": True})
        assert set(changes_of(service, first).values()) == {"new"}
        assert service.get_set(tenant_id=TENANT, backup_set_id=first).compared_with is None

        # Graph stamps a new time on every policy: the normal form ignores it.
        for body in tenant.bodies.values():
            body["lastModifiedDateTime"] = "t1"
        second = await back_up(runs, sets, service, tenant, {"all": True})
        changes = changes_of(service, second)
        assert len(changes) == 5
        assert set(changes.values()) == {"unchanged"}
        stored = service.get_set(tenant_id=TENANT, backup_set_id=second)
        assert stored.compared_with == first
        assert stored.changes is not None
        assert (stored.changes.unchanged, stored.changes.new, stored.changes.changed,
                stored.changes.deleted) == (5, 0, 0, 0)

    async def test_edits_adds_and_deletes_are_reported_as_such(self) -> None:
        tenant = Tenant()
        runs, sets, service = harness(tenant)
        await back_up(runs, sets, service, tenant, {"all": True})
        tenant.body("settingsCatalog", "sc-1")["value"] = 2
        tenant.policies["settingsCatalog"]["sc-4"] = "Four"
        del tenant.policies["settingsCatalog"]["sc-2"]
        latest = await back_up(runs, sets, service, tenant, {"all": True})
        changes = changes_of(service, latest)
        assert {k: v for k, v in changes.items() if v != "unchanged"} == {
            "settingsCatalog:sc-1": "changed", "settingsCatalog:sc-4": "new",
            "settingsCatalog:sc-2": "deleted"}
        _, page = service.list_changes(tenant_id=TENANT, backup_set_id=latest, top=2)
        assert len(page.items) == 2
        assert page.continuation
        deleted = next(c for c in page.items + service.list_changes(
            tenant_id=TENANT, backup_set_id=latest, continuation=page.continuation)[1].items
            if c.change == "deleted")
        assert (deleted.policy_type, deleted.source_id, deleted.display_name) == \
            ("settingsCatalog", "sc-2", "Two")

    async def test_a_narrow_set_compares_only_what_it_selects_and_is_no_baseline_for_wider_ones(
            self) -> None:
        tenant = Tenant()
        runs, sets, service = harness(tenant)
        everything = await back_up(runs, sets, service, tenant, {"all": True})
        del tenant.policies["compliancePolicy"]["cp-1"]
        del tenant.policies["settingsCatalog"]["sc-3"]
        narrow = await back_up(runs, sets, service, tenant, {"types": ["settingsCatalog"]},
                               includeFoundations=False)
        # Against the full set: the compliance policy is outside this selection, so not reported deleted.
        assert service.get_set(tenant_id=TENANT, backup_set_id=narrow).compared_with == everything
        assert changes_of(service, narrow) == {"settingsCatalog:sc-1": "unchanged",
                                               "settingsCatalog:sc-2": "unchanged",
                                               "settingsCatalog:sc-3": "deleted"}
        one = await back_up(runs, sets, service, tenant, {"policies": [{"type": "settingsCatalog",
                                                                        "id": "sc-1"}]},
                            includeFoundations=False)
        assert changes_of(service, one) == {"settingsCatalog:sc-1": "unchanged"}
        # The next full set is compared with the last full one, not with the narrower sets since.
        again = await back_up(runs, sets, service, tenant, {"all": True})
        assert service.get_set(tenant_id=TENANT, backup_set_id=again).compared_with == everything
        assert {k: v for k, v in changes_of(service, again).items() if v != "unchanged"} == {
            "compliancePolicy:cp-1": "deleted", "settingsCatalog:sc-3": "deleted"}

    async def test_failed_items_are_not_compared_nor_deleted_and_a_partial_set_is_no_baseline(
            self) -> None:
        tenant = Tenant()
        runs, sets, service = harness(tenant)
        first = await back_up(runs, sets, service, tenant, {"all": True})
        partial = await back_up(runs, sets, service, tenant, {"all": True},
                                fail=frozenset({"settingsCatalog:sc-1"}))
        assert service.get_set(tenant_id=TENANT, backup_set_id=partial).status == "partial"
        changes = changes_of(service, partial)
        assert "settingsCatalog:sc-1" not in changes
        assert set(changes.values()) == {"unchanged"}
        tenant.body("settingsCatalog", "sc-2")["value"] = 5
        last = await back_up(runs, sets, service, tenant, {"all": True})
        assert service.get_set(tenant_id=TENANT, backup_set_id=last).compared_with == first
        assert changes_of(service, last)["settingsCatalog:sc-2"] == "changed"

    async def test_a_set_whose_plan_failed_reports_nothing_deleted(self) -> None:
        tenant = Tenant()
        runs, sets, service = harness(tenant)
        await back_up(runs, sets, service, tenant, {"all": True})
        runs.clock.advance(minutes=1)
        result, backup_set = await start(service, {"all": True})  # never planned: Graph refused the listing
        service.finish(tenant_id=TENANT, run_id=result.run.id, failure=ErrorInfo(code="plan-failed"))
        assert changes_of(service, backup_set.id) == {}
        assert service.get_set(tenant_id=TENANT, backup_set_id=backup_set.id).changes is None
