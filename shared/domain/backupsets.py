"""Backup sets: what a request selects, the set and its items as stored, and the small durable inputs.

A backup set is made by one ``backupset.capture`` run: its id is the run's id with another prefix, so the set,
the run and the orchestration are found from one another without a lookup. Policy bodies live in Blob
Storage (content-addressed per tenant); a set item holds only the reference and the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from shared.domain.base import ApiModel, ErrorInfo
from shared.domain.capture import capture_item_id
from shared.domain.ids import RUN_ID_PREFIX
from shared.domain.runs import CreatedBy
from shared.errors import InvalidRequest, PayloadTooLarge

__all__ = [
    "BACKUP_SET_ID_PREFIX",
    "CAPTURE_CHUNK",
    "MAX_CAPTURE_CHUNK",
    "MAX_SELECTED_POLICIES",
    "AddItemsRequest",
    "BackupSet",
    "BackupSetBatch",
    "BackupSetChange",
    "BackupSetItem",
    "BackupSetRequest",
    "BackupSetRunInput",
    "BatchInput",
    "ChangeCounts",
    "ChangeKind",
    "Coverage",
    "PlanResult",
    "PolicyRef",
    "Selection",
    "SelectionBody",
    "add_items_scope",
    "backup_set_id_for_run",
    "backup_set_scope",
    "compare_items",
    "count_changes",
    "coverage_of",
    "is_baseline_for",
    "normalise_policies",
    "normalise_selection",
    "run_id_for_backup_set",
    "set_status_for",
]

BACKUP_SET_ID_PREFIX = "bs_"
# One request may name at most this many policies (a whole tenant is ``{"all": true}``, not a list).
MAX_SELECTED_POLICIES = 5_000
# Graph ids are GUIDs, small integers (scope tags) or GUID-based compounds (enrollment defaults); the same
# shape the snapshot route accepts, so an item id is always a valid Table key.
GRAPH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
BACKUP_SET_ID = re.compile(r"^bs_[0-9A-HJKMNP-TV-Z]{26}$")

SetStatus = Literal["capturing", "complete", "partial", "failed"]
SetItemStatus = Literal["pending", "captured", "failed", "skipped"]
ChangeKind = Literal["new", "changed", "unchanged", "deleted"]
_SHA256 = r"^[0-9a-f]{64}$"


def backup_set_id_for_run(run_id: str) -> str:
    """The id of the set a ``backupset.capture`` run makes (``run_X`` -> ``bs_X``)."""
    return BACKUP_SET_ID_PREFIX + run_id.removeprefix(RUN_ID_PREFIX)


def run_id_for_backup_set(backup_set_id: str) -> str | None:
    """The run that made a set, or ``None`` when ``backup_set_id`` is not shaped like a set id."""
    if not BACKUP_SET_ID.fullmatch(backup_set_id):
        return None
    return RUN_ID_PREFIX + backup_set_id.removeprefix(BACKUP_SET_ID_PREFIX)


class PolicyRef(ApiModel):
    """One policy named in a selection."""

    type: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=200)


class SelectionBody(ApiModel):
    """``selection`` as sent: exactly one of ``all``, ``types`` or ``policies`` (checked when normalised)."""

    all: bool | None = None
    types: list[str] | None = None
    policies: list[PolicyRef] | None = None


class BackupSetRequest(ApiModel):
    """Body of ``POST /api/tenants/{tenantId}/backup-sets``."""

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2_000)
    selection: SelectionBody
    include_assignments: bool = True
    include_foundations: bool = True


class Selection(ApiModel):
    """A normalised selection: sorted, without duplicates, so equal requests derive equal keys."""

    all: bool = False
    types: tuple[str, ...] = ()
    policies: tuple[PolicyRef, ...] = ()


def normalise_selection(body: SelectionBody, known_types: Iterable[str]) -> Selection:
    """Validate a selection and bring it to one spelling.

    Raises:
        InvalidRequest: not exactly one form (``invalid-selection``), nothing selected (``empty-selection``),
            a type outside the catalog (``unknown-policy-type``) or an id Graph cannot have
            (``invalid-policy-id``).
        PayloadTooLarge: more than :data:`MAX_SELECTED_POLICIES` policies (``too-many-policies``).
    """
    forms = [name for name, value in (("all", body.all), ("types", body.types), ("policies", body.policies))
             if value is not None]
    if len(forms) != 1:
        raise InvalidRequest("The selection must be exactly one of {\"all\": true}, {\"types\": [...]} or "
                             "{\"policies\": [{\"type\", \"id\"}]}.", code="invalid-selection")
    known = frozenset(known_types)
    if body.all is not None:
        if body.all is not True:
            raise InvalidRequest("The selection {\"all\": false} selects nothing.", code="empty-selection")
        return Selection(all=True)
    if body.types is not None:
        if not body.types:
            raise InvalidRequest("The selection names no policy type.", code="empty-selection")
        _require_known(body.types, known)
        return Selection(types=tuple(sorted(set(body.types))))
    policies = body.policies or []
    if not policies:
        raise InvalidRequest("The selection names no policy.", code="empty-selection")
    if len(policies) > MAX_SELECTED_POLICIES:
        raise PayloadTooLarge(f"A request may name at most {MAX_SELECTED_POLICIES} policies; select whole "
                              "types or {\"all\": true} for more.", code="too-many-policies")
    _require_known([p.type for p in policies], known)
    for policy in policies:
        if not GRAPH_ID.fullmatch(policy.id):
            raise InvalidRequest("A policy id is not a valid Microsoft Graph id.", code="invalid-policy-id")
    unique = {(p.type, p.id) for p in policies}
    return Selection(policies=tuple(PolicyRef(type=t, id=i) for t, i in sorted(unique)))


def _require_known(types: Sequence[str], known: frozenset[str]) -> None:
    unknown = sorted({t for t in types if t not in known})
    if unknown:
        raise InvalidRequest(f"Unknown policy type '{unknown[0][:64]}'. "
                             f"Known types: {', '.join(sorted(known))}.", code="unknown-policy-type")


class AddItemsRequest(ApiModel):
    """Body of ``POST /api/tenants/{tenantId}/backup-sets/{backupSetId}/items``.

    ``include_foundations`` left out means "as the set was made" (resolved before the key is derived).
    """

    policies: list[PolicyRef]
    include_foundations: bool | None = None


def normalise_policies(policies: Sequence[PolicyRef], known_types: Iterable[str]) -> tuple[PolicyRef, ...]:
    """Validate a list of policies like a ``policies`` selection and bring it to one spelling.

    Raises:
        InvalidRequest: nothing listed, an unknown type or an invalid id (the codes of
            :func:`normalise_selection`).
        PayloadTooLarge: more than :data:`MAX_SELECTED_POLICIES` policies.
    """
    return normalise_selection(SelectionBody(policies=list(policies)), known_types).policies


def add_items_scope(backup_set_id: str, policies: Sequence[PolicyRef],
                    include_foundations: bool) -> dict[str, Any]:
    """The scope of a ``backupset.add_items`` run (its canonical JSON is part of the derived key)."""
    return {"backupSetId": backup_set_id,
            "policies": [p.model_dump(mode="json", by_alias=True) for p in policies],
            "includeFoundations": include_foundations}


def backup_set_scope(request: BackupSetRequest, selection: Selection) -> dict[str, Any]:
    """The run's scope: everything that makes two requests the same work (its canonical JSON is hashed)."""
    return {
        "name": request.name, "description": request.description,
        "selection": selection.model_dump(mode="json", by_alias=True),
        "includeAssignments": request.include_assignments,
        "includeFoundations": request.include_foundations,
    }


