"""Adding items to a set, cancelling and rerunning runs, below the durable boundary (in-memory storage)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from shared.domain import (
    BackupSetRequest,
    Grant,
    ItemOutcome,
    Principal,
    Role,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
)
from shared.domain.backupsets import AddItemsRequest, PolicyRef
from shared.domain.batches import SetItemOutcome
from shared.errors import InvalidRequest, RoleTooLow, ServiceUnavailable
from shared.graph.reader import PolicySummary
from shared.services.backupsets import BackupSetBusy, BackupSetNotFound, BackupSetService, NothingToRerun
from shared.services.run_control import (
    CancelNotSupported,
    RerunNotSupported,
    RunControl,
    RunNotActive,
    RunStillActive,
)
from shared.storage.memory import InMemoryBlobStore
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import RunsHarness

TENANT = "22222222-2222-2222-2222-222222222222"
ALICE = Principal(tenant_id="11111111-1111-1111-1111-111111111111", object_id="alice", name="Alice")


def grant(role: Role) -> Grant:
    return Grant(tenant_id=TENANT, principal_tenant_id=ALICE.tenant_id, principal_id=ALICE.object_id,
                 role=role, granted_by="root", granted_at=datetime(2026, 1, 1, tzinfo=UTC))


class Lister:
    """Lists a few scope tags (the foundations) and no other type."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, *, tenant_id: str, policy_type: str) -> list[PolicySummary]:
        self.calls.append(policy_type)
        if policy_type != "scopeTag":
            return []
        return [PolicySummary(type_key="scopeTag", id=str(n), name=f"Tag {n}", odata_type=None,
                              last_modified=None, listed={}) for n in (1, 2)]


class Host:
    """The Durable client as a cancel sees it: records terminations; instances can be alive or gone."""

    def __init__(self, *, fail_terminate: bool = False, runtime: str | None = "Terminated") -> None:
        self.terminated: list[str] = []
        self.fail_terminate = fail_terminate
        self.runtime = runtime

    async def terminate(self, instance_id: str, reason: str) -> None:
        if self.fail_terminate:
            raise RuntimeError("host unreachable")
        self.terminated.append(instance_id)

    async def get_status(self, instance_id: str) -> Any:
        if self.runtime is None:
            return DurableOrchestrationStatus.from_json({})
        return DurableOrchestrationStatus.from_json({
            "name": "backup_set_orchestrator", "instanceId": instance_id, "runtimeStatus": self.runtime,
            "createdTime": "2026-01-15T09:30:00Z", "lastUpdatedTime": "2026-01-15T09:30:01Z"})


