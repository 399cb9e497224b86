"""Restores: what a request asks for, the plan both run kinds share, and the pure rules that make it.

A restore preview and a restore execution run the same planner (:mod:`shared.services.restore`): for each
backup item it finds the target object in the tenant (the source-to-target ledger of this tenant pair first,
then the same id when restoring into the source tenant, then type and display name; an ambiguous match is a
``conflict``, never a guess), normalises both sides, diffs them and classifies the item. The functions here
are pure so the classification can be tested without Graph or storage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from shared.domain.base import ApiModel, ErrorInfo
from shared.domain.batches import spread_by_group
from shared.domain.capture import CaptureItemResult, next_capture_step
from shared.domain.normalise import NormalForm, canonical_text, normalise

__all__ = [
    "APPLY_CHUNK",
    "ASSIGNMENTS_STAGE",
    "INTERNAL_PLAN_FIELDS",
    "MAX_CHANGES_PER_ITEM",
    "MAX_RESTORE_ITEMS",
    "RESTORE_BATCH",
    "ApplyRound",
    "AssignmentPlan",
    "FieldChange",
    "IdMaps",
    "LedgerEntry",
    "PlanAction",
    "PlanItem",
    "PlanRecord",
    "PlanSummary",
    "RestoreApplyInput",
    "RestoreApplyResult",
    "RestoreBatchInput",
    "RestoreOptions",
    "RestorePlan",
    "RestorePlanResult",
    "RestoreRequest",
    "RestoreRunInput",
    "StagePlan",
    "TargetMatch",
    "apply_round",
    "assignment_key",
    "choose_target",
    "comparable",
    "diff",
    "map_assignments",
    "normal_hash",
    "remap_references",
    "restore_batch_instance",
    "restore_batches",
    "restore_normal_form",
    "restore_scope",
    "stages_of",
    "summarise",
]

PlanAction = Literal["create", "update", "unchanged", "conflict", "unsupported"]
AssignmentAction = Literal["replace", "merge", "unchanged", "skip"]
AssignmentMode = Literal["replace", "merge"]

# The last stage of an execution writes assignments, once every policy they hang on exists.
ASSIGNMENTS_STAGE = 1_000_000
# A plan lists at most this many changed fields per item; more are counted, not listed.
MAX_CHANGES_PER_ITEM = 200
# One request may name at most this many items (a whole set is ``itemIds`` left out).
MAX_RESTORE_ITEMS = 5_000
ITEM_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}:[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
RUN_ID = re.compile(r"^run_[0-9A-HJKMNP-TV-Z]{26}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TENANT_ID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

# Properties that hold ids of other restored objects by name: remapped to the target's ids.
_BUILTIN_TAG = "0"
_SCOPE_TAG_LISTS = frozenset({"roleScopeTagIds", "roleScopeTags"})
_FILTER_ID = "deviceAndAppManagementAssignmentFilterId"
_GROUP_ID = "groupId"


class RestoreOptions(ApiModel):
    """``options`` of a preview or a restore.

    Attributes:
        include_assignments: restore assignments too. Default: on for the same tenant, off across tenants
            (group ids there mean other groups).
        assignment_mode: ``replace`` the target's assignments with the backup's, or ``merge`` them in.
        group_mapping: source group id -> target group id, for groups a cross-tenant restore cannot map by
            display name.
    """

    include_assignments: bool | None = None
    assignment_mode: AssignmentMode = "replace"
    group_mapping: dict[str, str] = Field(default_factory=dict, max_length=1_000)


class RestoreRequest(ApiModel):
    """Body of ``POST .../restores/previews`` and ``POST .../restores``."""

    backup_set_id: str = Field(min_length=1, max_length=64)
    source_tenant_id: str | None = Field(default=None, pattern=_TENANT_ID)
    item_ids: list[str] | None = Field(default=None, max_length=MAX_RESTORE_ITEMS)
    options: RestoreOptions = Field(default_factory=RestoreOptions)
    preview_run_id: str | None = Field(default=None, max_length=64)


def restore_scope(request: RestoreRequest, *, target_tenant_id: str, execute: bool) -> dict[str, Any]:
    """The run scope of a restore: everything that decides its work, in one spelling (the derived key).

    Raises:
        ValueError: an item id, a mapped id or the preview run id is malformed (the caller answers 400).
    """
    items = sorted(set(request.item_ids)) if request.item_ids is not None else None
    if items == []:
        raise ValueError("itemIds: name at least one item, or leave it out to restore the whole set")
    for item_id in items or ():
        if not ITEM_ID.fullmatch(item_id):
            raise ValueError("itemIds: every id is '<policyType>:<policy id>' as a backup set lists it")
    for source, target in request.options.group_mapping.items():
        if not (_GUID.fullmatch(source) and _GUID.fullmatch(target)):
            raise ValueError("options.groupMapping: keys and values are group object ids (GUIDs)")
    if request.preview_run_id is not None and (not execute or not RUN_ID.fullmatch(request.preview_run_id)):
        raise ValueError("previewRunId: a restore.preview run id, on a restore only")
    source = (request.source_tenant_id or target_tenant_id).lower()
    same_tenant = source == target_tenant_id.lower()
    options = request.options
    include = options.include_assignments if options.include_assignments is not None else same_tenant
    return {
        "backupSetId": request.backup_set_id,
        "sourceTenantId": source,
        "itemIds": items,
        "options": {"includeAssignments": include, "assignmentMode": options.assignment_mode,
                    "groupMapping": dict(sorted(options.group_mapping.items()))},
        "previewRunId": request.preview_run_id,
    }


class FieldChange(ApiModel):
    """One changed field: a JSON pointer into the normalised policy, and both values."""

    path: str
    before: Any = None
    after: Any = None


class AssignmentPlan(ApiModel):
    """What happens to an item's assignments."""

    action: AssignmentAction = "skip"
    unmapped: list[str] = Field(default_factory=list)


