"""Backup sets: what a request selects, the set and its items as stored, and the small durable inputs.

A backup set is made by one ``backupset.capture`` run: its id is the run's id with another prefix, so the set,
the run and the orchestration are found from one another without a lookup. Policy bodies live in Blob
Storage (content-addressed per tenant); a set item holds only the reference and the verdict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
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
    "MAX_SELECTED_POLICIES",
    "BackupSet",
    "BackupSetBatch",
    "BackupSetItem",
    "BackupSetRequest",
    "BackupSetRunInput",
    "BatchInput",
    "PlanResult",
    "PolicyRef",
    "Selection",
    "SelectionBody",
    "backup_set_id_for_run",
    "backup_set_scope",
    "normalise_selection",
    "run_id_for_backup_set",
    "set_status_for",
]

BACKUP_SET_ID_PREFIX = "bs_"
# One request may name at most this many policies (a whole tenant is ``{"all": true}``, not a list).
MAX_SELECTED_POLICIES = 5_000
# Graph ids are GUIDs, small integers (scope tags) or GUID-based compounds (enrollment defaults); the same
# shape the snapshot route accepts, so an item id is always a valid Table key.
_GRAPH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_SET_ID = re.compile(r"^bs_[0-9A-HJKMNP-TV-Z]{26}$")

SetStatus = Literal["capturing", "complete", "partial", "failed"]
SetItemStatus = Literal["pending", "captured", "failed", "skipped"]


def backup_set_id_for_run(run_id: str) -> str:
    """The id of the set a ``backupset.capture`` run makes (``run_X`` -> ``bs_X``)."""
    return BACKUP_SET_ID_PREFIX + run_id.removeprefix(RUN_ID_PREFIX)


def run_id_for_backup_set(backup_set_id: str) -> str | None:
    """The run that made a set, or ``None`` when ``backup_set_id`` is not shaped like a set id."""
    if not _SET_ID.fullmatch(backup_set_id):
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
        if not _GRAPH_ID.fullmatch(policy.id):
            raise InvalidRequest("A policy id is not a valid Microsoft Graph id.", code="invalid-policy-id")
    unique = {(p.type, p.id) for p in policies}
    return Selection(policies=tuple(PolicyRef(type=t, id=i) for t, i in sorted(unique)))


def _require_known(types: Sequence[str], known: frozenset[str]) -> None:
    unknown = sorted({t for t in types if t not in known})
    if unknown:
        raise InvalidRequest(f"Unknown policy type '{unknown[0][:64]}'. "
                             f"Known types: {', '.join(sorted(known))}.", code="unknown-policy-type")


def backup_set_scope(request: BackupSetRequest, selection: Selection) -> dict[str, Any]:
    """The run's scope: everything that makes two requests the same work (its canonical JSON is hashed)."""
    return {
        "name": request.name, "description": request.description,
        "selection": selection.model_dump(mode="json", by_alias=True),
        "includeAssignments": request.include_assignments,
        "includeFoundations": request.include_foundations,
    }


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
    content_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
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


class BackupSetBatch(ApiModel):
    """One batch of a set: its members (written by the plan) and, once it ran, its summary counts."""

    tenant_id: str
    backup_set_id: str
    batch: int = Field(ge=0)
    members: tuple[PolicyRef, ...]
    finished: bool = False
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class BackupSetRunInput(ApiModel):
    """Input of the backup set orchestrator (built from the stored run only)."""

    tenant_id: str
    run_id: str


class PlanResult(ApiModel):
    """What the plan returns: counts only, or a request to retry later, or a failure."""

    status: Literal["planned", "retry", "failed"]
    backup_set_id: str
    item_count: int = 0
    batch_count: int = 0
    include_assignments: bool = True
    error: ErrorInfo | None = None
    retry_after_seconds: float | None = None


class BatchInput(ApiModel):
    """Input of a batch sub-orchestration and of the activities that read and close a batch."""

    tenant_id: str
    run_id: str
    backup_set_id: str
    batch: int = Field(ge=0)
    include_assignments: bool = True


def set_status_for(*, captured: int, failed: int, run_failed: bool) -> SetStatus:
    """A finished set's status: ``complete`` only when every item was captured and the run did not fail."""
    if failed == 0 and not run_failed:
        return "complete"
    return "partial" if captured > 0 else "failed"