class ChangeCounts(ApiModel):
    """How many items of a set are new, changed, unchanged or deleted against the set it was compared with."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0


class BackupSet(ApiModel):
    """A backup set as stored (the HTTP layer adds ``links``)."""

    id: str
    tenant_id: str
    name: str
    description: str | None = None
    run_id: str
    status: SetStatus = "capturing"
    selection: Selection
    include_assignments: bool = True
    include_foundations: bool = True
    created_by: CreatedBy
    created_at: datetime
    completed_at: datetime | None = None
    # Set by the plan: how many items and batches the capture has (``None`` until planned).
    item_count: int | None = None
    batch_count: int | None = None
    captured_count: int = 0
    failed_count: int = 0
    # Whole types the plan left out, with why (the tenant's consent lacks their read permission, or Graph
    # refused to list them). Such a set is not complete, and its comparison says nothing about those types.
    types_left_out: dict[str, ErrorInfo] | None = None
    # Written when the set finishes: the set its items were compared with (``None``: there was none, so
    # every item is new) and the counts of its changes (``None`` until compared).
    compared_with: str | None = None
    changes: ChangeCounts | None = None


class BackupSetItem(ApiModel):
    """One policy of a set: pending until its capture settles, then a blob reference or an error."""

    tenant_id: str
    backup_set_id: str
    item_id: str
    policy_type: str
    source_id: str
    display_name: str = ""
    batch: int = Field(ge=0)
    status: SetItemStatus = "pending"
    captured_at: datetime | None = None
    content_hash: str | None = Field(default=None, pattern=_SHA256)
    # Hash of the normal form (:mod:`shared.domain.normalise`): equal for two captures of an unchanged policy.
    normalised_hash: str | None = Field(default=None, pattern=_SHA256)
    size_bytes: int | None = Field(default=None, ge=0)
    complete: bool = False
    attempts: int = Field(default=0, ge=0)
    error: ErrorInfo | None = None

    @classmethod
    def pending(cls, *, tenant_id: str, backup_set_id: str, policy_type: str, policy_id: str,
                display_name: str, batch: int) -> BackupSetItem:
        """A planned item that has not been captured yet."""
        return cls(tenant_id=tenant_id, backup_set_id=backup_set_id,
                   item_id=capture_item_id(policy_type, policy_id), policy_type=policy_type,
                   source_id=policy_id, display_name=display_name, batch=batch)


class BackupSetChange(ApiModel):
    """One line of a set's changes: an item of the set, or a policy of the earlier set that is gone."""

    tenant_id: str
    backup_set_id: str
    item_id: str
    policy_type: str
    source_id: str
    display_name: str = ""
    change: ChangeKind


