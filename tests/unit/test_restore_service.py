"""RestoreService over in-memory repositories and a fake Graph: plan, preview, apply, finish, rerun."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.domain import BackupSet, BackupSetItem, CreatedBy, Selection, new_run_id
from shared.domain.audit import AuditAction, AuditEvent
from shared.domain.backupsets import backup_set_id_for_run
from shared.domain.capture import capture_item_id
from shared.domain.restore import (
    ASSIGNMENTS_STAGE,
    RestoreApplyInput,
    RestoreApplyResult,
    RestorePlan,
    RestorePlanResult,
    RestoreRequest,
    normal_hash,
)
from shared.domain.runs import ItemOutcome, RunRecord, RunStatus
from shared.errors import Conflict, InvalidRequest
from shared.graph.catalog import CATALOG
from shared.graph.errors import GraphBadRequest, GraphServerError, GraphWriteRefused
from shared.graph.reader import PolicyReader
from shared.graph.writer import unrestorable_properties
from shared.services.backupsets import BackupSetNotFound
from shared.services.restore import RESTORE_NORMAL_FORM, RestoreService
from shared.storage.memory import InMemoryAuditRepository
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from shared.storage.memory_restore import InMemoryRestoreRepository
from tests.fake_graph import FakeGraph, FakeTenant
from tests.fakes import FakeClock, InMemoryBlobStore, RunsHarness, make_principal

TENANT = "22222222-2222-2222-2222-222222222222"
SOURCE = "33333333-3333-3333-3333-333333333333"
GROUP = "aaaaaaaa-0000-4000-8000-000000000001"
TARGET_GROUP = "bbbbbbbb-0000-4000-8000-000000000001"
WIN10 = "#microsoft.graph.windows10GeneralConfiguration"


def _catalog_policy(
    name: str,
    value: str = "on",
    *,
    tags: list[str] | None = None,
    assignments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "platforms": "windows10",
        "technologies": "mdm",
        "roleScopeTagIds": tags or ["0"],
        "settings": [{"settingInstance": {"settingDefinitionId": f"{name}_setting", "value": value}}],
        "assignments": assignments or [],
    }


def _group_assignment(group: str = GROUP) -> dict[str, Any]:
    return {"target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group}}


def _device_config(name: str, *, password: bool = True) -> dict[str, Any]:
    return {"@odata.type": WIN10, "displayName": name, "passwordRequired": password, "roleScopeTagIds": ["0"]}


@dataclass
class Harness:
    clock: FakeClock = field(default_factory=FakeClock)
    graph: FakeGraph = field(default_factory=FakeGraph)
    sets: InMemoryBackupSetRepository = field(default_factory=InMemoryBackupSetRepository)
    restores: InMemoryRestoreRepository = field(default_factory=InMemoryRestoreRepository)
    blobs: InMemoryBlobStore = field(default_factory=InMemoryBlobStore)
    audit: InMemoryAuditRepository = field(default_factory=InMemoryAuditRepository)
    # Whether the caller may read other tenants (a cross-tenant restore reads the source's set).
    readable: bool = True

    def __post_init__(self) -> None:
        self.runs = RunsHarness(clock=self.clock)
        self.service = RestoreService(
            runs=self.runs.service,
            run_rows=self.runs.runs,
            sets=self.sets,
            restores=self.restores,
            blobs=self.blobs,
            audit=self.audit,
            graph=self.graph,
            can_read=lambda principal, tenant_id: self.readable,
            clock=self.clock,
        )
        self.principal = make_principal()

    def tenant(self, tenant_id: str = TENANT) -> FakeTenant:
        return self.graph.tenant(tenant_id)

    async def backup(
        self, tenant_id: str = TENANT, *, extra: Sequence[tuple[str, str, dict[str, Any]]] = ()
    ) -> BackupSet:
        """Capture every served object of the tenant into a finished backup set (as a capture stores it)."""
        self.clock.advance(minutes=1)
        run_id = new_run_id(self.clock())
        client = await self.graph.client(tenant_id)
        reader = PolicyReader(client, include_assignments=True)
        bodies: list[tuple[str, str, str, dict[str, Any]]] = []
        for type_key in ("scopeTag", "assignmentFilter", "settingsCatalog", "deviceConfiguration"):
            for summary in await reader.list_policies(type_key):
                captured = await reader.read_policy(type_key, summary.id, listed=summary.listed)
                bodies.append((type_key, summary.id, captured.name, captured.body))
        bodies.extend(
            (type_key, source_id, body.get("displayName", ""), body) for type_key, source_id, body in extra
        )
        backup_set = BackupSet(
            id=backup_set_id_for_run(run_id),
            tenant_id=tenant_id,
            name="nightly",
            run_id=run_id,
            status="complete",
            selection=Selection(all=True),
            created_by=CreatedBy(id="oid"),
            created_at=self.clock(),
            completed_at=self.clock(),
            item_count=len(bodies),
            batch_count=1,
            captured_count=len(bodies),
        )
        self.sets.put_set(backup_set)
        items = []
        for type_key, source_id, name, body in bodies:
            content_hash, _, size = self.blobs.put_json(tenant_id, json.dumps(body).encode("utf-8"))
            items.append(
                BackupSetItem(
                    tenant_id=tenant_id,
                    backup_set_id=backup_set.id,
                    item_id=capture_item_id(type_key, source_id),
                    policy_type=type_key,
                    source_id=source_id,
                    display_name=name,
                    batch=0,
                    status="captured",
                    captured_at=self.clock(),
                    content_hash=content_hash,
                    size_bytes=size,
                    complete=True,
                )
            )
        self.sets.put_items(items)
        return backup_set

    async def start(
        self, backup_set: BackupSet, *, execute: bool, tenant_id: str = TENANT, **request: Any
    ) -> RunRecord:
        self.clock.advance(seconds=10)
        started = await self.service.start(
            principal=self.principal,
            tenant_id=tenant_id,
            request=RestoreRequest.model_validate({"backupSetId": backup_set.id, **request}),
            execute=execute,
            idempotency_key=None,
        )
        assert started.reused is False
        return started.run

    async def preview(
        self, backup_set: BackupSet, *, tenant_id: str = TENANT, **request: Any
    ) -> tuple[RunRecord, RestorePlan]:
        run = await self.start(backup_set, execute=False, tenant_id=tenant_id, **request)
        planned = await self.service.plan(tenant_id=tenant_id, run_id=run.id)
        assert planned.status == "planned", planned
        assert planned.stages == []
        self.service.finish(tenant_id=tenant_id, run_id=run.id, failure=None)
        return run, self.service.preview(tenant_id=tenant_id, run_id=run.id)

    async def apply(
        self,
        run: RunRecord,
        planned: RestorePlanResult,
        position: int,
        *,
        assignments: bool = False,
        attempt: int = 1,
    ) -> RestoreApplyResult:
        # Items carry their stage, as the orchestration sends them (an item's id maps are per stage).
        stage = next((s.stage for s in planned.stages if position in s.positions
                      and (s.stage == ASSIGNMENTS_STAGE) == assignments), 0)
        return await self.service.apply(
            RestoreApplyInput(
                tenant_id=run.tenant_id,
                run_id=run.id,
                plan_hash=planned.plan_hash,
                position=position,
                stage=stage,
                assignments=assignments,
                attempt=attempt,
            )
        )

    async def execute(
        self, backup_set: BackupSet, *, tenant_id: str = TENANT, finish: bool = True, **request: Any
    ) -> tuple[RunRecord, RestorePlanResult]:
        """Run a restore the way its orchestration does: plan, every stage in order, finish."""
        run = await self.start(backup_set, execute=True, tenant_id=tenant_id, **request)
        planned = await self.service.plan(tenant_id=tenant_id, run_id=run.id)
        assert planned.status == "planned", planned
        for stage in planned.stages:
            for position in stage.positions:
                result = await self.apply(
                    run, planned, position, assignments=stage.stage == ASSIGNMENTS_STAGE
                )
                assert result.status != "retry", result
        if finish:
            run = self.service.finish(tenant_id=tenant_id, run_id=run.id, failure=None)
        return run, planned

    def outcomes(self, run: RunRecord) -> dict[str, ItemOutcome]:
        page = self.runs.service.list_items(tenant_id=run.tenant_id, run_id=run.id, top=1000)
        return {o.item_id: o for o in page.items}

    def audit_events(self, run: RunRecord) -> list[AuditEvent]:
        return list(self.audit.list(tenant_id=run.tenant_id, run_id=run.id, top=1000).items)


@pytest.fixture
def h() -> Harness:
    return Harness()


def _by_name(plan: RestorePlan) -> dict[str, Any]:
    return {item.display_name: item for item in plan.items}


# ------------------------------------------------------------------------------------ plan


async def test_a_preview_classifies_each_item_and_lists_the_changed_fields(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add_group("Sales", GROUP)
    same = tenant.add("settingsCatalog", _catalog_policy("Same", assignments=[_group_assignment()]))
    edited = tenant.add("deviceConfiguration", _device_config("Edited", password=True))
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    twin = tenant.add("deviceConfiguration", _device_config("Twin"))
    partner = ("deviceManagementPartner", "partner-1", {"id": "partner-1", "displayName": "Partner"})
    backup_set = await h.backup(extra=[partner])

    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)
    tenant.delete("deviceConfiguration", twin)
    tenant.add("deviceConfiguration", _device_config("Twin"))
    tenant.add("deviceConfiguration", _device_config("Twin"))

    run, plan = await h.preview(backup_set)
    items = _by_name(plan)
    assert {name: item.action for name, item in items.items()} == {
        "Same": "unchanged",
        "Edited": "update",
        "Deleted": "create",
        "Twin": "conflict",
        "Partner": "unsupported",
    }
    assert plan.summary.model_dump() == {
        "create": 1,
        "update": 1,
        "unchanged": 1,
        "conflict": 1,
        "unsupported": 1,
    }
    assert items["Same"].target_id == same
    assert [(c.path, c.before, c.after) for c in items["Edited"].changes] == [
        ("/passwordRequired", False, True)
    ]
    assert items["Edited"].changes_total == 1
    assert items["Edited"].target_id == edited
    assert items["Deleted"].target_id is None
    assert items["Twin"].conflict is not None
    assert items["Partner"].warnings
    # The same tenant: assignments are planned by default, and an unchanged set of targets is left alone.
    assert plan.include_assignments is True
    assert items["Same"].assignments.action == "unchanged"
    assert plan.run_id == run.id


async def test_a_preview_never_writes_and_only_uses_read_only_clients(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)
    h.graph.handed_out.clear()

    run, plan = await h.preview(backup_set)
    assert plan.summary.create == 1
    assert plan.summary.update == 1
    assert h.graph.writes() == []
    assert h.graph.refused == []
    assert h.graph.handed_out
    assert all(writes is False for _, writes in h.graph.handed_out)
    # Each item is recorded as planned; the run succeeds.
    outcomes = h.outcomes(run)
    assert {o.action for o in outcomes.values()} == {"planned"}
    assert h.runs.service.get(tenant_id=TENANT, run_id=run.id).status == RunStatus.SUCCEEDED
    # A preview writes no audit event either (nothing was changed).
    assert h.audit_events(run) == []


async def test_a_preview_plans_nothing_for_items_that_were_not_asked_for(h: Harness) -> None:
    tenant = h.tenant()
    first = tenant.add("settingsCatalog", _catalog_policy("First"))
    tenant.add("settingsCatalog", _catalog_policy("Second"))
    backup_set = await h.backup()
    _, plan = await h.preview(backup_set, itemIds=[capture_item_id("settingsCatalog", first)])
    assert [i.display_name for i in plan.items] == ["First"]


# ----------------------------------------------------------------------------------- apply


async def test_a_restore_brings_the_tenant_back_and_a_second_preview_changes_nothing(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add_group("Sales", GROUP)
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    deleted = tenant.add(
        "settingsCatalog", _catalog_policy("Deleted", "off", assignments=[_group_assignment()])
    )
    tenant.add("settingsCatalog", _catalog_policy("Same"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)

    run, _planned = await h.execute(backup_set)
    assert run.status == RunStatus.SUCCEEDED
    assert tenant.objects["deviceConfiguration"][edited]["passwordRequired"] is True
    [recreated] = tenant.named("settingsCatalog", "Deleted")
    assert recreated["id"] != deleted
    assert recreated["settings"][0]["settingInstance"]["value"] == "off"
    assert [a["target"]["groupId"] for a in recreated["assignments"]] == [GROUP]
    outcomes = {o.display_name: (o.action, o.status, o.target_id) for o in h.outcomes(run).values()}
    assert outcomes == {
        "Edited": ("updated", "succeeded", edited),
        "Deleted": ("created", "succeeded", recreated["id"]),
        "Same": ("unchanged", "succeeded", outcomes["Same"][2]),
    }

    _, again = await h.preview(backup_set)
    assert {i.display_name: i.action for i in again.items} == {
        "Edited": "unchanged",
        "Deleted": "unchanged",
        "Same": "unchanged",
    }
    assert all(i.assignments.action in ("unchanged", "skip") for i in again.items)


async def test_the_ledger_records_where_each_item_went(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    same = tenant.add("settingsCatalog", _catalog_policy("Same"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)

    run, _ = await h.execute(backup_set)
    ledger = {
        (e.policy_type, e.source_id): (e.target_id, e.state, e.run_id)
        for e in h.restores.list_ledger(target_tenant_id=TENANT, source_tenant_id=TENANT)
    }
    [recreated] = tenant.named("settingsCatalog", "Deleted")
    assert ledger == {
        ("deviceConfiguration", edited): (edited, "done", run.id),
        ("settingsCatalog", deleted): (recreated["id"], "done", run.id),
        ("settingsCatalog", same): (same, "done", run.id),
    }


async def test_every_write_is_audited_with_the_run_and_who_started_it(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add_group("Sales", GROUP)
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted", assignments=[_group_assignment()]))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)

    run, _ = await h.execute(backup_set)
    [recreated] = tenant.named("settingsCatalog", "Deleted")
    events = h.audit_events(run)
    assert sorted((e.action, e.object_id) for e in events if e.action != AuditAction.RESTORE_RUN) == sorted(
        [
            (AuditAction.RESTORE_UPDATE, edited),
            (AuditAction.RESTORE_CREATE, recreated["id"]),
            (AuditAction.RESTORE_ASSIGN, recreated["id"]),
        ]
    )
    [run_event] = [e for e in events if e.action == AuditAction.RESTORE_RUN]
    assert run_event.outcome == "succeeded"
    for event in events:
        assert event.run_id == run.id
        assert (event.actor.tenant_id, event.actor.id) == (h.principal.tenant_id, h.principal.object_id)
    update = next(e for e in events if e.action == AuditAction.RESTORE_UPDATE)
    assert update.before_hash
    assert update.after_hash
    assert update.before_hash != update.after_hash
    assert update.item_id == capture_item_id("deviceConfiguration", edited)
    create = next(e for e in events if e.action == AuditAction.RESTORE_CREATE)
    assert create.before_hash is None
    assert create.after_hash


async def test_an_apply_that_runs_twice_creates_once(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    # A re-delivered activity plans again: the stored plan is returned, not made anew.
    assert await h.service.plan(tenant_id=TENANT, run_id=run.id) == planned
    [position] = [p for s in planned.stages for p in s.positions]
    first = await h.apply(run, planned, position)
    second = await h.apply(run, planned, position)
    assert first.status == second.status == "succeeded"
    creates = [
        r
        for r in h.graph.writes()
        if r.method == "POST" and r.path == "/beta/deviceManagement/configurationPolicies"
    ]
    assert len(creates) == 1
    assert len(tenant.named("settingsCatalog", "Deleted")) == 1
    [outcome] = h.outcomes(run).values()
    assert outcome.action == "created"
    assert outcome.target_id == tenant.named("settingsCatalog", "Deleted")[0]["id"]


async def test_a_repeated_create_activity_is_audited_once(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    [position] = [p for s in planned.stages for p in s.positions]
    await h.apply(run, planned, position)
    await h.apply(run, planned, position)
    creates = [e for e in h.audit_events(run) if e.action == AuditAction.RESTORE_CREATE]
    # One object was created, so the audit trail names one create.
    assert len(creates) == 1


async def test_a_create_whose_answer_was_lost_is_adopted_by_name_instead_of_made_twice(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    [position] = [p for s in planned.stages for p in s.positions]
    # Graph creates the policy, but the answer never arrives.
    h.graph.fail_next(
        "POST",
        "/configurationPolicies",
        GraphServerError("connection reset", status_code=502),
        after_write=True,
    )
    first = await h.apply(run, planned, position)
    assert first.status == "retry"
    intent = h.restores.get_ledger(
        target_tenant_id=TENANT, source_tenant_id=TENANT, policy_type="settingsCatalog", source_id=deleted
    )
    assert intent is not None
    assert (intent.state, intent.target_id) == ("intent", None)

    second = await h.apply(run, planned, position, attempt=2)
    assert second.status == "succeeded"
    [created] = tenant.named("settingsCatalog", "Deleted")
    creates = [
        r
        for r in h.graph.writes()
        if r.method == "POST" and r.path == "/beta/deviceManagement/configurationPolicies"
    ]
    assert len(creates) == 1
    done = h.restores.get_ledger(
        target_tenant_id=TENANT, source_tenant_id=TENANT, policy_type="settingsCatalog", source_id=deleted
    )
    assert done is not None
    assert (done.state, done.target_id) == ("done", created["id"])
    [outcome] = h.outcomes(run).values()
    assert (outcome.action, outcome.target_id, outcome.attempts) == ("created", created["id"], 2)


async def test_an_intent_whose_create_never_reached_graph_is_created_on_the_next_attempt(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    [position] = [p for s in planned.stages for p in s.positions]
    h.graph.fail_next("POST", "/configurationPolicies", GraphServerError("unavailable", status_code=503))
    assert (await h.apply(run, planned, position)).status == "retry"
    assert tenant.named("settingsCatalog", "Deleted") == []
    assert (await h.apply(run, planned, position, attempt=2)).status == "succeeded"
    assert len(tenant.named("settingsCatalog", "Deleted")) == 1


async def test_a_second_restore_of_the_same_set_writes_nothing(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    tenant.add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)
    await h.execute(backup_set)
    before = len(h.graph.writes())

    run, _ = await h.execute(backup_set)
    assert len(h.graph.writes()) == before
    assert {o.action for o in h.outcomes(run).values()} == {"unchanged"}
    assert len(tenant.named("settingsCatalog", "Deleted")) == 1


async def test_conflicts_and_unsupported_items_are_skipped_with_a_reason(h: Harness) -> None:
    tenant = h.tenant()
    twin = tenant.add("deviceConfiguration", _device_config("Twin"))
    partner = ("deviceManagementPartner", "partner-1", {"id": "partner-1", "displayName": "Partner"})
    backup_set = await h.backup(extra=[partner])
    tenant.delete("deviceConfiguration", twin)
    tenant.add("deviceConfiguration", _device_config("Twin"))
    tenant.add("deviceConfiguration", _device_config("Twin"))

    run, _ = await h.execute(backup_set)
    outcomes = {o.display_name: o for o in h.outcomes(run).values()}
    assert (outcomes["Twin"].status, outcomes["Twin"].error and outcomes["Twin"].error.code) == (
        "skipped",
        "restore-conflict",
    )
    assert (outcomes["Partner"].status, outcomes["Partner"].error and outcomes["Partner"].error.code) == (
        "skipped",
        "restore-unsupported",
    )
    assert h.graph.writes() == []
    assert len(tenant.named("deviceConfiguration", "Twin")) == 2


# ---------------------------------------------------------------------------------- finish


async def test_finish_records_items_that_were_never_applied_as_failed(h: Harness) -> None:
    tenant = h.tenant()
    first = tenant.add("settingsCatalog", _catalog_policy("First"))
    second = tenant.add("settingsCatalog", _catalog_policy("Second"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", first)
    tenant.delete("settingsCatalog", second)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    plan = h.service.preview(tenant_id=TENANT, run_id=run.id)
    done_position = next(p for p, i in enumerate(plan.items) if i.display_name == "First")
    assert (await h.apply(run, planned, done_position)).status == "succeeded"

    ended = h.service.finish(tenant_id=TENANT, run_id=run.id, failure=None)
    outcomes = {o.display_name: o for o in h.outcomes(run).values()}
    assert (outcomes["First"].action, outcomes["First"].status) == ("created", "succeeded")
    assert (outcomes["Second"].action, outcomes["Second"].status) == ("failed", "failed")
    assert outcomes["Second"].error is not None
    assert outcomes["Second"].error.code == "item-not-restored"
    assert ended.status == RunStatus.PARTIAL
    # Finishing again changes nothing.
    assert h.service.finish(tenant_id=TENANT, run_id=run.id, failure=None) == ended


async def test_a_cancelled_restore_records_the_rest_as_skipped(h: Harness) -> None:
    tenant = h.tenant()
    first = tenant.add("settingsCatalog", _catalog_policy("First"))
    second = tenant.add("settingsCatalog", _catalog_policy("Second"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", first)
    tenant.delete("settingsCatalog", second)

    run = await h.start(backup_set, execute=True)
    planned = await h.service.plan(tenant_id=TENANT, run_id=run.id)
    plan = h.service.preview(tenant_id=TENANT, run_id=run.id)
    done_position = next(p for p, i in enumerate(plan.items) if i.display_name == "First")
    await h.apply(run, planned, done_position)

    ended = h.service.settle_cancelled(tenant_id=TENANT, run_id=run.id)
    assert ended.status == RunStatus.CANCELLED
    outcomes = {o.display_name: o for o in h.outcomes(run).values()}
    assert outcomes["First"].status == "succeeded"
    assert (outcomes["Second"].action, outcomes["Second"].status, outcomes["Second"].error) == (
        "skipped",
        "skipped",
        None,
    )
    assert len(tenant.named("settingsCatalog", "Second")) == 0


async def test_a_failed_write_fails_the_item_with_a_safe_error_and_the_run_is_partial(h: Harness) -> None:
    tenant = h.tenant()
    first = tenant.add("settingsCatalog", _catalog_policy("First"))
    second = tenant.add("deviceConfiguration", _device_config("Second"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", first)
    tenant.edit("deviceConfiguration", second, passwordRequired=False)
    h.graph.fail_next(
        "PATCH",
        f"/deviceConfigurations/{second}",
        GraphBadRequest("the request was refused", status_code=400, graph_code="BadRequest"),
    )

    run, _ = await h.execute(backup_set)
    assert run.status == RunStatus.PARTIAL
    outcomes = {o.display_name: o for o in h.outcomes(run).values()}
    assert outcomes["First"].status == "succeeded"
    assert outcomes["Second"].status == "failed"
    assert outcomes["Second"].error is not None
    assert outcomes["Second"].error.code == "graph-bad-request"
    assert tenant.objects["deviceConfiguration"][second]["passwordRequired"] is False
    failed_audit = [e for e in h.audit_events(run) if e.object_id == second]
    assert failed_audit == []


# ----------------------------------------------------------------------------------- rerun


async def test_a_rerun_restores_only_the_items_that_failed(h: Harness) -> None:
    tenant = h.tenant()
    first = tenant.add("settingsCatalog", _catalog_policy("First"))
    second = tenant.add("deviceConfiguration", _device_config("Second"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", first)
    tenant.edit("deviceConfiguration", second, passwordRequired=False)
    h.graph.fail_next(
        "PATCH",
        f"/deviceConfigurations/{second}",
        GraphBadRequest("the request was refused", status_code=400),
    )
    run, _ = await h.execute(backup_set)
    assert run.status == RunStatus.PARTIAL

    h.clock.advance(seconds=30)
    started = await h.service.rerun(principal=h.principal, tenant_id=TENANT, run=run)
    rerun = started.run
    assert rerun.id != run.id
    assert rerun.scope["itemIds"] == [capture_item_id("deviceConfiguration", second)]
    assert rerun.scope["backupSetId"] == backup_set.id
    planned = await h.service.plan(tenant_id=TENANT, run_id=rerun.id)
    plan = h.service.preview(tenant_id=TENANT, run_id=rerun.id)
    assert [(i.display_name, i.action) for i in plan.items] == [("Second", "update")]
    for stage in planned.stages:
        for position in stage.positions:
            await h.apply(rerun, planned, position, assignments=stage.stage == ASSIGNMENTS_STAGE)
    ended = h.service.finish(tenant_id=TENANT, run_id=rerun.id, failure=None)
    assert ended.status == RunStatus.SUCCEEDED
    assert tenant.objects["deviceConfiguration"][second]["passwordRequired"] is True
    assert len(tenant.named("settingsCatalog", "First")) == 1


async def test_there_is_nothing_to_rerun_when_nothing_failed(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add("settingsCatalog", _catalog_policy("Same"))
    backup_set = await h.backup()
    run, _ = await h.execute(backup_set)
    with pytest.raises(Conflict) as raised:
        await h.service.rerun(principal=h.principal, tenant_id=TENANT, run=run)
    assert raised.value.instance_code == "nothing-to-rerun"


# --------------------------------------------------------------------------- preview reuse


async def test_an_identical_preview_reuses_the_plan_while_set_and_listing_are_unchanged(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    tenant.add("settingsCatalog", _catalog_policy("Same"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)

    reads_before = len(h.graph.sent)
    first, first_plan = await h.preview(backup_set)
    assert [r.path for r in h.graph.sent[reads_before:] if r.path.count("/") > 3]
    reads_before = len(h.graph.sent)
    second, second_plan = await h.preview(backup_set)
    assert second.id != first.id
    first_record = h.restores.get_plan(tenant_id=TENANT, run_id=first.id)
    second_record = h.restores.get_plan(tenant_id=TENANT, run_id=second.id)
    assert first_record is not None
    assert second_record is not None
    assert second_record.plan_hash == first_record.plan_hash
    # The reused plan is served as the new run's.
    assert second_plan.run_id == second.id
    assert second_plan.items == first_plan.items
    # Only the listings were read again, no object in full.
    item_reads = [r.path for r in h.graph.sent[reads_before:] if r.path.count("/") > 3]
    assert item_reads == []


async def test_a_preview_plans_again_when_the_tenant_listing_changed(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    backup_set = await h.backup()

    first, first_plan = await h.preview(backup_set)
    assert [i.action for i in first_plan.items] == ["unchanged"]
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    second, second_plan = await h.preview(backup_set)
    first_record = h.restores.get_plan(tenant_id=TENANT, run_id=first.id)
    second_record = h.restores.get_plan(tenant_id=TENANT, run_id=second.id)
    assert first_record is not None
    assert second_record is not None
    assert second_record.plan_hash != first_record.plan_hash
    assert [i.action for i in second_plan.items] == ["update"]


async def test_a_preview_with_other_options_is_not_reused(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup()
    first, _ = await h.preview(backup_set)
    second, plan = await h.preview(backup_set, options={"includeAssignments": False})
    first_record = h.restores.get_plan(tenant_id=TENANT, run_id=first.id)
    second_record = h.restores.get_plan(tenant_id=TENANT, run_id=second.id)
    assert first_record is not None
    assert second_record is not None
    assert first_record.request_key != second_record.request_key
    assert plan.include_assignments is False


# ---------------------------------------------------------------------------- cross tenant


async def test_a_cross_tenant_restore_maps_scope_tags_filters_and_groups(h: Harness) -> None:
    source = h.tenant(SOURCE)
    source.add_group("Sales", GROUP)
    tag = source.add("scopeTag", {"displayName": "Paris", "description": "", "isBuiltIn": False})
    source_filter = source.add(
        "assignmentFilter",
        {
            "displayName": "Corp devices",
            "platform": "windows10AndLater",
            "rule": '(device.deviceOwnership -eq "Corporate")',
        },
    )
    assignment = {
        "target": {
            "@odata.type": "#microsoft.graph.groupAssignmentTarget",
            "groupId": GROUP,
            "deviceAndAppManagementAssignmentFilterId": source_filter,
            "deviceAndAppManagementAssignmentFilterType": "include",
        }
    }
    unmapped_group = "cccccccc-0000-4000-8000-000000000009"
    source.add_group("Nobody there", unmapped_group)
    source.add(
        "settingsCatalog",
        _catalog_policy(
            "Baseline", tags=["0", tag], assignments=[assignment, _group_assignment(unmapped_group)]
        ),
    )
    backup_set = await h.backup(SOURCE)
    target = h.tenant(TENANT)
    target.add_group("Sales", TARGET_GROUP)

    _, plan = await h.preview(backup_set, sourceTenantId=SOURCE, options={"includeAssignments": True})
    items = _by_name(plan)
    assert {name: i.action for name, i in items.items()} == {
        "Paris": "create",
        "Corp devices": "create",
        "Baseline": "create",
    }
    assert items["Baseline"].assignments.action == "replace"
    assert items["Baseline"].assignments.unmapped == [f"group:{unmapped_group}"]
    assert h.graph.writes() == []

    _run, _ = await h.execute(backup_set, sourceTenantId=SOURCE, options={"includeAssignments": True})
    [new_tag] = target.named("scopeTag", "Paris")
    [new_filter] = target.named("assignmentFilter", "Corp devices")
    [policy] = target.named("settingsCatalog", "Baseline")
    assert new_tag["id"] != tag
    assert new_filter["id"] != source_filter
    assert sorted(policy["roleScopeTagIds"]) == sorted(["0", new_tag["id"]])
    assert [a["target"] for a in policy["assignments"]] == [
        {
            "@odata.type": "#microsoft.graph.groupAssignmentTarget",
            "groupId": TARGET_GROUP,
            "deviceAndAppManagementAssignmentFilterId": new_filter["id"],
            "deviceAndAppManagementAssignmentFilterType": "include",
        }
    ]
    # Foundations went first: the tag and the filter exist before the policy that names them.
    posts = [r.path for r in h.graph.writes(TENANT) if r.method == "POST" and r.path.count("/") == 3]
    assert posts == [
        "/beta/deviceManagement/roleScopeTags",
        "/beta/deviceManagement/assignmentFilters",
        "/beta/deviceManagement/configurationPolicies",
    ]
    assert h.graph.writes(SOURCE) == []


async def test_a_cross_tenant_restore_leaves_assignments_out_by_default(h: Harness) -> None:
    source = h.tenant(SOURCE)
    source.add_group("Sales", GROUP)
    source.add("settingsCatalog", _catalog_policy("Baseline", assignments=[_group_assignment()]))
    backup_set = await h.backup(SOURCE)
    h.tenant(TENANT).add_group("Sales", TARGET_GROUP)

    _run, planned = await h.execute(backup_set, sourceTenantId=SOURCE)
    assert [s.stage for s in planned.stages if s.stage == ASSIGNMENTS_STAGE] == []
    [policy] = h.tenant(TENANT).named("settingsCatalog", "Baseline")
    assert policy.get("assignments") in (None, [])
    assert not any(r.path.endswith("/assign") for r in h.graph.writes())


# ------------------------------------------------------------------------- assignment modes


async def test_merge_keeps_the_targets_assignments_and_replace_drops_them(h: Harness) -> None:
    tenant = h.tenant()
    other = "aaaaaaaa-0000-4000-8000-000000000002"
    tenant.add_group("Sales", GROUP)
    tenant.add_group("Support", other)
    policy = tenant.add("settingsCatalog", _catalog_policy("Baseline", assignments=[_group_assignment()]))
    backup_set = await h.backup()
    tenant.objects["settingsCatalog"][policy]["assignments"] = [dict(_group_assignment(other), id="x")]

    _, plan = await h.preview(backup_set, options={"assignmentMode": "merge"})
    assert plan.items[0].action == "unchanged"
    assert plan.items[0].assignments.action == "merge"
    await h.execute(backup_set, options={"assignmentMode": "merge"})
    groups = sorted(a["target"]["groupId"] for a in tenant.objects["settingsCatalog"][policy]["assignments"])
    assert groups == sorted([GROUP, other])

    await h.execute(backup_set, options={"assignmentMode": "replace"})
    groups = [a["target"]["groupId"] for a in tenant.objects["settingsCatalog"][policy]["assignments"]]
    assert groups == [GROUP]


# ------------------------------------------------------------------------------ previewRunId


async def test_an_execution_of_a_preview_turns_items_changed_since_into_conflicts(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    later = tenant.add("deviceConfiguration", _device_config("Changed later"))
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    tenant.delete("settingsCatalog", deleted)
    preview, _ = await h.preview(backup_set)
    tenant.edit("deviceConfiguration", later, passwordRequired=False)

    run, _ = await h.execute(backup_set, previewRunId=preview.id)
    outcomes = {o.display_name: o for o in h.outcomes(run).values()}
    assert (outcomes["Edited"].action, outcomes["Deleted"].action) == ("updated", "created")
    assert outcomes["Changed later"].status == "skipped"
    assert outcomes["Changed later"].error is not None
    assert outcomes["Changed later"].error.code == "restore-conflict"
    assert tenant.objects["deviceConfiguration"][later]["passwordRequired"] is False


async def test_only_a_finished_preview_of_the_same_set_can_be_executed(h: Harness) -> None:
    tenant = h.tenant()
    tenant.add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup()
    other_set = await h.backup()
    preview, _ = await h.preview(backup_set)
    with pytest.raises(Conflict) as raised:
        await h.start(other_set, execute=True, previewRunId=preview.id)
    assert raised.value.instance_code == "preview-not-usable"
    with pytest.raises(InvalidRequest) as missing:
        await h.start(backup_set, execute=True, previewRunId=new_run_id(h.clock()))
    assert missing.value.instance_code == "preview-not-found"


# ---------------------------------------------------------------------------------- start


async def test_a_restore_names_only_items_of_the_set(h: Harness) -> None:
    h.tenant().add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup()
    with pytest.raises(InvalidRequest) as raised:
        await h.start(backup_set, execute=False, itemIds=["settingsCatalog:not-in-the-set"])
    assert raised.value.instance_code == "unknown-item-ids"


async def test_a_set_still_being_captured_cannot_be_restored(h: Harness) -> None:
    h.tenant().add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup()
    h.sets.put_set(backup_set.model_copy(update={"status": "capturing"}))
    with pytest.raises(Conflict) as raised:
        await h.start(backup_set, execute=True)
    assert raised.value.instance_code == "backup-set-not-ready"


async def test_a_set_of_a_tenant_the_caller_cannot_read_is_not_found(h: Harness) -> None:
    h.tenant(SOURCE).add("deviceConfiguration", _device_config("Same"))
    backup_set = await h.backup(SOURCE)
    h.readable = False
    with pytest.raises(BackupSetNotFound):
        await h.start(backup_set, execute=False, sourceTenantId=SOURCE)


async def test_an_object_deleted_again_after_a_restore_is_created_again(h: Harness) -> None:
    tenant = h.tenant()
    deleted = tenant.add("settingsCatalog", _catalog_policy("Deleted"))
    backup_set = await h.backup()
    tenant.delete("settingsCatalog", deleted)
    await h.execute(backup_set)
    [first] = tenant.named("settingsCatalog", "Deleted")
    tenant.delete("settingsCatalog", first["id"])

    _, plan = await h.preview(backup_set)
    assert [i.action for i in plan.items] == ["create"]
    run, _ = await h.execute(backup_set)
    [again] = tenant.named("settingsCatalog", "Deleted")
    assert again["id"] != first["id"]
    [outcome] = h.outcomes(run).values()
    assert (outcome.action, outcome.target_id) == ("created", again["id"])


async def test_a_cross_tenant_restore_never_lands_on_an_unrelated_scope_tag_with_the_same_id(
        h: Harness) -> None:
    source = h.tenant(SOURCE)
    tag = source.add("scopeTag", {"displayName": "Paris", "description": "", "isBuiltIn": False})
    policy = source.add("settingsCatalog", _catalog_policy("Baseline", tags=["0", tag]))
    backup_set = await h.backup(SOURCE)
    target = h.tenant(TENANT)
    # Scope tag ids are small integers: the target's tag with the same id is another tag.
    target.add("scopeTag", {"displayName": "London", "description": "", "isBuiltIn": False}, object_id=tag)
    paris = target.add("scopeTag", {"displayName": "Paris", "description": "", "isBuiltIn": False})

    only_policy = [capture_item_id("settingsCatalog", policy)]
    _, plan = await h.preview(backup_set, sourceTenantId=SOURCE, itemIds=only_policy)
    await h.execute(backup_set, sourceTenantId=SOURCE, itemIds=only_policy)
    [restored] = target.named("settingsCatalog", "Baseline")
    assert tag not in restored["roleScopeTagIds"]
    # Mapped by name as groups are, or left out and reported: never the other tenant's tag "London".
    reported = any(tag in text for text in plan.items[0].warnings + plan.items[0].assignments.unmapped)
    assert sorted(restored["roleScopeTagIds"]) == ["0", paris] or reported


async def test_an_update_audits_before_and_after_hashes_of_the_same_kind(h: Harness) -> None:
    tenant = h.tenant()
    edited = tenant.add("deviceConfiguration", _device_config("Edited"))
    backup_set = await h.backup()
    tenant.edit("deviceConfiguration", edited, passwordRequired=False)
    client = await h.graph.client(TENANT)
    unwritable = unrestorable_properties(CATALOG["deviceConfiguration"])
    before = normal_hash((await PolicyReader(client).read_policy("deviceConfiguration", edited)).body,
                         RESTORE_NORMAL_FORM, unwritable=unwritable)

    run, _ = await h.execute(backup_set)
    after = normal_hash((await PolicyReader(client).read_policy("deviceConfiguration", edited)).body,
                        RESTORE_NORMAL_FORM, unwritable=unwritable)
    [update] = [e for e in h.audit_events(run) if e.action == AuditAction.RESTORE_UPDATE]
    # Both hashes describe the object the same way, so the trail can be followed from write to write.
    assert (update.before_hash, update.after_hash) == (before, after)


async def test_the_fake_graph_refuses_writes_on_a_read_only_client_before_sending(h: Harness) -> None:
    # What the preview tests rely on: a planner that tried to write would be stopped and seen.
    client = await h.graph.client(TENANT)
    with pytest.raises(GraphWriteRefused):
        await client.post("/beta/deviceManagement/configurationPolicies", json_body={"name": "x"})
    assert h.graph.writes() == []
    assert [(r.method, r.path) for r in h.graph.refused] == [
        ("POST", "/beta/deviceManagement/configurationPolicies")]
    assert h.tenant().objects["settingsCatalog"] == {}