class World:
    """Runs, sets and the services over in-memory storage, with helpers that play the orchestration's part."""

    def __init__(self, batch_size: int = 2) -> None:
        self.runs = RunsHarness()
        self.sets = InMemoryBackupSetRepository()
        self.lister = Lister()
        self.service = BackupSetService(sets=self.sets, runs=self.runs.service, run_rows=self.runs.runs,
                                        blobs=InMemoryBlobStore(), list_policies=self.lister,
                                        clock=self.runs.clock, batch_size=batch_size)
        self.control = RunControl(runs=self.runs.service)
        self.control.register(RunKind.BACKUPSET_CAPTURE, self.service)
        self.control.register(RunKind.BACKUPSET_ADD_ITEMS, self.service)

    async def start_set(self, *ids: str, include_foundations: bool = False) -> tuple[RunRecord, str]:
        request = BackupSetRequest.model_validate({
            "name": "n", "includeFoundations": include_foundations,
            "selection": {"policies": [{"type": "settingsCatalog", "id": i} for i in ids]}})
        result, backup_set = await self.service.start(principal=ALICE, tenant_id=TENANT, request=request,
                                                      idempotency_key=None)
        self.runs.service.mark_running(tenant_id=TENANT, run_id=result.run.id)
        await self.service.plan(tenant_id=TENANT, run_id=result.run.id)
        return result.run, backup_set.id

    def capture(self, run_id: str, set_id: str, item_id: str, content: str = "a", *, ok: bool = True) -> None:
        """What the capture activity writes for one item of a set (run item and set item)."""
        policy_type, policy_id = item_id.split(":", 1)
        self.runs.service.record_batch_item(tenant_id=TENANT, run_id=run_id, outcome=ItemOutcome(
            item_id=item_id, policy_type=policy_type, source_id=policy_id,
            action="captured" if ok else "failed", status="succeeded" if ok else "failed"))
        assert self.sets.settle_item(tenant_id=TENANT, backup_set_id=set_id, item_id=item_id,
                                     outcome=SetItemOutcome(status="captured", content_hash=content * 64,
                                                            complete=True) if ok else
                                     SetItemOutcome(status="failed"))

    def item(self, set_id: str, item_id: str) -> Any:
        return self.sets.get_item(tenant_id=TENANT, backup_set_id=set_id, item_id=item_id)

    def outcomes(self, run_id: str) -> dict[str, tuple[str, str]]:
        items = self.runs.service.list_items(tenant_id=TENANT, run_id=run_id, top=1000).items
        return {i.item_id: (i.action, i.status) for i in items}

    async def add(self, set_id: str, *ids: str, include_foundations: bool | None = False) -> RunRecord:
        result, _ = await self.service.add_items(
            principal=ALICE, tenant_id=TENANT, backup_set_id=set_id, idempotency_key=None,
            request=AddItemsRequest(policies=[PolicyRef(type="settingsCatalog", id=i) for i in ids],
                                    include_foundations=include_foundations))
        return result.run