class PlanItem(ApiModel):
    """One item of a plan (the API's preview item plus what an execution needs)."""

    item_id: str
    policy_type: str
    display_name: str = ""
    source_id: str
    action: PlanAction
    target_id: str | None = None
    changes: list[FieldChange] = Field(default_factory=list)
    changes_total: int = 0
    assignments: AssignmentPlan = Field(default_factory=AssignmentPlan)
    warnings: list[str] = Field(default_factory=list)
    conflict: str | None = None
    stage: int = 0
    content_hash: str = ""
    target_hash: str | None = None


class PlanSummary(ApiModel):
    """How many items a plan has per action."""

    create: int = 0
    update: int = 0
    unchanged: int = 0
    conflict: int = 0
    unsupported: int = 0


# Kept with a stored plan for reuse decisions, never shown (API names).
INTERNAL_PLAN_FIELDS = frozenset({"setFingerprint", "liveFingerprint"})


class RestorePlan(ApiModel):
    """A persisted plan: the body of ``GET .../runs/{runId}/preview``."""

    run_id: str
    backup_set_id: str
    source_tenant_id: str
    generated_at: datetime
    summary: PlanSummary
    include_assignments: bool
    assignment_mode: AssignmentMode = "replace"
    items: list[PlanItem]
    group_map: dict[str, str] = Field(default_factory=dict)
    definition_map: dict[str, str] = Field(default_factory=dict)
    scope_tag_map: dict[str, str] = Field(default_factory=dict)
    set_fingerprint: str = ""
    live_fingerprint: str = ""


class StagePlan(ApiModel):
    """One stage of an execution: positions into the plan's items, applied together."""

    stage: int
    positions: list[int]


class RestoreBatchInput(ApiModel):
    """Input of a restore batch sub-orchestration: some positions of one stage of the plan."""

    tenant_id: str
    run_id: str
    plan_hash: str
    stage: int
    positions: list[int]


class RestoreRunInput(ApiModel):
    """Input of a restore orchestration (ids only)."""

    tenant_id: str
    run_id: str
    execute: bool


class RestorePlanResult(ApiModel):
    """What planning returns to the orchestrator: the plan's blob and its stages, never bodies."""

    status: Literal["planned", "retry", "failed"]
    plan_hash: str = ""
    item_count: int = 0
    stages: list[StagePlan] = Field(default_factory=list)
    error: ErrorInfo | None = None
    retry_after_seconds: float | None = None


class RestoreApplyInput(ApiModel):
    """Apply one plan item (its body write, or its assignments in the last stage)."""

    tenant_id: str
    run_id: str
    plan_hash: str
    position: int
    stage: int = 0
    assignments: bool = False
    attempt: int = 1
    final_attempt: bool = False