class BackupSetBatch(ApiModel):
    """One batch of a set: its members (written by the plan) and, once it ran, its summary counts.

    ``run_id`` is set on the batches of a ``backupset.add_items`` run: a set is captured by one run and may
    then be added to by others, each with batches numbered from 0, so their rows are kept apart by run.
    """

    tenant_id: str
    backup_set_id: str
    batch: int = Field(ge=0)
    run_id: str | None = None
    members: tuple[PolicyRef, ...]
    finished: bool = False
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class BackupSetRunInput(ApiModel):
    """Input of the backup set orchestrator (built from the stored run only)."""

    tenant_id: str
    run_id: str


# Items captured by one activity of a batch (read concurrently, their outcomes recorded in one entity-group
# transaction per table). What an activity costs the durable engine (history events, a queue message, an
# episode of the batch) and storage (two writes) is paid once per chunk instead of once per item. Measured at
# 1,000 policies against 1 item per activity, 25 cut the engine's CPU per item by over 80%, Azurite's by
# about 45% and the wall time by about 35%; it was a little faster than 10 (17.9 s against 19.1 s on average)
# and 50 gained nothing more in wall time while leaving a batch of 100 only 2 activities. See
# docs/architecture.md, "Multi-item runs (backup sets)"; ``BACKUP_SET_CAPTURE_CHUNK`` overrides it.
CAPTURE_CHUNK = 25
# One chunk's outcomes fit in one entity-group transaction (Table Storage's limit of 100 rows).
MAX_CAPTURE_CHUNK = 100


class PlanResult(ApiModel):
    """What the plan returns: counts only, or a request to retry later, or a failure.

    ``capture_chunk`` comes from the app's settings through the plan activity, so the orchestrators that
    cut batches into chunks read it from their history (deterministic), never from settings themselves.
    """

    status: Literal["planned", "retry", "failed"]
    backup_set_id: str
    item_count: int = 0
    batch_count: int = 0
    include_assignments: bool = True
    capture_chunk: int = Field(default=CAPTURE_CHUNK, ge=1, le=MAX_CAPTURE_CHUNK)
    error: ErrorInfo | None = None
    retry_after_seconds: float | None = None


class BatchInput(ApiModel):
    """Input of a batch sub-orchestration and of the activities that read and close a batch."""

    tenant_id: str
    run_id: str
    backup_set_id: str
    batch: int = Field(ge=0)
    include_assignments: bool = True
    # Items per capture activity (the plan's :attr:`PlanResult.capture_chunk`).
    capture_chunk: int = Field(default=CAPTURE_CHUNK, ge=1, le=MAX_CAPTURE_CHUNK)


def set_status_for(*, captured: int, failed: int, run_failed: bool) -> SetStatus:
    """A finished set's status: ``complete`` only when every item was captured and the run did not fail."""
    if failed == 0 and not run_failed:
        return "complete"
    return "partial" if captured > 0 else "failed"


