"""Managed tenants and their grants."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from shared.auth.access import AccessService
from shared.domain import (
    ApiModel,
    AuditAction,
    AuditActor,
    AuditEvent,
    AuditSubject,
    Grant,
    GraphConnection,
    ManagedTenant,
    Principal,
    Role,
    new_audit_id,
)
from shared.errors import ConcurrentUpdate, Forbidden, InvalidRequest
from shared.ports import GrantRepository, TenantRepository

__all__ = ["TenantAccess", "TenantService"]

# How often a grant change is retried when another change of the same grant got in between.
_CHANGE_ATTEMPTS = 3
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _guid(value: str, what: str) -> str:
    if not _GUID.fullmatch(value):
        raise InvalidRequest(f"{what} must be a GUID")
    return value.lower()


class TenantAccess(ApiModel):
    """A managed tenant together with the caller's role on it."""

    tenant: ManagedTenant
    role: Role


class TenantService:
    """Registers managed tenants (``Platform.Admin``) and manages who may act on them."""

    def __init__(self, *, tenants: TenantRepository, grants: GrantRepository,
                 access: AccessService, clock: Callable[[], datetime]) -> None:
        self._tenants = tenants
        self._grants = grants
        self._access = access
        self._clock = clock

    @staticmethod
    def require_platform_admin(principal: Principal) -> None:
        """Raise unless the caller may register tenants (before the request body is even parsed).

        Raises:
            Forbidden: the caller is not a platform admin (an app-only token with ``Platform.Admin``).
        """
        if not principal.is_platform_admin:
            raise Forbidden("registering tenants needs the Platform.Admin app role on an app-only token")

    def register(self, *, principal: Principal, tenant_id: str, display_name: str,
                 graph: GraphConnection) -> tuple[ManagedTenant, bool]:
        """Register a managed tenant, or update its name and Graph connection.

        Args:
            principal: the caller; must be a platform admin (see :meth:`require_platform_admin`).
            tenant_id: the customer tenant id (GUID).
            display_name: a name for people.
            graph: client id and credential reference (validated never to hold a secret).

        Returns:
            The stored tenant, and whether it was new (``False`` when an existing one was updated).

        Raises:
            Forbidden: the caller is not a platform admin.
            InvalidRequest: the tenant id is not a GUID.
        """
        self.require_platform_admin(principal)
        tenant_id = _guid(tenant_id, "tenant id")
        existing = self._tenants.get(tenant_id)
        tenant = ManagedTenant(
            tenant_id=tenant_id, display_name=display_name, graph=graph,
            registered_by=existing.registered_by if existing else principal.object_id,
            registered_at=existing.registered_at if existing else self._clock(),
        )
        self._tenants.put(tenant)
        return tenant, existing is None

    def list_for(self, principal: Principal) -> list[TenantAccess]:
        """Return the tenants the caller has a grant on, with the caller's role.

        Only grants that really exist count (see :meth:`AccessService.readable_grants`): a revoked caller
        never sees the tenant again, whatever the principal-side index still holds.
        """
        grants = {g.tenant_id: g.role for g in self._access.readable_grants(principal)}
        tenants = self._tenants.get_many(list(grants))
        return [TenantAccess(tenant=t, role=grants[t.tenant_id]) for t in tenants]

    def list_grants(self, *, principal: Principal, tenant_id: str) -> list[Grant]:
        """Return every grant on a tenant (admin or ``Platform.Admin``)."""
        tenant_id = self._access.require_grant_admin(principal, tenant_id).tenant_id
        return self._grants.list_for_tenant(tenant_id)

    def _subject(self, principal: Principal, tenant_id: str, principal_tenant_id: str | None,
                 principal_id: str) -> tuple[str, AuditSubject]:
        """Authorize a grant change and name its subject; return the canonical tenant id too.

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it (checked first, so a
                stranger learns nothing else).
            RoleTooLow: the caller is not an admin of the tenant.
            InvalidRequest: an id is not a GUID.
            Forbidden: ``self-grant-forbidden`` when the subject is the caller.
        """
        tenant_id = self._access.require_grant_admin(principal, tenant_id).tenant_id
        subject = AuditSubject(
            tenant_id=_guid(principal_tenant_id or principal.tenant_id, "principal tenant id"),
            id=_guid(principal_id, "principal id"))
        if principal.is_principal(subject.tenant_id, subject.id):
            raise Forbidden("nobody can grant, change or revoke a role of their own",
                            code="self-grant-forbidden")
        return tenant_id, subject

    def _event(self, principal: Principal, tenant_id: str, action: AuditAction, subject: AuditSubject,
               old: Role | None, new: Role | None) -> AuditEvent:
        now = self._clock()
        return AuditEvent(id=new_audit_id(now), tenant_id=tenant_id, action=action, at=now,
                          actor=AuditActor.of(principal), subject=subject, old_role=old, new_role=new)

    def put_grant(self, *, principal: Principal, tenant_id: str, principal_id: str, role: Role,
                  principal_tenant_id: str | None = None) -> Grant:
        """Give a principal a role on a tenant (replacing any previous role), and audit it.

        Args:
            principal: the caller (an admin of the tenant, or a platform admin).
            tenant_id: the managed tenant.
            principal_id: the object id of whom the role is for.
            role: the role.
            principal_tenant_id: that principal's home tenant; by default the caller's, which is where an
                operator's own people and pipelines live.

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it.
            RoleTooLow: the caller is not an admin of the tenant.
            Forbidden: ``self-grant-forbidden``: the principal is the caller.
            InvalidRequest: an id is not a GUID.
            ConcurrentUpdate: the grant kept changing under us.
        """
        tenant_id, subject = self._subject(principal, tenant_id, principal_tenant_id, principal_id)
        for _ in range(_CHANGE_ATTEMPTS):
            current = self._grants.get(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                       principal_id=subject.id)
            grant = Grant(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                          principal_id=subject.id, role=role, granted_by=principal.object_id,
                          granted_at=self._clock())
            event = self._event(principal, tenant_id, AuditAction.GRANT_PUT, subject,
                                current.value.role if current else None, role)
            try:
                self._grants.put(grant, event=event, etag=current.etag if current else None)
            except ConcurrentUpdate:
                continue
            # The old role stops counting in this process at once (elsewhere within the cache TTL).
            self._access.forget(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                principal_id=subject.id)
            return grant
        raise ConcurrentUpdate("the grant is being changed by someone else; try again")

    def delete_grant(self, *, principal: Principal, tenant_id: str, principal_id: str,
                     principal_tenant_id: str | None = None) -> bool:
        """Remove a grant and audit it; returns whether it existed (deleting twice is not an error).

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it.
            RoleTooLow: the caller is not an admin of the tenant.
            Forbidden: ``self-grant-forbidden``: the principal is the caller.
            InvalidRequest: an id is not a GUID.
            ConcurrentUpdate: the grant kept changing under us.
        """
        tenant_id, subject = self._subject(principal, tenant_id, principal_tenant_id, principal_id)
        for _ in range(_CHANGE_ATTEMPTS):
            current = self._grants.get(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                       principal_id=subject.id)
            if current is None:
                # Nothing changes, so there is nothing to audit; a copy of a grant that was removed
                # elsewhere still goes, so a revoke through the API always takes effect here at once.
                self._access.forget(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                    principal_id=subject.id)
                return False
            event = self._event(principal, tenant_id, AuditAction.GRANT_DELETE, subject,
                                current.value.role, None)
            try:
                self._grants.delete(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                    principal_id=subject.id, event=event, etag=current.etag)
            except ConcurrentUpdate:
                continue
            self._access.forget(tenant_id=tenant_id, principal_tenant_id=subject.tenant_id,
                                principal_id=subject.id)
            return True
        raise ConcurrentUpdate("the grant is being changed by someone else; try again")
