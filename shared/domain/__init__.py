"""Domain models and pure functions: no I/O, no frameworks."""

from __future__ import annotations

from shared.domain.access import (
    PLATFORM_ADMIN_ROLE,
    CredentialRef,
    Grant,
    GraphConnection,
    ManagedTenant,
    Principal,
    Role,
    role_at_least,
)
from shared.domain.audit import (
    AUDIT_ID_PREFIX,
    AuditAction,
    AuditActor,
    AuditEvent,
    AuditSubject,
    new_audit_id,
)
from shared.domain.base import ApiModel, ErrorInfo, Page, utc
from shared.domain.ids import invert_sortable, new_run_id, new_ulid
from shared.domain.notifications import Notification, notification_id
from shared.domain.runs import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    CreatedBy,
    ItemOutcome,
    RunCounts,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    can_transition,
    canonical_json,
    counts_from_outcomes,
    derive_idempotency_key,
    final_status,
)
from shared.domain.snapshots import SnapshotRecord, snapshot_blob_name

__all__ = [
    "ACTIVE_STATUSES",
    "AUDIT_ID_PREFIX",
    "PLATFORM_ADMIN_ROLE",
    "TERMINAL_STATUSES",
    "ApiModel",
    "AuditAction",
    "AuditActor",
    "AuditEvent",
    "AuditSubject",
    "CreatedBy",
    "CredentialRef",
    "ErrorInfo",
    "Grant",
    "GraphConnection",
    "ItemOutcome",
    "ManagedTenant",
    "Notification",
    "Page",
    "Principal",
    "Role",
    "RunCounts",
    "RunKind",
    "RunRecord",
    "RunStatus",
    "RunTarget",
    "SnapshotRecord",
    "can_transition",
    "canonical_json",
    "counts_from_outcomes",
    "derive_idempotency_key",
    "final_status",
    "invert_sortable",
    "new_audit_id",
    "new_run_id",
    "new_ulid",
    "notification_id",
    "role_at_least",
    "snapshot_blob_name",
    "utc",
]