# ------------------------------------------------------------------------------------------ changes


@dataclass(frozen=True)
class Coverage:
    """The policies a set's selection takes: every type, some whole types, and some single policies."""

    every_type: bool
    types: frozenset[str]
    policies: frozenset[tuple[str, str]]
    # With ``every_type``: whole types the set could not list after all.
    excluded: frozenset[str] = frozenset()

    def holds(self, policy_type: str, source_id: str) -> bool:
        """Whether a policy of the tenant falls within the selection."""
        if self.every_type:
            return policy_type not in self.excluded
        return policy_type in self.types or (policy_type, source_id) in self.policies

    def includes(self, other: Coverage) -> bool:
        """Whether every policy ``other`` takes falls within this selection too."""
        if self.every_type:
            return not self.excluded or (not other.every_type and not (other.types & self.excluded)
                                         and not any(t in self.excluded for t, _ in other.policies))
        if other.every_type or not other.types <= self.types:
            return False
        return all(self.holds(policy_type, source_id) for policy_type, source_id in other.policies)


def coverage_of(backup_set: BackupSet, foundation_types: Iterable[str]) -> Coverage:
    """What a set's selection takes (foundation types whole when the set includes them, as the plan lists)."""
    selection = backup_set.selection
    left_out = frozenset(backup_set.types_left_out or ())
    if selection.all:
        return Coverage(every_type=True, types=frozenset(), policies=frozenset(), excluded=left_out)
    types = set(selection.types)
    if backup_set.include_foundations:
        types |= set(foundation_types)
    return Coverage(every_type=False, types=frozenset(types - left_out),
                    policies=frozenset((p.type, p.id) for p in selection.policies))


def is_baseline_for(candidate: BackupSet, current: BackupSet, foundation_types: Iterable[str]) -> bool:
    """Whether ``candidate`` can be the set ``current`` is compared with.

    It must be complete, made before ``current``, captured with the same ``includeAssignments`` (else every
    body differs) and select at least what ``current`` selects (else a narrow set made in between, such as one
    policy saved before an edit, would make everything else look new). The caller takes the newest such set.
    """
    foundations = frozenset(foundation_types)
    return (candidate.id != current.id and candidate.status == "complete"
            and (candidate.created_at, candidate.id) < (current.created_at, current.id)
            and candidate.include_assignments == current.include_assignments
            and coverage_of(candidate, foundations).includes(coverage_of(current, foundations)))


def compare_items(current: BackupSet, items: Iterable[BackupSetItem],
                  baseline_items: Iterable[BackupSetItem] | None,
                  coverage: Coverage) -> list[BackupSetChange]:
    """The changes of a finished set against its baseline's items (``None``: no baseline, all is new).

    Items are matched by policy type and source id and compared by their normalised hash. Each captured item
    is ``new``, ``changed`` or ``unchanged``; an item that failed is left out (whether it changed is not
    known). A captured policy of the baseline that this set does not hold is ``deleted`` when ``coverage``
    (this set's selection) takes it: a narrower set says nothing about policies it did not select.
    """
    before = {(b.policy_type, b.source_id): b for b in baseline_items or () if b.status == "captured"}
    seen: set[tuple[str, str]] = set()
    changes: list[BackupSetChange] = []
    for item in items:
        key = (item.policy_type, item.source_id)
        seen.add(key)
        if item.status != "captured":
            continue
        previous = before.get(key)
        if previous is None:
            change: ChangeKind = "new"
        elif item.normalised_hash is not None and previous.normalised_hash == item.normalised_hash:
            change = "unchanged"
        else:
            change = "changed"
        changes.append(_change_of(current, item, change))
    for key, previous in before.items():
        if key not in seen and coverage.holds(*key):
            changes.append(_change_of(current, previous, "deleted"))
    return sorted(changes, key=lambda c: c.item_id)


def count_changes(changes: Iterable[BackupSetChange]) -> ChangeCounts:
    """How many changes of each kind."""
    counts = {"new": 0, "changed": 0, "unchanged": 0, "deleted": 0}
    for change in changes:
        counts[change.change] += 1
    return ChangeCounts(**counts)


def _change_of(current: BackupSet, item: BackupSetItem, change: ChangeKind) -> BackupSetChange:
    return BackupSetChange(tenant_id=current.tenant_id, backup_set_id=current.id, item_id=item.item_id,
                           policy_type=item.policy_type, source_id=item.source_id,
                           display_name=item.display_name, change=change)
