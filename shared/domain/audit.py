"""Audit events: who changed what on a managed tenant, and when (grant changes now, runs later)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from shared.domain.access import Principal, Role
from shared.domain.base import ApiModel
from shared.domain.ids import new_ulid

__all__ = ["AUDIT_ID_PREFIX", "AuditAction", "AuditActor", "AuditEvent", "AuditSubject", "new_audit_id"]

AUDIT_ID_PREFIX = "aud_"


def new_audit_id(now: datetime) -> str:
    """Return a new audit event id: ``aud_`` plus a time-ordered ULID-like value."""
    return AUDIT_ID_PREFIX + new_ulid(now)


class AuditAction(StrEnum):
    """What happened."""

    GRANT_PUT = "grant.put"
    GRANT_DELETE = "grant.delete"
    RESTORE_CREATE = "restore.create"
    RESTORE_UPDATE = "restore.update"
    RESTORE_ASSIGN = "restore.assign"
    RESTORE_RUN = "restore.run"


class AuditActor(ApiModel):
    """Who did it: the caller's home tenant and object id (authoritative) and display name (not)."""

    tenant_id: str
    id: str
    name: str = ""

    @classmethod
    def of(cls, principal: Principal) -> AuditActor:
        """The actor for an authenticated caller."""
        return cls(tenant_id=principal.tenant_id, id=principal.object_id, name=principal.name)


class AuditSubject(ApiModel):
    """Whom it concerned: a principal by home tenant and object id."""

    tenant_id: str
    id: str


class AuditEvent(ApiModel):
    """One change on a managed tenant.

    For grant changes ``old_role``/``new_role`` are the roles before and after (``None`` when there was no
    grant before, or none after a delete). ``run_id`` links events that a run caused.
    """

    id: str
    tenant_id: str
    action: AuditAction
    at: datetime
    actor: AuditActor
    subject: AuditSubject | None = None
    old_role: Role | None = None
    new_role: Role | None = None
    run_id: str | None = None
    # Restore writes: which item of the run, which object of the tenant, the content before and after
    # (SHA-256 of the normal form before, of the body sent after) and the outcome.
    item_id: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    before_hash: str | None = None
    after_hash: str | None = None
    outcome: str | None = None
