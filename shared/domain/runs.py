"""Runs: kinds, statuses and their transitions, per-item outcomes, and the pure helpers around them."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from shared.domain.base import ApiModel, ErrorInfo

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "CreatedBy",
    "ItemAction",
    "ItemOutcome",
    "ItemStatus",
    "RunCounts",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "RunTarget",
    "can_transition",
    "canonical_json",
    "counts_from_outcomes",
    "derive_idempotency_key",
    "final_status",
]


class RunKind(StrEnum):
    """What a run does."""

    POLICY_CAPTURE = "policy.capture"
    BACKUPSET_CAPTURE = "backupset.capture"
    BACKUPSET_ADD_ITEMS = "backupset.add_items"
    RESTORE_PREVIEW = "restore.preview"
    RESTORE_EXECUTE = "restore.execute"


class RunStatus(StrEnum):
    """Where a run is; it only ever moves forward (see :func:`can_transition`)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (successfully or not)."""
        return self in TERMINAL_STATUSES


ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.CANCELLED}
)
_RANK = {RunStatus.QUEUED: 0, RunStatus.RUNNING: 1}


def can_transition(current: RunStatus, new: RunStatus) -> bool:
    """Whether a run may move from ``current`` to ``new``.

    Forward only: ``queued -> running -> terminal``. A queued run may also end directly (cancelled
    before it started, or failed because it could never be launched). Terminal statuses are final, and
    staying in the same status is not a transition (callers treat it as an idempotent no-op).
    """
    if current.is_terminal or current == new:
        return False
    if new.is_terminal:
        return True
    return _RANK[new] > _RANK[current]


class RunTarget(ApiModel):
    """The object a run acts on; unused parts stay ``None``."""

    policy_type: str | None = None
    policy_id: str | None = None
    backup_set_id: str | None = None


class RunCounts(ApiModel):
    """Item counts of a run, always derived from the persisted per-item outcomes."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0


class CreatedBy(ApiModel):
    """Who started a run (``tenantId`` is the caller's home tenant, for audit events of its writes)."""

    id: str
    name: str = ""
    tenant_id: str = ""


# ``planned``: an item of a restore preview (the plan says what a restore would do with it).
ItemAction = Literal["captured", "planned", "created", "updated", "unchanged", "skipped", "failed"]
ItemStatus = Literal["succeeded", "failed", "skipped"]


class ItemOutcome(ApiModel):
    """The outcome of one item of a run, written once per ``(run_id, item_id)`` (activities may repeat)."""

    item_id: str = Field(min_length=1, max_length=512)
    policy_type: str = ""
    display_name: str = ""
    source_id: str | None = None
    target_id: str | None = None
    action: ItemAction
    status: ItemStatus
    attempts: int = Field(default=1, ge=1)
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunRecord(ApiModel):
    """A run as stored and returned by the API (the HTTP layer adds ``reused`` and ``links``)."""

    id: str
    tenant_id: str
    kind: RunKind
    status: RunStatus = RunStatus.QUEUED
    target: RunTarget = Field(default_factory=RunTarget)
    scope: dict[str, Any] = Field(default_factory=dict)
    created_by: CreatedBy
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure: ErrorInfo | None = None
    derived_key: str
    counts: RunCounts = Field(default_factory=RunCounts)
    expected_items: int | None = None
    # When the orchestration was started (stamped by the outbox delivery, or by the orchestration marking
    # the run running). Until then the run's outbox entry says who is launching it and when to retry.
    launched_at: datetime | None = None
    # Written by the launch recovery before the outbox; no longer written, kept so older rows read alike.
    launch_attempted_at: datetime | None = None


def counts_from_outcomes(statuses: list[str]) -> RunCounts:
    """Count item statuses (``succeeded``/``failed``/``skipped``) into :class:`RunCounts`."""
    return RunCounts(
        total=len(statuses),
        succeeded=statuses.count("succeeded"),
        failed=statuses.count("failed"),
        skipped=statuses.count("skipped"),
    )


def final_status(counts: RunCounts, *, run_failed: bool = False) -> RunStatus:
    """Return the terminal status a run ends with.

    Args:
        counts: the counts derived from the run's items.
        run_failed: whether the run as a whole failed (an infrastructure or planning failure).

    Returns:
        ``partial`` when at least one item succeeded and at least one failed (or the run failed after
        some items succeeded); ``failed`` when every attempted item failed, or the run failed with no
        item succeeding; otherwise ``succeeded`` (including a run with nothing to do).
    """
    if counts.succeeded > 0 and (counts.failed > 0 or run_failed):
        return RunStatus.PARTIAL
    if counts.failed > 0 or run_failed:
        return RunStatus.FAILED
    return RunStatus.SUCCEEDED


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as canonical JSON: sorted keys, no insignificant whitespace, UTF-8 text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def derive_idempotency_key(
    tenant_id: str, kind: RunKind, target: RunTarget, scope: dict[str, Any]
) -> str:
    """Return the server-derived idempotency key of a start request.

    ``sha256(tenantId | kind | target | canonical JSON of scope and options)``: two requests that would do
    the same work get the same key, however their JSON was spelt (key order, whitespace).

    Args:
        tenant_id: the managed tenant.
        kind: the run kind.
        target: the object acted on.
        scope: the request's scope and options (selection, item ids, options ...).

    Returns:
        64 lower-case hex characters.
    """
    target_json = canonical_json(target.model_dump(mode="json", by_alias=True))
    material = "|".join([tenant_id.lower(), str(kind), target_json, canonical_json(scope)])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()