class TestAddingItems:
    async def test_items_are_added_and_those_held_captured_again_in_batches_of_their_own(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a", "b", "c")
        for item_id in ("settingsCatalog:a", "settingsCatalog:b", "settingsCatalog:c"):
            world.capture(capture.id, set_id, item_id)
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)

        added = await world.add(set_id, "d", "b")
        assert (added.kind, added.target.backup_set_id) == (RunKind.BACKUPSET_ADD_ITEMS, set_id)
        world.runs.service.mark_running(tenant_id=TENANT, run_id=added.id)
        plan = await world.service.plan(tenant_id=TENANT, run_id=added.id)
        assert (plan.status, plan.backup_set_id, plan.item_count, plan.batch_count) == \
            ("planned", set_id, 2, 1)
        # Only the named policies, and no listing (foundations not asked for).
        assert world.lister.calls == []
        members = world.service.batch_members(tenant_id=TENANT, backup_set_id=set_id, batch=0,
                                              run_id=added.id)
        assert [(m.type, m.id) for m in members] == [("settingsCatalog", "b"), ("settingsCatalog", "d")]
        # The capture's own batches are untouched by the addition's, which are numbered from 0 too.
        capture_members = world.service.batch_members(tenant_id=TENANT, backup_set_id=set_id, batch=0,
                                                      run_id=capture.id)
        assert [m.id for m in capture_members] == ["a", "b"]
        # A held item keeps its last capture until the new one lands; a new item is pending.
        assert world.item(set_id, "settingsCatalog:b").status == "captured"
        assert world.item(set_id, "settingsCatalog:d").status == "pending"
        assert world.service.child_instances(tenant_id=TENANT, run_id=added.id) == \
            [f"{added.id}:batch-000000"]

        world.capture(added.id, set_id, "settingsCatalog:b", content="b")
        world.capture(added.id, set_id, "settingsCatalog:d", content="d")
        ended = world.service.finish(tenant_id=TENANT, run_id=added.id, failure=None)
        assert ended.status == RunStatus.SUCCEEDED
        assert (ended.counts.total, ended.counts.succeeded) == (2, 2)
        assert world.item(set_id, "settingsCatalog:b").content_hash == "b" * 64
        stored = world.service.get_set(tenant_id=TENANT, backup_set_id=set_id)
        assert (stored.status, stored.item_count, stored.captured_count, stored.failed_count) == \
            ("complete", 4, 4, 0)
        # The capture run itself keeps the counts it ended with.
        assert world.runs.service.get(tenant_id=TENANT, run_id=capture.id).counts.total == 3

    async def test_a_repeated_plan_answers_the_same_and_lists_nothing_again(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a")
        world.capture(capture.id, set_id, "settingsCatalog:a")
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)
        added = await world.add(set_id, "b", include_foundations=None)  # as the set was made: none
        world.runs.service.mark_running(tenant_id=TENANT, run_id=added.id)
        first = await world.service.plan(tenant_id=TENANT, run_id=added.id)
        world.capture(added.id, set_id, "settingsCatalog:b")
        assert await world.service.plan(tenant_id=TENANT, run_id=added.id) == first
        assert world.item(set_id, "settingsCatalog:b").status == "captured"
        assert world.lister.calls == []

    async def test_foundations_are_listed_when_asked_for(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a")
        world.capture(capture.id, set_id, "settingsCatalog:a")
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)
        added = await world.add(set_id, "a", include_foundations=True)
        world.runs.service.mark_running(tenant_id=TENANT, run_id=added.id)
        plan = await world.service.plan(tenant_id=TENANT, run_id=added.id)
        assert plan.item_count == 3  # the policy and two scope tags
        assert sorted(world.lister.calls) == ["assignmentFilter", "notificationTemplate", "scopeTag"]

    async def test_equal_requests_in_another_order_join_the_active_run(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a")
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)
        first = await world.add(set_id, "x", "y", "x")
        again = await world.add(set_id, "y", "x")
        assert again.id == first.id

    async def test_a_set_still_capturing_is_busy_and_an_unknown_set_not_found(self) -> None:
        world = World()
        _, set_id = await world.start_set("a")
        with pytest.raises(BackupSetBusy) as caught:
            await world.add(set_id, "b")
        assert caught.value.instance_code == "backup-set-busy"
        with pytest.raises(BackupSetNotFound):
            await world.add("bs_01JD0000000000000000000000", "b")
        with pytest.raises(InvalidRequest) as bad:
            await world.add(set_id)
        assert bad.value.instance_code == "empty-selection"

    async def test_what_an_addition_did_not_capture_is_failed_but_a_held_item_keeps_its_capture(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a")
        world.capture(capture.id, set_id, "settingsCatalog:a")
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)
        added = await world.add(set_id, "a", "n")
        world.runs.service.mark_running(tenant_id=TENANT, run_id=added.id)
        await world.service.plan(tenant_id=TENANT, run_id=added.id)
        ended = world.service.finish(tenant_id=TENANT, run_id=added.id, failure=None)  # no item captured
        assert ended.status == RunStatus.FAILED
        assert world.outcomes(added.id) == {"settingsCatalog:a": ("failed", "failed"),
                                            "settingsCatalog:n": ("failed", "failed")}
        assert world.item(set_id, "settingsCatalog:a").status == "captured"
        assert world.item(set_id, "settingsCatalog:n").status == "failed"
        stored = world.service.get_set(tenant_id=TENANT, backup_set_id=set_id)
        assert (stored.status, stored.captured_count, stored.failed_count) == ("partial", 1, 1)


