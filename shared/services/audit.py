"""Reading a managed tenant's audit trail."""

from __future__ import annotations

from shared.auth.access import AccessService
from shared.domain import AuditEvent, Page, Principal, Role
from shared.ports import AuditRepository

__all__ = ["AuditService"]


class AuditService:
    """Lists audit events to readers of the tenant."""

    def __init__(self, *, audit: AuditRepository, access: AccessService) -> None:
        self._audit = audit
        self._access = access

    def list(self, *, principal: Principal, tenant_id: str, run_id: str | None = None, top: int = 50,
             continuation: str | None = None) -> Page[AuditEvent]:
        """Return the tenant's audit events, newest first.

        Args:
            principal: the caller; needs at least ``reader`` on the tenant.
            tenant_id: the managed tenant.
            run_id: only events linked to this run.
            top: page size.
            continuation: token from the previous page.

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it.
            InvalidRequest: a bad ``top``, run id or continuation token.
        """
        tenant_id = self._access.require(principal, tenant_id, Role.READER).tenant_id
        return self._audit.list(tenant_id=tenant_id, run_id=run_id, top=top, continuation=continuation)
