"""Restore previews and restore executions: one planner, a read-only preview, an ordered idempotent apply.

A ``restore.preview`` run plans and stops: the plan (a blob) lists per item what a restore would do, and the
run's items say ``planned``. A ``restore.execute`` run plans the same way (or takes a preview's plan and
turns items whose target changed since into conflicts), then applies it in stages: foundations first, each
restore order in turn, assignments last (``orchestrators/restore.py``).

Idempotence of creates rests on the ledger of the tenant pair: before a create the intent is recorded; once
Graph answered, the new id. An activity that runs again and finds an intent without an id first looks for
the object by display name (the earlier attempt may have created it and died before recording it), so a
restore never creates an object twice, and a later restore of the same set finds every target through the
ledger and changes nothing.

Planning and previews use a read-only Graph client: a write is refused before it leaves the process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.domain import (
    BackupSet,
    BackupSetItem,
    ErrorInfo,
    ItemOutcome,
    Principal,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    every_page,
)
from shared.domain.audit import AuditAction, AuditActor, AuditEvent, new_audit_id
from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS
from shared.domain.normalise import canonical_text
from shared.domain.restore import (
    MAX_CHANGES_PER_ITEM,
    AssignmentPlan,
    IdMaps,
    LedgerEntry,
    PlanItem,
    PlanRecord,
    RestoreApplyInput,
    RestoreApplyResult,
    RestorePlan,
    RestorePlanResult,
    RestoreRequest,
    assignment_key,
    choose_target,
    comparable,
    diff,
    map_assignments,
    normal_hash,
    remap_references,
    restore_batch_instance,
    restore_batches,
    restore_normal_form,
    restore_scope,
    stages_of,
    summarise,
)
from shared.errors import Conflict, InvalidRequest, NotFound, RunNotFound
from shared.graph.catalog import CATALOG, PolicyType
from shared.graph.errors import (
    GraphError,
    GraphNotFound,
)
from shared.graph.reader import PolicyReader
from shared.graph.retry import TRANSIENT_ERRORS, wait_before_retry
from shared.graph.tenants import GraphPort
from shared.graph.writer import PolicyWriter, app_category_names, unrestorable_properties
from shared.ports import AuditRepository, BackupSetRepository, BlobStore, RestoreRepository, RunRepository
from shared.services.backupsets import BackupSetNotFound
from shared.services.capture import POLICY_NORMAL_FORM, item_error_of
from shared.services.runs import RunService, StartResult

__all__ = ["RestoreService"]

logger = logging.getLogger(__name__)

RESTORE_NORMAL_FORM = restore_normal_form(POLICY_NORMAL_FORM)
_READ_PAGE = 1000
# Apps are filed under app categories by name (``categories/$ref``).
_APP_TYPE = "mobileApp"
_CATEGORY_TYPE = "mobileAppCategory"
# Plans held per process, by content hash (an execution's item activities read the same plan).
_PLAN_CACHE_SIZE = 8
_BUILTIN_SCOPE_TAG = "0"
_NO_FILTER = "00000000-0000-0000-0000-000000000000"
_FILTER_ID = "deviceAndAppManagementAssignmentFilterId"


class RestoreService:
    """Starts, plans, applies and finishes restore runs."""

    def __init__(self, *, runs: RunService, run_rows: RunRepository, sets: BackupSetRepository,
                 restores: RestoreRepository, blobs: BlobStore, audit: AuditRepository, graph: GraphPort,
                 can_read: Callable[[Principal, str], bool], clock: Callable[[], datetime],
                 retry_wait: float = DEFAULT_RETRY_DELAY_SECONDS) -> None:
        """Create the service.

        Args:
            runs: the run service.
            run_rows: the run repository, to read a run without counting its items (every item activity
                checks that its run has not ended).
            sets: backup sets (the source of a restore).
            restores: ledger and plan records.
            blobs: captured bodies and plans.
            audit: the audit trail.
            graph: managed tenants' Graph clients.
            can_read: whether a caller may read a tenant (a cross-tenant restore reads the source's set).
            clock: returns the current aware UTC time.
            retry_wait: seconds a plan or a write waits before it is tried again after a transient Graph
                failure that named no wait.
        """
        self._runs = runs
        self._run_rows = run_rows
        self._sets = sets
        self._restores = restores
        self._blobs = blobs
        self._audit = audit
        self._graph = graph
        self._can_read = can_read
        self._clock = clock
        self._retry_wait = retry_wait
        self._plans: OrderedDict[tuple[str, str], RestorePlan] = OrderedDict()
        # (tenant, run, stage) -> the id maps its items write with; see :meth:`_maps`.
        self._maps_by_stage: OrderedDict[tuple[str, str, int], IdMaps] = OrderedDict()

    # ----------------------------------------------------------------------------------- start

    async def start(self, *, principal: Principal, tenant_id: str, request: RestoreRequest, execute: bool,
                    idempotency_key: str | None) -> StartResult:
        """Claim a preview or a restore run (or return the equivalent one).

        Raises:
            InvalidRequest: malformed ids, item ids not in the set, or a preview that cannot be executed.
            BackupSetNotFound: no such set in the source tenant (or the caller may not read it).
            Conflict: the set is still being captured (``backup-set-not-ready``), or the preview is not a
                finished preview of this set (``preview-not-usable``).
            RestoreAlreadyActive: another restore runs on the tenant.
        """
        try:
            scope = restore_scope(request, target_tenant_id=tenant_id, execute=execute)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid-restore-request") from None
        source = scope["sourceTenantId"]
        if source != tenant_id.lower() and not self._can_read(principal, source):
            raise BackupSetNotFound(f"backup set {request.backup_set_id[:64]} not found")
        backup_set = await asyncio.to_thread(self._ready_set, source, request.backup_set_id)
        if scope["itemIds"] is not None:
            known = {item.item_id for item in await asyncio.to_thread(self._set_items, backup_set)}
            unknown = [i for i in scope["itemIds"] if i not in known]
            if unknown:
                raise InvalidRequest(f"{len(unknown)} item id(s) are not in backup set {backup_set.id}, "
                                     f"e.g. {unknown[0][:120]}", code="unknown-item-ids")
        if request.preview_run_id is not None:
            await asyncio.to_thread(self._usable_preview, tenant_id, request.preview_run_id, backup_set.id)
        kind = RunKind.RESTORE_EXECUTE if execute else RunKind.RESTORE_PREVIEW
        return await self._runs.start(principal=principal, tenant_id=tenant_id, kind=kind,
                                      target=RunTarget(backup_set_id=backup_set.id), scope=scope,
                                      idempotency_key=idempotency_key)

    def _ready_set(self, source_tenant_id: str, backup_set_id: str) -> BackupSet:
        backup_set = self._sets.get_set(tenant_id=source_tenant_id, backup_set_id=backup_set_id) \
            if backup_set_id.startswith("bs_") else None
        if backup_set is None:
            raise BackupSetNotFound(f"backup set {backup_set_id[:64]} not found")
        if backup_set.status == "capturing":
            raise Conflict(f"backup set {backup_set.id} is still being captured; restore it once it finished",
                           code="backup-set-not-ready")
        return backup_set

    def _usable_preview(self, tenant_id: str, preview_run_id: str, backup_set_id: str) -> None:
        try:
            preview = self._runs.get(tenant_id=tenant_id, run_id=preview_run_id)
        except RunNotFound:
            raise InvalidRequest(f"preview run {preview_run_id} not found in this tenant",
                                 code="preview-not-found") from None
        record = self._restores.get_plan(tenant_id=tenant_id, run_id=preview_run_id)
        if (preview.kind != RunKind.RESTORE_PREVIEW or preview.status != RunStatus.SUCCEEDED or record is None
                or record.backup_set_id != backup_set_id):
            raise Conflict(f"run {preview_run_id} is not a finished preview of backup set {backup_set_id}",
                           code="preview-not-usable")

    # ------------------------------------------------------------------------------------ plan

    async def plan(self, *, tenant_id: str, run_id: str) -> RestorePlanResult:
        """Plan the run (or return its stored plan): item rows for a preview, stages for an execution."""
        run = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=run_id)
        scope = run.scope
        execute = run.kind == RunKind.RESTORE_EXECUTE
        stored = await asyncio.to_thread(self._restores.get_plan, tenant_id=tenant_id, run_id=run_id)
        if stored is not None:
            plan = await asyncio.to_thread(self.load_plan, tenant_id, stored.plan_hash)
            return self._planned(stored.plan_hash, plan, execute)
        try:
            plan, plan_hash = await self._build(run)
        except TRANSIENT_ERRORS as exc:
            return RestorePlanResult(status="retry", error=item_error_of(exc),
                                     retry_after_seconds=wait_before_retry(exc, self._retry_wait))
        except (GraphError, NotFound) as exc:
            logger.warning("restore plan failed run_id=%s error_code=%s", run_id,
                           getattr(exc, "instance_code", type(exc).__name__))
            return RestorePlanResult(status="failed", error=item_error_of(exc))
        if scope.get("previewRunId"):
            plan = await self._hold_to_preview(tenant_id, str(scope["previewRunId"]), plan)
            plan_hash = ""
        if not plan_hash:
            text = plan.model_dump_json(by_alias=True).encode("utf-8")
            plan_hash, _, _ = await asyncio.to_thread(self._blobs.put_json, tenant_id, text)
        record = PlanRecord(tenant_id=tenant_id, run_id=run_id, backup_set_id=plan.backup_set_id,
                            plan_hash=plan_hash, summary=plan.summary, item_count=len(plan.items),
                            set_fingerprint=plan.set_fingerprint, live_fingerprint=plan.live_fingerprint,
                            request_key="" if execute else _request_key(scope), created_at=self._clock())
        if not execute:
            await asyncio.to_thread(self._record_planned, run, plan)
        await asyncio.to_thread(self._restores.put_plan, record)
        await asyncio.to_thread(self._runs.mark_running, tenant_id=tenant_id, run_id=run_id,
                                expected_items=len(plan.items))
        logger.info("restore planned run_id=%s items=%d create=%d update=%d conflict=%d", run_id,
                    len(plan.items), plan.summary.create, plan.summary.update, plan.summary.conflict)
        return self._planned(plan_hash, plan, execute)

    def _planned(self, plan_hash: str, plan: RestorePlan, execute: bool) -> RestorePlanResult:
        order = {key: policy_type.restore_order for key, policy_type in CATALOG.items()}
        family = {key: policy_type.throttle_family for key, policy_type in CATALOG.items()}
        stages = stages_of(plan.items, restore_order=order, family=family,
                           with_assignments=plan.include_assignments) if execute else []
        return RestorePlanResult(status="planned", plan_hash=plan_hash, item_count=len(plan.items),
                                 stages=stages)

    async def _build(self, run: RunRecord) -> tuple[RestorePlan, str]:
        """The run's plan, and the hash of a stored plan it reuses (``""`` when it is new).

        A preview reuses the newest plan of the same request when neither the set nor the tenant's listing
        of the types changed since (same objects, same listed content): then every read of a full object
        would give what the plan already holds. Changes that the listing does not show (assignments only)
        are not seen by a reused plan; an execution never reuses one.
        """
        scope = run.scope
        target = run.tenant_id
        source = str(scope["sourceTenantId"])
        same_tenant = source == target.lower()
        options = scope["options"]
        include_assignments = bool(options["includeAssignments"])
        backup_set = await asyncio.to_thread(self._ready_set, source, str(scope["backupSetId"]))
        wanted = set(scope["itemIds"]) if scope.get("itemIds") is not None else None
        items = [i for i in await asyncio.to_thread(self._set_items, backup_set)
                 if i.status == "captured" and i.content_hash and (wanted is None or i.item_id in wanted)]
        client = await self._graph.client(target)
        reader = PolicyReader(client, include_assignments=True)
        ledger = {(e.policy_type, e.source_id): e for e in await asyncio.to_thread(
            self._restores.list_ledger, target_tenant_id=target, source_tenant_id=source)}
        live: dict[str, tuple[set[str], dict[str, list[str]]]] = {}
        listing: list[str] = []
        for type_key in sorted({i.policy_type for i in items}):
            summaries = await reader.list_policies(type_key)
            names: dict[str, list[str]] = {}
            for summary in summaries:
                names.setdefault(summary.name, []).append(summary.id)
            live[type_key] = ({s.id for s in summaries}, names)
            listing.extend(canonical_text({"type": type_key, "object": s.listed}) for s in summaries)
        live_fingerprint = hashlib.sha256("\n".join(sorted(listing)).encode("utf-8")).hexdigest()
        set_fingerprint = _fingerprint(backup_set)
        if run.kind == RunKind.RESTORE_PREVIEW:
            previous = await asyncio.to_thread(self._restores.latest_preview, tenant_id=target,
                                               request_key=_request_key(scope))
            if previous is not None and (previous.set_fingerprint, previous.live_fingerprint) == (
                    set_fingerprint, live_fingerprint):
                reused = await asyncio.to_thread(self.load_plan, target, previous.plan_hash)
                logger.info("restore plan reused run_id=%s from_run_id=%s", run.id, previous.run_id)
                return reused, previous.plan_hash
        bodies = {i.item_id: json.loads(await asyncio.to_thread(self._blobs.get_json, source,
                                                                i.content_hash or "")) for i in items}
        groups = await self._group_map(source, target, same_tenant, bodies.values(),
                                       options.get("groupMapping") or {})
        # Filters and scope tags restored by this plan map to their targets; others must exist already.
        foundation_targets = await self._foundation_targets(items, bodies, live, ledger, same_tenant)
        scope_tags: dict[str, str] = {}
        if not same_tenant:
            scope_tags = await self._scope_tag_map(source, reader, bodies.values())
            foundation_targets["scope_tags"] = {**scope_tags, **foundation_targets["scope_tags"]}
        definitions, missing = ({}, {}) if same_tenant else await self._definition_map(client, bodies)
        app_categories = await self._app_category_names(items, bodies, live, reader)
        planned: list[PlanItem] = []
        for item in items:
            planned_item = await self._plan_item(
                item, bodies[item.item_id], live, ledger, same_tenant, reader,
                IdMaps(groups=groups, identity_fallback=same_tenant, objects=definitions,
                       **foundation_targets),
                include_assignments, options["assignmentMode"])
            lost_tags = sorted({str(t) for t in _scope_tags_of(bodies[item.item_id])}
                               - set(foundation_targets["scope_tags"])) if not same_tenant else []
            if lost_tags:
                planned_item = planned_item.model_copy(update={"warnings": [
                    *planned_item.warnings,
                    "scope tags with no counterpart of the same name in the tenant are left out: "
                    + ", ".join(lost_tags)]})
            filed = app_category_names(bodies[item.item_id].get("categories"))
            lost_categories = sorted(filed - app_categories) \
                if item.policy_type == _APP_TYPE and planned_item.action in ("create", "update") else []
            if lost_categories:
                planned_item = planned_item.model_copy(update={"warnings": [
                    *planned_item.warnings,
                    "app categories with no counterpart of the same name in the tenant are left out: "
                    + ", ".join(lost_categories)]})
            if missing.get(item.item_id) and planned_item.action in ("create", "update"):
                planned_item = planned_item.model_copy(update={
                    "action": "conflict",
                    "conflict": "administrative template definitions of this policy are not in the tenant "
                                "(import their ADMX files first): " + ", ".join(missing[item.item_id])})
            planned.append(planned_item)
        return RestorePlan(run_id=run.id, backup_set_id=backup_set.id, source_tenant_id=source,
                           generated_at=self._clock(), summary=summarise(planned),
                           include_assignments=include_assignments, assignment_mode=options["assignmentMode"],
                           items=planned, group_map=groups, definition_map=definitions,
                           scope_tag_map=scope_tags,
                           set_fingerprint=set_fingerprint,
                           live_fingerprint=live_fingerprint), ""

    @staticmethod
    async def _app_category_names(items: Sequence[BackupSetItem], bodies: Mapping[str, Mapping[str, Any]],
                                  live: Mapping[str, tuple[set[str], dict[str, list[str]]]],
                                  reader: PolicyReader) -> set[str]:
        """The app categories an app may be filed under once the plan ran: the tenant's and the plan's own.

        The writer files apps by category name (see :meth:`PolicyWriter._categories`); the tenant's
        categories are read only when the plan has apps but no categories of its own to list them.
        """
        if not any(i.policy_type == _APP_TYPE for i in items):
            return set()
        if _CATEGORY_TYPE in live:
            names = set(live[_CATEGORY_TYPE][1])
        else:
            names = {s.name for s in await reader.list_policies(_CATEGORY_TYPE)}
        return names | {str(bodies[i.item_id].get("displayName")) for i in items
                        if i.policy_type == _CATEGORY_TYPE}

    async def _plan_item(self, item: BackupSetItem, body: dict[str, Any],
                         live: Mapping[str, tuple[set[str], dict[str, list[str]]]],
                         ledger: Mapping[tuple[str, str], LedgerEntry], same_tenant: bool,
                         reader: PolicyReader,
                         maps: IdMaps, include_assignments: bool, mode: str) -> PlanItem:
        policy_type = CATALOG.get(item.policy_type)
        base = PlanItem(item_id=item.item_id, policy_type=item.policy_type, display_name=item.display_name,
                        source_id=item.source_id, action="unsupported", content_hash=item.content_hash or "",
                        stage=policy_type.restore_order if policy_type else 0)
        if policy_type is None or policy_type.backup_only is not None:
            return base.model_copy(update={"warnings": [
                policy_type.backup_only if policy_type else "the policy type is no longer in the catalog"]})
        if policy_type.is_builtin(body):
            return base.model_copy(update={"warnings": [policy_type.builtin_reason or "a built-in object"]})
        ids, names = live.get(item.policy_type, (set(), {}))
        entry = ledger.get((item.policy_type, item.source_id))
        match = choose_target(ledger_target=entry.target_id if entry else None, source_id=item.source_id,
                              same_tenant=same_tenant, live_ids=ids, live_names=names, name=item.display_name)
        if match.conflict:
            return base.model_copy(update={"action": "conflict", "conflict": match.conflict})
        if match.target_id is None:
            if policy_type.singleton or policy_type.is_default(body):
                # Tenant-wide settings and defaults exist in every tenant and are only ever updated.
                return base.model_copy(update={"warnings": ["the tenant has no such object to update, and "
                                                            "Graph does not create one"]})
            assignments = self._plan_assignments(policy_type, body, None, maps, include_assignments, mode)
            return base.model_copy(update={"action": "create", "assignments": assignments})
        current = (await reader.read_policy(item.policy_type, match.target_id)).body
        unwritable = unrestorable_properties(policy_type)
        wanted = comparable(remap_references(body, maps), RESTORE_NORMAL_FORM, unwritable=unwritable)
        have = comparable(current, RESTORE_NORMAL_FORM, unwritable=unwritable)
        changes = diff(have, wanted)
        assignments = self._plan_assignments(policy_type, body, current, maps, include_assignments, mode)
        return base.model_copy(update={
            "action": "update" if changes else "unchanged", "target_id": match.target_id,
            "changes": changes[:MAX_CHANGES_PER_ITEM], "changes_total": len(changes),
            "assignments": assignments,
            "target_hash": normal_hash(current, RESTORE_NORMAL_FORM, unwritable=unwritable)})

    @staticmethod
    def _plan_assignments(policy_type: PolicyType, body: Mapping[str, Any], current: Mapping[str, Any] | None,
                          maps: IdMaps, include: bool, mode: str) -> AssignmentPlan:
        if not include or not policy_type.can_assign(body) or not isinstance(body.get("assignments"), list):
            return AssignmentPlan(action="skip")
        mapped, unmapped = map_assignments(body["assignments"], maps)
        if not mapped and unmapped:
            # Nothing the backup assigns exists here: replacing would only remove what the target has.
            return AssignmentPlan(action="skip", unmapped=unmapped)
        if current is not None:
            have = {assignment_key(a) for a in current.get("assignments") or []}
            want = {assignment_key(a) for a in mapped}
            if want == have or (mode == "merge" and want <= have):
                return AssignmentPlan(action="unchanged", unmapped=unmapped)
        elif not mapped:
            return AssignmentPlan(action="unchanged")
        return AssignmentPlan(action="merge" if mode == "merge" else "replace", unmapped=unmapped)

    async def _foundation_targets(self, items: list[BackupSetItem], bodies: Mapping[str, dict[str, Any]],
                                  live: Mapping[str, tuple[set[str], dict[str, list[str]]]],
                                  ledger: Mapping[tuple[str, str], LedgerEntry],
                                  same_tenant: bool) -> dict[str, dict[str, str]]:
        """Source -> target ids of the scope tags and filters this plan restores (creates: placeholders)."""
        scope_tags = {_BUILTIN_SCOPE_TAG: _BUILTIN_SCOPE_TAG}
        filters: dict[str, str] = {}
        for item in items:
            if item.policy_type not in ("scopeTag", "assignmentFilter"):
                continue
            ids, names = live.get(item.policy_type, (set(), {}))
            entry = ledger.get((item.policy_type, item.source_id))
            match = choose_target(ledger_target=entry.target_id if entry else None, source_id=item.source_id,
                                  same_tenant=same_tenant, live_ids=ids, live_names=names,
                                  name=item.display_name)
            # A create's id is known only once it ran; the apply step maps it through the ledger.
            mapped = match.target_id or f"pending:{item.source_id}"
            (scope_tags if item.policy_type == "scopeTag" else filters)[item.source_id] = mapped
        if same_tenant:
            # Objects that still exist keep their ids; nothing else to map.
            for body in bodies.values():
                for tag in body.get("roleScopeTagIds") or []:
                    scope_tags.setdefault(str(tag), str(tag))
                for assignment in body.get("assignments") or []:
                    filter_id = (assignment.get("target") or {}).get(_FILTER_ID)
                    if isinstance(filter_id, str) and filter_id and filter_id != _NO_FILTER:
                        filters.setdefault(filter_id, filter_id)
        return {"scope_tags": scope_tags, "filters": filters}

    async def _group_map(self, source: str, target: str, same_tenant: bool, bodies: Any,
                         explicit: Mapping[str, str]) -> dict[str, str]:
        """Source group id -> target group id: the same id in the same tenant, else by display name."""
        referenced: set[str] = set()
        for body in bodies:
            for assignment in body.get("assignments") or []:
                group = (assignment.get("target") or {}).get("groupId")
                if isinstance(group, str) and group:
                    referenced.add(group)
        groups: dict[str, str] = {}
        if not referenced:
            return groups
        target_client = await self._graph.client(target)
        source_client = target_client if same_tenant else await self._graph.client(source)
        for group in sorted(referenced):
            if group in explicit:
                groups[group] = explicit[group]
                continue
            found = await _group(source_client, group)
            if found is None:
                continue
            if same_tenant:
                groups[group] = group
                continue
            name = found.get("displayName")
            if not isinstance(name, str) or not name:
                continue
            matches = await target_client.get_all("/v1.0/groups", params={
                "$filter": f"displayName eq '{name.replace(chr(39), chr(39) * 2)}'",
                "$select": "id,displayName"})
            exact = [m for m in matches if m.get("displayName") == name]
            if len(exact) == 1 and isinstance(exact[0].get("id"), str):
                groups[group] = exact[0]["id"]
        return groups

    async def _scope_tag_map(self, source: str, target_reader: PolicyReader, bodies: Any) -> dict[str, str]:
        """Across tenants: source -> target ids of the scope tags the set names, by display name.

        Scope tag ids are small integers in every tenant, so the same id elsewhere is another tag.
        """
        referenced = {str(t) for body in bodies for t in _scope_tags_of(body)} - {_BUILTIN_SCOPE_TAG}
        if not referenced:
            return {}
        source_tags = await PolicyReader(await self._graph.client(source)).list_policies("scopeTag")
        names = {t.id: t.name for t in source_tags if t.id in referenced}
        by_name: dict[str, list[str]] = {}
        for tag in await target_reader.list_policies("scopeTag"):
            by_name.setdefault(tag.name, []).append(tag.id)
        return {source_id: by_name[name][0] for source_id, name in names.items()
                if len(by_name.get(name, ())) == 1}

    async def _definition_map(self, client: Any, bodies: Mapping[str, dict[str, Any]]
                              ) -> tuple[dict[str, str], dict[str, list[str]]]:
        """Across tenants: source -> target ids of the GPO definitions and presentations the set uses.

        Built-in definitions have the same ids in every tenant; imported (ADMX) ones get new ids on import,
        so they are found by display name and class, and their presentations by label. A definition not
        found is reported per item (by display name), never guessed.
        """
        mapping: dict[str, str] = {}
        missing: dict[str, list[str]] = {}
        resolved: dict[str, str | None] = {}
        for item_id, body in bodies.items():
            for value in body.get("definitionValues") or []:
                definition = value.get("definition") or {}
                source_id = definition.get("id")
                if not isinstance(source_id, str):
                    continue
                if source_id not in resolved:
                    resolved[source_id] = await _target_definition(client, definition)
                    target_id = resolved[source_id]
                    if target_id is not None and target_id != source_id:
                        mapping[source_id] = target_id
                        mapping.update(await _presentation_map(client, target_id, value))
                if resolved[source_id] is None:
                    missing.setdefault(item_id, []).append(str(definition.get("displayName") or source_id))
        return mapping, missing

    async def _hold_to_preview(self, tenant_id: str, preview_run_id: str, plan: RestorePlan) -> RestorePlan:
        """Execute exactly the previewed plan: items whose target changed since the preview are conflicts."""
        record = await asyncio.to_thread(self._restores.get_plan, tenant_id=tenant_id, run_id=preview_run_id)
        if record is None:
            raise NotFound(f"preview {preview_run_id} has no plan", code="preview-not-found")
        preview = {i.item_id: i for i in (await asyncio.to_thread(self.load_plan, tenant_id,
                                                                  record.plan_hash)).items}
        held: list[PlanItem] = []
        for item in plan.items:
            before = preview.get(item.item_id)
            if before is None:
                continue
            if (before.action, before.target_id, before.target_hash) != (item.action, item.target_id,
                                                                         item.target_hash):
                item = item.model_copy(update={
                    "action": "conflict", "conflict": "the target changed since the preview; preview again"})
            held.append(item)
        return plan.model_copy(update={"items": held, "summary": summarise(held)})

    def _record_planned(self, run: RunRecord, plan: RestorePlan) -> None:
        now = self._clock()
        for item in plan.items:
            self._runs.record_batch_item(tenant_id=run.tenant_id, run_id=run.id, outcome=ItemOutcome(
                item_id=item.item_id, policy_type=item.policy_type, display_name=item.display_name,
                source_id=item.source_id, target_id=item.target_id, action="planned", status="succeeded",
                started_at=now, finished_at=now))

    # ----------------------------------------------------------------------------------- apply

    def load_plan(self, tenant_id: str, plan_hash: str) -> RestorePlan:
        """A stored plan (cached per process: plans are content-addressed, so a hit is always current)."""
        key = (tenant_id, plan_hash)
        cached = self._plans.get(key)
        if cached is not None:
            self._plans.move_to_end(key)
            return cached
        plan = RestorePlan.model_validate_json(self._blobs.get_json(tenant_id, plan_hash))
        self._plans[key] = plan
        while len(self._plans) > _PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)
        return plan

    async def apply(self, cmd: RestoreApplyInput) -> RestoreApplyResult:
        """Apply one plan item: its body in its stage, or its assignments in the last one."""
        plan = await asyncio.to_thread(self.load_plan, cmd.tenant_id, cmd.plan_hash)
        item = plan.items[cmd.position]
        started = self._clock()
        stored = await asyncio.to_thread(self._run_rows.get, tenant_id=cmd.tenant_id, run_id=cmd.run_id)
        if stored is None:
            raise RunNotFound(f"run {cmd.run_id} not found")
        run = stored.value
        if run.status.is_terminal:
            # Cancelled (or ended) while this item waited: no new write; the cancel recorded it skipped.
            return RestoreApplyResult(position=cmd.position, status="skipped")
        try:
            if cmd.assignments:
                action, target_id = await self._apply_assignments(cmd, run, plan, item)
            else:
                action, target_id = await self._apply_body(cmd, run, plan, item)
        except TRANSIENT_ERRORS as exc:
            if not cmd.final_attempt:
                retry_after = wait_before_retry(exc, self._retry_wait)
                return RestoreApplyResult(position=cmd.position, status="retry", error=item_error_of(exc),
                                          retry_after_seconds=retry_after)
            return await self._settle(cmd, item, started, "failed", None, item_error_of(exc))
        except GraphError as exc:
            return await self._settle(cmd, item, started, "failed", None, item_error_of(exc))
        if action == "skipped":
            error = ErrorInfo(code="restore-conflict" if item.action == "conflict" else "restore-unsupported",
                              message=item.conflict or "; ".join(item.warnings)
                              or "The item cannot be restored.")
            return await self._settle(cmd, item, started, "skipped", target_id, error)
        return await self._settle(cmd, item, started, action, target_id, None)

    async def _apply_body(self, cmd: RestoreApplyInput, run: RunRecord, plan: RestorePlan,
                          item: PlanItem) -> tuple[str, str | None]:
        if item.action in ("conflict", "unsupported"):
            return "skipped", item.target_id
        source = plan.source_tenant_id
        if item.action == "unchanged":
            await asyncio.to_thread(self._ledger_done, cmd, plan, item, item.target_id or "")
            return "unchanged", item.target_id
        body = remap_references(await self._backup_body(source, item), await self._maps(cmd, plan))
        client = await self._graph.client(cmd.tenant_id, writes=True)
        writer = PolicyWriter(client)
        if item.action == "update" and item.target_id:
            current = (await PolicyReader(client, include_assignments=False).read_policy(
                item.policy_type, item.target_id)).body
            await writer.update(item.policy_type, item.target_id, body, current)
            await self._audit_write(cmd, run, item, AuditAction.RESTORE_UPDATE, item.target_id,
                                    before=normal_hash(current, RESTORE_NORMAL_FORM,
                                                       unwritable=unrestorable_properties(CATALOG[item.policy_type])),
                                    after=body)
            await asyncio.to_thread(self._ledger_done, cmd, plan, item, item.target_id)
            return "updated", item.target_id
        return "created", await self._create_once(cmd, run, plan, item, body, client)

    async def _create_once(self, cmd: RestoreApplyInput, run: RunRecord, plan: RestorePlan, item: PlanItem,
                           body: dict[str, Any], client: Any) -> str:
        """Create the item's object exactly once, whatever ran before (see the module's docstring).

        The audit event is written before the ledger records the new id: an attempt that finds the id
        recorded made no write and audits nothing, and a create is never left unaudited (a crash between
        the two audits the adopted object once more rather than not at all).
        """
        entry = await asyncio.to_thread(self._restores.get_ledger, target_tenant_id=cmd.tenant_id,
                                        source_tenant_id=plan.source_tenant_id, policy_type=item.policy_type,
                                        source_id=item.source_id)
        if entry is not None and entry.run_id != cmd.run_id:
            # Written by an earlier restore: its object is gone, or this plan would not create it.
            entry = None
        if entry is not None and entry.state == "done" and entry.target_id:
            return entry.target_id
        if entry is not None:
            reader = PolicyReader(client, include_assignments=False)
            summaries = await reader.list_policies(item.policy_type)
            adopted = [s.id for s in summaries if s.name == item.display_name]
            if len(adopted) == 1:
                # The create got through, but its answer was lost or a part written after it (settings,
                # files, category references) failed: bring what was made to the backup before recording it.
                made = (await reader.read_policy(item.policy_type, adopted[0])).body
                await PolicyWriter(client).update(item.policy_type, adopted[0], body, made)
                await self._audit_write(cmd, run, item, AuditAction.RESTORE_CREATE, adopted[0], before=None,
                                        after=body)
                await asyncio.to_thread(self._ledger_done, cmd, plan, item, adopted[0])
                return adopted[0]
        await asyncio.to_thread(self._restores.put_ledger, LedgerEntry(
            target_tenant_id=cmd.tenant_id, source_tenant_id=plan.source_tenant_id,
            policy_type=item.policy_type, source_id=item.source_id, state="intent", run_id=cmd.run_id,
            updated_at=self._clock()))
        target_id = await PolicyWriter(client).create(item.policy_type, body)
        await self._audit_write(cmd, run, item, AuditAction.RESTORE_CREATE, target_id, before=None,
                                after=body)
        await asyncio.to_thread(self._ledger_done, cmd, plan, item, target_id)
        return target_id

    def _ledger_done(self, cmd: RestoreApplyInput, plan: RestorePlan, item: PlanItem, target_id: str) -> None:
        if not target_id:
            return
        self._restores.put_ledger(LedgerEntry(
            target_tenant_id=cmd.tenant_id, source_tenant_id=plan.source_tenant_id,
            policy_type=item.policy_type, source_id=item.source_id, target_id=target_id, state="done",
            run_id=cmd.run_id, updated_at=self._clock()))

    async def _apply_assignments(self, cmd: RestoreApplyInput, run: RunRecord, plan: RestorePlan,
                                 item: PlanItem) -> tuple[str, str | None]:
        entry = await asyncio.to_thread(self._restores.get_ledger, target_tenant_id=cmd.tenant_id,
                                        source_tenant_id=plan.source_tenant_id, policy_type=item.policy_type,
                                        source_id=item.source_id)
        target_id = entry.target_id if entry is not None and entry.state == "done" else None
        if target_id is None:
            # The body was not written (its failure is recorded): nothing to assign to.
            return "skip-assignments", None
        body = await self._backup_body(plan.source_tenant_id, item)
        mapped, _ = map_assignments(body.get("assignments") or [], await self._maps(cmd, plan))
        client = await self._graph.client(cmd.tenant_id, writes=True)
        odata_type = _odata_type(body)
        current: list[dict[str, Any]] = []
        policy_type = CATALOG[item.policy_type]
        one_per_request = policy_type.assignments is not None and policy_type.assignments.one_per_request
        if item.assignments.action == "merge" or one_per_request:
            current = (await PolicyReader(client, include_assignments=True).read_policy(
                item.policy_type, target_id)).body.get("assignments") or []
        if item.assignments.action == "merge":
            have = {assignment_key(a) for a in mapped}
            mapped = mapped + [{k: v for k, v in a.items() if k in ("target", "intent", "settings")}
                               for a in current if assignment_key(a) not in have]
        await PolicyWriter(client).assign(item.policy_type, target_id, odata_type, mapped, current=current)
        await self._audit_write(cmd, run, item, AuditAction.RESTORE_ASSIGN, target_id, before=None,
                                after={"assignments": mapped})
        return ("created" if item.action == "create" else "updated"), target_id

    async def _maps(self, cmd: RestoreApplyInput, plan: RestorePlan) -> IdMaps:
        """Source -> target ids for the item's stage: the plan's maps, and the ledger of the tenant pair.

        Items of one stage reference only what earlier stages restored (that is what the stages are for),
        so the ledger is read once per stage and process, not once per item (the ledger grows with the
        restore: read per item it was the largest cost, measured by ``benchmarks.restore_execute``).
        """
        key = (cmd.tenant_id, cmd.run_id, cmd.stage)
        cached = self._maps_by_stage.get(key)
        if cached is not None:
            return cached
        maps = await self._read_maps(cmd, plan)
        self._maps_by_stage[key] = maps
        while len(self._maps_by_stage) > _PLAN_CACHE_SIZE:
            self._maps_by_stage.popitem(last=False)
        return maps

    async def _read_maps(self, cmd: RestoreApplyInput, plan: RestorePlan) -> IdMaps:
        entries = await asyncio.to_thread(self._restores.list_ledger, target_tenant_id=cmd.tenant_id,
                                          source_tenant_id=plan.source_tenant_id)
        done = [e for e in entries if e.state == "done" and e.target_id]
        same_tenant = plan.source_tenant_id == cmd.tenant_id.lower()
        scope_tags = {_BUILTIN_SCOPE_TAG: _BUILTIN_SCOPE_TAG}
        filters: dict[str, str] = {}
        objects: dict[str, str] = {}
        for entry in done:
            assert entry.target_id is not None
            if entry.policy_type == "scopeTag":
                scope_tags[entry.source_id] = entry.target_id
            elif entry.policy_type == "assignmentFilter":
                filters[entry.source_id] = entry.target_id
            elif entry.source_id != entry.target_id:
                objects[entry.source_id] = entry.target_id
        # In the source tenant, a referenced filter or scope tag that was not restored is still the one meant.
        objects.update(plan.definition_map)
        scope_tags = {**plan.scope_tag_map, **scope_tags}
        return IdMaps(scope_tags=scope_tags, filters=filters, groups=dict(plan.group_map), objects=objects,
                      identity_fallback=same_tenant)

    async def _backup_body(self, source_tenant_id: str, item: PlanItem) -> dict[str, Any]:
        raw = await asyncio.to_thread(self._blobs.get_json, source_tenant_id, item.content_hash)
        body: dict[str, Any] = json.loads(raw)
        return body

    async def _audit_write(self, cmd: RestoreApplyInput, run: RunRecord, item: PlanItem, action: AuditAction,
                           target_id: str, *, before: str | None, after: Mapping[str, Any]) -> None:
        now = self._clock()
        event = AuditEvent(id=new_audit_id(now), tenant_id=cmd.tenant_id, action=action, at=now,
                           actor=_actor(run),
                           run_id=cmd.run_id, item_id=item.item_id, object_type=item.policy_type,
                           object_id=target_id, before_hash=before,
                           after_hash=_after_hash(item, action, after),
                           outcome="succeeded")
        await asyncio.to_thread(self._audit.append, event)

    async def _settle(self, cmd: RestoreApplyInput, item: PlanItem, started: datetime, action: str,
                      target_id: str | None, error: ErrorInfo | None) -> RestoreApplyResult:
        if action == "skip-assignments":
            return RestoreApplyResult(position=cmd.position, status="skipped")
        status = "failed" if action == "failed" else "skipped" if action == "skipped" else "succeeded"
        outcome = ItemOutcome.model_validate({
            "item_id": item.item_id, "policy_type": item.policy_type, "display_name": item.display_name,
            "source_id": item.source_id, "target_id": target_id or item.target_id, "action": action,
            "status": status, "attempts": cmd.attempt, "error": error, "started_at": started,
            "finished_at": self._clock()})
        await asyncio.to_thread(self._runs.record_batch_item, tenant_id=cmd.tenant_id, run_id=cmd.run_id,
                                outcome=outcome)
        if error is not None and status == "failed":
            logger.warning("restore item failed run_id=%s item=%s error_code=%s", cmd.run_id, item.item_id,
                           error.code)
        return RestoreApplyResult.model_validate({"position": cmd.position, "status": status, "error": error})

    # ---------------------------------------------------------------------------------- finish

    def finish(self, *, tenant_id: str, run_id: str, failure: ErrorInfo | None,
               cancelled: bool = False) -> RunRecord:
        """Settle planned items without an outcome, complete the run and audit it (a repeat is a no-op)."""
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if run.status.is_terminal:
            return run
        record = self._restores.get_plan(tenant_id=tenant_id, run_id=run_id)
        if record is not None and run.kind == RunKind.RESTORE_EXECUTE:
            plan = self.load_plan(tenant_id, record.plan_hash)
            settled = self._settled_items(tenant_id, run_id)
            now = self._clock()
            for item in plan.items:
                if item.item_id in settled:
                    continue
                status = "skipped" if cancelled else "failed"
                self._runs.record_batch_item(tenant_id=tenant_id, run_id=run_id, outcome=ItemOutcome(
                    item_id=item.item_id, policy_type=item.policy_type, display_name=item.display_name,
                    source_id=item.source_id, target_id=item.target_id, action=status, status=status,
                    error=None if cancelled else ErrorInfo(code="item-not-restored",
                                                           message="The item was not restored before the run "
                                                                   "ended."),
                    finished_at=now))
        done = self._runs.complete(tenant_id=tenant_id, run_id=run_id, failure=failure, cancelled=cancelled)
        if run.kind == RunKind.RESTORE_EXECUTE:
            now = self._clock()
            self._audit.append(AuditEvent(
                id=new_audit_id(now), tenant_id=tenant_id, action=AuditAction.RESTORE_RUN, at=now,
                actor=_actor(run),
                run_id=run_id, outcome=str(done.status)))
        return done

    def settle_cancelled(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """End a cancelled restore: items not yet written are ``skipped``."""
        return self.finish(tenant_id=tenant_id, run_id=run_id, failure=None, cancelled=True)

    def child_instances(self, *, tenant_id: str, run_id: str) -> list[str]:
        """The batch sub-orchestrations a restore may have started (a cancel stops them too)."""
        record = self._restores.get_plan(tenant_id=tenant_id, run_id=run_id)
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if record is None or run.kind != RunKind.RESTORE_EXECUTE:
            return []
        planned = self._planned(record.plan_hash, self.load_plan(tenant_id, record.plan_hash), True)
        return [restore_batch_instance(run_id, stage.stage, number)
                for stage in planned.stages for number in range(len(restore_batches(stage)))]

    def _settled_items(self, tenant_id: str, run_id: str) -> set[str]:
        return {i.item_id for i in every_page(lambda continuation: self._runs.list_items(
            tenant_id=tenant_id, run_id=run_id, top=_READ_PAGE, continuation=continuation))}

    # --------------------------------------------------------------------------------- reading

    def preview(self, *, tenant_id: str, run_id: str) -> RestorePlan:
        """The persisted plan of a preview (or execution) run.

        Raises:
            RunNotFound: no such run.
            Conflict: the run is not a restore, or has no plan yet (``plan-not-ready``).
        """
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        if run.kind not in (RunKind.RESTORE_PREVIEW, RunKind.RESTORE_EXECUTE):
            raise Conflict(f"run {run_id} is not a restore", code="not-a-restore-run")
        record = self._restores.get_plan(tenant_id=tenant_id, run_id=run_id)
        if record is None:
            raise Conflict(f"run {run_id} has no plan yet; follow its monitor link until it finishes",
                           code="plan-not-ready")
        # A reused plan was generated for an earlier run; it is served as this run's.
        return self.load_plan(tenant_id, record.plan_hash).model_copy(update={"run_id": run_id})

    async def rerun(self, *, principal: Principal, tenant_id: str, run: RunRecord) -> StartResult:
        """A new restore of the items of ``run`` that failed (the same set, source and options).

        Raises:
            Conflict: the run has not ended, or nothing failed (``nothing-to-rerun``).
        """
        if not run.status.is_terminal:
            raise Conflict(f"run {run.id} has not ended yet", code="run-still-active")
        failed = [i.item_id for i in await asyncio.to_thread(every_page, lambda continuation: (
            self._runs.list_items(tenant_id=tenant_id, run_id=run.id, status="failed", top=_READ_PAGE,
                                  continuation=continuation)))]
        if not failed:
            raise Conflict(f"run {run.id} has no failed item to restore again", code="nothing-to-rerun")
        scope = run.scope
        request = RestoreRequest.model_validate({
            "backupSetId": scope["backupSetId"], "sourceTenantId": scope["sourceTenantId"], "itemIds": failed,
            "options": scope["options"]})
        return await self.start(principal=principal, tenant_id=tenant_id, request=request,
                                execute=run.kind == RunKind.RESTORE_EXECUTE, idempotency_key=None)

    def _set_items(self, backup_set: BackupSet) -> list[BackupSetItem]:
        return every_page(lambda continuation: self._sets.list_items(
            tenant_id=backup_set.tenant_id, backup_set_id=backup_set.id, top=_READ_PAGE,
            continuation=continuation))


async def _group(client: Any, group_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await client.get(f"/v1.0/groups/{group_id}",
                                                 params={"$select": "id,displayName"})
    except GraphNotFound:
        return None
    return found


_DEFINITIONS = "/beta/deviceManagement/groupPolicyDefinitions"


async def _target_definition(client: Any, definition: Mapping[str, Any]) -> str | None:
    """The target's definition for a captured one: the same id, else the one imported under its name."""
    source_id = str(definition["id"])
    try:
        await client.get(f"{_DEFINITIONS}/{source_id}", params={"$select": "id"})
        return source_id
    except GraphNotFound:
        pass  # imported under another id here, or not at all
    name = definition.get("displayName")
    if not isinstance(name, str) or not name:
        return None
    candidates = await client.get_all(_DEFINITIONS, params={
        "$filter": f"displayName eq '{name.replace(chr(39), chr(39) * 2)}'"})
    same = [c for c in candidates if c.get("displayName") == name
            and c.get("classType") == definition.get("classType")
            and definition.get("categoryPath") in (None, c.get("categoryPath"))]
    return str(same[0]["id"]) if len(same) == 1 else None