class TestCancel:
    async def test_a_backup_run_is_stopped_then_whatever_was_not_settled_is_skipped(self) -> None:
        world = World()
        run, set_id = await world.start_set("a", "b", "c")
        world.capture(run.id, set_id, "settingsCatalog:a")
        host = Host()

        cancelled = await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id, orchestrations=host)

        assert host.terminated == [run.id, f"{run.id}:batch-000000", f"{run.id}:batch-000001"]
        assert cancelled.status == RunStatus.CANCELLED
        assert (cancelled.counts.total, cancelled.counts.succeeded, cancelled.counts.skipped) == (3, 1, 2)
        assert world.outcomes(run.id) == {"settingsCatalog:a": ("captured", "succeeded"),
                                          "settingsCatalog:b": ("skipped", "skipped"),
                                          "settingsCatalog:c": ("skipped", "skipped")}
        skipped = world.item(set_id, "settingsCatalog:b")
        assert (skipped.status, skipped.error.code) == ("skipped", "run-cancelled")
        stored = world.service.get_set(tenant_id=TENANT, backup_set_id=set_id)
        assert (stored.status, stored.captured_count, stored.failed_count) == ("partial", 1, 2)
        assert stored.completed_at == cancelled.finished_at

        # A double click answers the cancelled run again, and stops nothing more.
        again = await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id, orchestrations=host)
        assert again == cancelled
        assert len(host.terminated) == 3

    async def test_an_addition_cancelled_skips_only_its_own_members(self) -> None:
        world = World()
        capture, set_id = await world.start_set("a")
        world.capture(capture.id, set_id, "settingsCatalog:a")
        world.service.finish(tenant_id=TENANT, run_id=capture.id, failure=None)
        added = await world.add(set_id, "a", "n")
        world.runs.service.mark_running(tenant_id=TENANT, run_id=added.id)
        await world.service.plan(tenant_id=TENANT, run_id=added.id)

        ended = await world.control.cancel(grant=grant(Role.OPERATOR), run_id=added.id, orchestrations=Host())

        assert ended.status == RunStatus.CANCELLED
        assert world.outcomes(added.id) == {"settingsCatalog:a": ("skipped", "skipped"),
                                            "settingsCatalog:n": ("skipped", "skipped")}
        assert world.item(set_id, "settingsCatalog:a").status == "captured"
        assert world.item(set_id, "settingsCatalog:n").status == "skipped"
        assert world.service.get_set(tenant_id=TENANT, backup_set_id=set_id).status == "partial"

    async def test_a_policy_capture_is_cancelled_with_its_item_skipped(self) -> None:
        world = World()
        started = await world.runs.service.start(
            principal=ALICE, tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
            target=RunTarget(policy_type="settingsCatalog", policy_id="p1"), scope={}, idempotency_key=None)
        ended = await world.control.cancel(grant=grant(Role.OPERATOR), run_id=started.run.id,
                                           orchestrations=Host(runtime=None))
        assert ended.status == RunStatus.CANCELLED
        assert (ended.counts.total, ended.counts.skipped) == (1, 1)
        assert world.outcomes(started.run.id) == {"settingsCatalog:p1": ("skipped", "skipped")}

    async def test_ended_runs_low_roles_and_kinds_without_a_hook_are_refused(self) -> None:
        world = World()
        run, set_id = await world.start_set("a")
        world.capture(run.id, set_id, "settingsCatalog:a")
        with pytest.raises(RoleTooLow):
            await world.control.cancel(grant=grant(Role.READER), run_id=run.id, orchestrations=Host())
        world.service.finish(tenant_id=TENANT, run_id=run.id, failure=None)
        with pytest.raises(RunNotActive) as caught:
            await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id, orchestrations=Host())
        assert caught.value.instance_code == "run-not-active"

        restore = await world.runs.service.start(
            principal=ALICE, tenant_id=TENANT, kind=RunKind.RESTORE_EXECUTE,
            target=RunTarget(backup_set_id=set_id), scope={}, idempotency_key=None)
        with pytest.raises(RoleTooLow):
            await world.control.cancel(grant=grant(Role.OPERATOR), run_id=restore.run.id,
                                       orchestrations=Host())
        with pytest.raises(CancelNotSupported):
            await world.control.cancel(grant=grant(Role.ADMIN), run_id=restore.run.id, orchestrations=Host())
        assert world.runs.service.get(tenant_id=TENANT, run_id=restore.run.id).status == RunStatus.QUEUED

    async def test_an_orchestration_that_could_not_be_stopped_leaves_the_run_as_it_was(self) -> None:
        world = World()
        run, _ = await world.start_set("a")
        with pytest.raises(ServiceUnavailable):
            await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id,
                                       orchestrations=Host(fail_terminate=True, runtime="Running"))
        assert world.runs.service.get(tenant_id=TENANT, run_id=run.id).status == RunStatus.RUNNING
        # An instance that never started (or is gone) needs no stopping.
        ended = await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id,
                                           orchestrations=Host(fail_terminate=True, runtime=None))
        assert ended.status == RunStatus.CANCELLED