class RestoreApplyResult(ApiModel):
    """One applied item: settled, or to be tried again after a pause."""

    position: int
    status: Literal["succeeded", "failed", "skipped", "retry"]
    error: ErrorInfo | None = None
    retry_after_seconds: float | None = None


class TargetMatch(ApiModel):
    """Where a backup item lands in the tenant."""

    target_id: str | None = None
    conflict: str | None = None
    via: Literal["ledger", "same-id", "name", "none"] = "none"


def choose_target(*, ledger_target: str | None, source_id: str, same_tenant: bool,
                  live_ids: Iterable[str], live_names: Mapping[str, Sequence[str]], name: str) -> TargetMatch:
    """Find an item's target: the ledger, then the same id in the same tenant, then a unique display name.

    Args:
        ledger_target: the target id the ledger of this tenant pair recorded for the source id.
        source_id: the item's id in the source tenant.
        same_tenant: restoring into the tenant the backup came from.
        live_ids: ids of the type's objects in the target tenant now.
        live_names: display name -> ids of the type's objects in the target tenant now.
        name: the item's display name.
    """
    ids = set(live_ids)
    if ledger_target is not None and ledger_target in ids:
        return TargetMatch(target_id=ledger_target, via="ledger")
    if same_tenant and source_id in ids:
        return TargetMatch(target_id=source_id, via="same-id")
    matches = list(live_names.get(name, ())) if name else []
    if len(matches) == 1:
        return TargetMatch(target_id=matches[0], via="name")
    if len(matches) > 1:
        return TargetMatch(conflict=f"{len(matches)} objects of this type in the tenant have this display "
                                    "name; rename or remove the extra ones, or restore by id", via="name")
    return TargetMatch()


def restore_normal_form(base: NormalForm) -> NormalForm:
    """The normal form a restore compares: the change check's, without assignments and nested ids.

    Assignments are planned on their own. Ids below the policy (settings, definition and presentation
    values, scheduled action configurations) are assigned by the service when an object is written, so
    a restored object never has the backup's.
    """
    return NormalForm(drop_everywhere=base.drop_everywhere | {"id", "sourceId", "isAssigned"},
                      drop_top_level=base.drop_top_level | {"assignments"},
                      unordered=base.unordered, unordered_scalars=base.unordered_scalars)