async def _presentation_map(client: Any, target_definition_id: str,
                            value: Mapping[str, Any]) -> dict[str, str]:
    """Source -> target presentation ids of one definition, matched by label and kind."""
    targets = await client.get_all(f"{_DEFINITIONS}/{target_definition_id}/presentations")
    by_label = {(t.get("label"), t.get("@odata.type")): t.get("id") for t in targets}
    mapping: dict[str, str] = {}
    for presentation_value in value.get("presentationValues") or []:
        presentation = presentation_value.get("presentation") or {}
        target = by_label.get((presentation.get("label"), presentation.get("@odata.type")))
        if isinstance(presentation.get("id"), str) and isinstance(target, str):
            mapping[presentation["id"]] = target
    return mapping


def _after_hash(item: PlanItem, action: AuditAction, written: Mapping[str, Any]) -> str:
    """What a write made of the object, hashed like the ``before`` of the next one (assignments as sent)."""
    if action == AuditAction.RESTORE_ASSIGN:
        return hashlib.sha256(canonical_text(written).encode("utf-8")).hexdigest()
    return normal_hash(written, RESTORE_NORMAL_FORM,
                       unwritable=unrestorable_properties(CATALOG[item.policy_type]))


def _scope_tags_of(body: Mapping[str, Any]) -> list[str]:
    """The scope tag ids a captured policy names (as ids, or as objects with one)."""
    tags: list[str] = []
    for key in ("roleScopeTagIds", "roleScopeTags"):
        for value in body.get(key) or []:
            tag = value.get("id") if isinstance(value, dict) else value
            if isinstance(tag, str | int):
                tags.append(str(tag))
    return tags


def _actor(run: RunRecord) -> AuditActor:
    """Who a restore's writes are attributed to: whoever started the run."""
    return AuditActor(tenant_id=run.created_by.tenant_id, id=run.created_by.id, name=run.created_by.name)


def _odata_type(body: Mapping[str, Any]) -> str | None:
    value = body.get("@odata.type")
    return value if isinstance(value, str) else None


def _fingerprint(backup_set: BackupSet) -> str:
    """What changes when a set's content changes (a capture adding items or finishing again)."""
    return canonical_text({"status": backup_set.status, "captured": backup_set.captured_count,
                           "failed": backup_set.failed_count,
                           "completed": backup_set.completed_at.isoformat() if backup_set.completed_at
                           else None})


def _request_key(scope: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_text({k: v for k, v in scope.items() if k != "previewRunId"})
                          .encode("utf-8")).hexdigest()