class TestRerun:
    async def test_a_backup_run_is_rerun_for_what_it_failed_or_skipped_only(self) -> None:
        world = World()
        run, set_id = await world.start_set("a", "b", "c")
        world.capture(run.id, set_id, "settingsCatalog:a")
        world.capture(run.id, set_id, "settingsCatalog:b", ok=False)
        with pytest.raises(RunStillActive):
            await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=run.id)
        await world.control.cancel(grant=grant(Role.OPERATOR), run_id=run.id, orchestrations=Host())

        result = await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=run.id)

        assert result.run.kind == RunKind.BACKUPSET_ADD_ITEMS
        assert result.run.target.backup_set_id == set_id
        assert result.run.scope["policies"] == [{"type": "settingsCatalog", "id": "b"},
                                                {"type": "settingsCatalog", "id": "c"}]
        assert result.run.scope["includeFoundations"] is False
        # A second click joins the rerun while it is active.
        again = await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=run.id)
        assert (again.run.id, again.reused) == (result.run.id, True)

        # Once the rerun captured what the cancelled capture left, the set is whole.
        world.runs.service.mark_running(tenant_id=TENANT, run_id=result.run.id)
        await world.service.plan(tenant_id=TENANT, run_id=result.run.id)
        world.capture(result.run.id, set_id, "settingsCatalog:b")
        world.capture(result.run.id, set_id, "settingsCatalog:c")
        assert world.service.finish(tenant_id=TENANT, run_id=result.run.id, failure=None).status == \
            RunStatus.SUCCEEDED
        stored = world.service.get_set(tenant_id=TENANT, backup_set_id=set_id)
        assert (stored.status, stored.captured_count, stored.failed_count) == ("complete", 3, 0)

    async def test_a_run_with_nothing_failed_has_nothing_to_rerun(self) -> None:
        world = World()
        run, set_id = await world.start_set("a")
        world.capture(run.id, set_id, "settingsCatalog:a")
        world.service.finish(tenant_id=TENANT, run_id=run.id, failure=None)
        with pytest.raises(NothingToRerun) as caught:
            await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=run.id)
        assert caught.value.instance_code == "nothing-to-rerun"

    async def test_a_policy_capture_starts_again_and_restores_need_their_hook(self) -> None:
        world = World()
        first = await world.runs.service.start(
            principal=ALICE, tenant_id=TENANT, kind=RunKind.POLICY_CAPTURE,
            target=RunTarget(policy_type="settingsCatalog", policy_id="p1"), scope={}, idempotency_key=None)
        world.runs.service.complete(tenant_id=TENANT, run_id=first.run.id)
        with pytest.raises(RoleTooLow):
            await world.control.rerun(grant=grant(Role.READER), principal=ALICE, run_id=first.run.id)
        again = await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=first.run.id)
        assert again.run.id != first.run.id
        assert (again.run.kind, again.run.target, again.reused) == (RunKind.POLICY_CAPTURE, first.run.target,
                                                                    False)

        preview = await world.runs.service.start(
            principal=ALICE, tenant_id=TENANT, kind=RunKind.RESTORE_PREVIEW,
            target=RunTarget(backup_set_id="bs_01JD0000000000000000000000"), scope={}, idempotency_key=None)
        world.runs.service.complete(tenant_id=TENANT, run_id=preview.run.id)
        with pytest.raises(RerunNotSupported) as caught:
            await world.control.rerun(grant=grant(Role.OPERATOR), principal=ALICE, run_id=preview.run.id)
        assert caught.value.instance_code == "rerun-not-supported"