def comparable(body: Mapping[str, Any], form: NormalForm, *,
               unwritable: Iterable[str] = ()) -> dict[str, Any]:
    """What a plan compares of a policy: its normal form without what a restore cannot write, nor nulls.

    Graph leaves out a property it has no value for as often as it sends ``null``.
    """
    skip = set(unwritable)
    normal = {k: v for k, v in normalise(body, form).items() if k not in skip}
    return dict(_without_nulls(normal))


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def diff(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """The fields that differ between two normalised values, as JSON pointers (``before`` is the tenant)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(before) | set(after)):
            pointer = f"{path}/{_escape(key)}"
            if key not in before:
                changes.append(FieldChange(path=pointer, before=None, after=after[key]))
            elif key not in after:
                changes.append(FieldChange(path=pointer, before=before[key], after=None))
            else:
                changes.extend(diff(before[key], after[key], pointer))
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            changes.extend(diff(b, a, f"{path}/{index}"))
        return changes
    if canonical_text(before) == canonical_text(after):
        return []
    return [FieldChange(path=path or "/", before=before, after=after)]


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def normal_hash(body: Mapping[str, Any], form: NormalForm, *, unwritable: Iterable[str] = ()) -> str:
    """SHA-256 of what a plan compares of a body (what a preview remembers of a target)."""
    text = canonical_text(comparable(body, form, unwritable=unwritable))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class IdMaps(ApiModel):
    """Source id -> target id of the objects a policy may reference, by kind."""

    scope_tags: dict[str, str] = Field(default_factory=dict)
    filters: dict[str, str] = Field(default_factory=dict)
    groups: dict[str, str] = Field(default_factory=dict)
    objects: dict[str, str] = Field(default_factory=dict)
    identity_fallback: bool = False

    def filter_for(self, source_id: str) -> str | None:
        """The target of a filter; in the source tenant an unmapped filter is still itself."""
        return self.filters.get(source_id, source_id if self.identity_fallback else None)


def remap_references(body: Any, maps: IdMaps) -> Any:
    """A copy of ``body`` whose references to restored objects name the target's ids.

    Scope tag ids are small integers, so they are only replaced where a property holds scope tags; GUIDs
    of other restored objects (notification templates, scripts, reusable settings) are replaced wherever
    they appear as a whole value.
    """
    if isinstance(body, dict):
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key in _SCOPE_TAG_LISTS and isinstance(value, list):
                tags = [tag for tag in (_scope_tag(v, maps) for v in value) if tag is not None]
                # A policy keeps at least the built-in tag, as Graph gives one that names none.
                out[key] = tags or ([_BUILTIN_TAG] if key == "roleScopeTagIds" else [])
            elif key == _FILTER_ID and isinstance(value, str):
                out[key] = maps.filters.get(value, value)
            elif key == _GROUP_ID and isinstance(value, str):
                out[key] = maps.groups.get(value, value)
            else:
                out[key] = remap_references(value, maps)
        return out
    if isinstance(body, list):
        return [remap_references(v, maps) for v in body]
    if isinstance(body, str) and body in maps.objects:
        return maps.objects[body]
    return body


def _scope_tag(value: Any, maps: IdMaps) -> Any:
    """A scope tag reference (an id, or an object with one) naming the target's tag.

    ``None`` when the tag has no counterpart: across tenants the same small integer is another tag.
    """
    tag_id = value.get("id") if isinstance(value, dict) else value
    if not isinstance(tag_id, str | int):
        return value
    mapped = maps.scope_tags.get(str(tag_id))
    if mapped is None:
        if not maps.identity_fallback:
            return None
        mapped = str(tag_id)
    return {**value, "id": mapped} if isinstance(value, dict) else mapped


_GROUP_TARGETS = ("#microsoft.graph.groupAssignmentTarget", "#microsoft.graph.exclusionGroupAssignmentTarget")


def map_assignments(assignments: Sequence[Mapping[str, Any]], maps: IdMaps) -> tuple[list[dict[str, Any]],
                                                                                  list[str]]:
    """The backup's assignments written for the target tenant, and what could not be mapped.

    An assignment whose group or filter has no target is left out and named in ``unmapped``
    (``group:<id>`` / ``filter:<id>``): a restore never guesses a group.
    """
    mapped: list[dict[str, Any]] = []
    unmapped: list[str] = []
    for assignment in assignments:
        target = assignment.get("target")
        if not isinstance(target, Mapping):
            continue
        new_target = {k: v for k, v in target.items() if not k.endswith("@odata.context")}
        group = target.get(_GROUP_ID)
        if target.get("@odata.type") in _GROUP_TARGETS or group:
            if not isinstance(group, str) or group not in maps.groups:
                unmapped.append(f"group:{group}")
                continue
            new_target[_GROUP_ID] = maps.groups[group]
        filter_id = target.get(_FILTER_ID)
        if isinstance(filter_id, str) and filter_id and filter_id != "00000000-0000-0000-0000-000000000000":
            mapped_filter = maps.filter_for(filter_id)
            if mapped_filter is None:
                unmapped.append(f"filter:{filter_id}")
                continue
            new_target[_FILTER_ID] = mapped_filter
        out = {k: v for k, v in assignment.items()
               if k not in ("id", "source", "sourceId", "target")
               and ("@odata." not in k or k == "@odata.type")}
        out["target"] = new_target
        mapped.append(out)
    return mapped, sorted(set(unmapped))


def assignment_key(assignment: Mapping[str, Any]) -> str:
    """What makes two assignments the same (their target), for comparing and merging."""
    target = assignment.get("target") or {}
    return canonical_text({k: v for k, v in target.items()
                           if not k.startswith("@odata.") or k == "@odata.type"})


def stages_of(items: Sequence[PlanItem], *, restore_order: Mapping[str, int], family: Mapping[str, str],
              with_assignments: bool) -> list[StagePlan]:
    """The execution's stages: one per restore order (foundations first), then assignments.

    Items that write nothing to their body (unchanged) still take part, so their outcome is recorded;
    only items whose assignments change go to the last stage. Within a stage the throttling families take
    turns (round robin), so no chunk is all one family waiting for its write budget while others idle; in
    the assignments stage the family with the most writes goes last, since the stage before has just
    drawn on its budget (measured by ``benchmarks.restore_execute``).
    """
    by_order: dict[int, list[int]] = {}
    for position, item in enumerate(items):
        by_order.setdefault(restore_order.get(item.policy_type, 0), []).append(position)
    stages = [StagePlan(stage=order, positions=_take_turns(positions, items, family))
              for order, positions in sorted(by_order.items())]
    if with_assignments:
        assign = [p for p, item in enumerate(items)
                  if item.action in ("create", "update", "unchanged")
                  and item.assignments.action in ("replace", "merge")]
        if assign:
            stages.append(StagePlan(stage=ASSIGNMENTS_STAGE, positions=_busiest_last(assign, items, family)))
    return stages


def _by_family(positions: Sequence[int], items: Sequence[PlanItem],
               family: Mapping[str, str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for position in positions:
        groups.setdefault(family.get(items[position].policy_type, ""), []).append(position)
    return groups


def _take_turns(positions: Sequence[int], items: Sequence[PlanItem], family: Mapping[str, str]) -> list[int]:
    """``positions`` with the throttling families spread over the stage, each family's own order kept."""
    return spread_by_group(positions, lambda position: family.get(items[position].policy_type, ""))


def _busiest_last(positions: Sequence[int], items: Sequence[PlanItem],
                  family: Mapping[str, str]) -> list[int]:
    """``positions`` grouped by throttling family, the family with the most items last."""
    groups = sorted(_by_family(positions, items, family).items(), key=lambda kv: (len(kv[1]), kv[0]))
    return [p for _, group in groups for p in group]


def summarise(items: Iterable[PlanItem]) -> PlanSummary:
    """Counts per action."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.action] = counts.get(item.action, 0) + 1
    return PlanSummary.model_validate(counts)


def item_error(code: str, message: str) -> ErrorInfo:
    """A safe error for an item that was not written."""
    return ErrorInfo(code=code, message=message)


class LedgerEntry(ApiModel):
    """Which object of the target tenant a source object was restored to.

    ``state`` is ``intent`` from just before a create until the create's answer is recorded: a retried or
    repeated activity that finds an intent reconciles with the tenant (by display name) before it creates,
    so a create that succeeded but was never recorded is adopted instead of made twice.
    """

    target_tenant_id: str
    source_tenant_id: str
    policy_type: str
    source_id: str
    target_id: str | None = None
    state: Literal["intent", "done"] = "done"
    run_id: str
    updated_at: datetime


class PlanRecord(ApiModel):
    """Where a run's plan is stored (a content-addressed blob) and its summary, on the run's tenant."""

    tenant_id: str
    run_id: str
    backup_set_id: str
    plan_hash: str
    summary: PlanSummary
    item_count: int
    set_fingerprint: str = ""
    live_fingerprint: str = ""
    request_key: str = ""
    created_at: datetime


# Items applied at once within a batch: enough to keep the write budget busy, few enough that one slow or
# throttled item holds back little.
APPLY_CHUNK = 20
# Items per batch sub-orchestration: its history (about 3 events per item and attempt) stays short to
# replay, and the parent's holds 2 events per batch.
RESTORE_BATCH = 100


def restore_batches(stage: StagePlan, size: int = RESTORE_BATCH) -> list[list[int]]:
    """A stage's positions cut into batches (each applied by one sub-orchestration)."""
    return [stage.positions[i:i + size] for i in range(0, len(stage.positions), size)]


def restore_batch_instance(run_id: str, stage: int, batch: int) -> str:
    """The instance id of a batch sub-orchestration (found again from the plan to cancel it)."""
    return f"{run_id}:stage-{stage:07d}-batch-{batch:05d}"


class ApplyRound(ApiModel):
    """One round of a chunk: the positions to try again, and how long to wait first."""

    retry: list[int] = Field(default_factory=list)
    delay_seconds: float | None = None


def apply_round(results: Sequence[RestoreApplyResult], attempt: int) -> ApplyRound:
    """The positions (into the plan) that asked to be tried again, with the longest wait any asked for.

    The same rule as a capture's (:func:`~shared.domain.capture.next_capture_step`): a bounded number of
    attempts, ``Retry-After`` honoured within 1 to 300 seconds.
    """
    retry: list[int] = []
    delays: list[float] = []
    for result in results:
        delay = next_capture_step(CaptureItemResult(item_id=str(result.position), status=result.status,
                                                    retry_after_seconds=result.retry_after_seconds), attempt)
        if delay is not None:
            retry.append(result.position)
            delays.append(delay)
    return ApplyRound(retry=retry, delay_seconds=max(delays) if delays else None)
