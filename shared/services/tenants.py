"""Managed tenants and their grants."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from shared.auth.access import AccessService
from shared.domain import ApiModel, Grant, GraphConnection, ManagedTenant, Principal, Role
from shared.errors import Forbidden, InvalidRequest
from shared.ports import GrantRepository, TenantRepository

__all__ = ["TenantAccess", "TenantService"]

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

    def register(self, *, principal: Principal, tenant_id: str, display_name: str,
                 graph: GraphConnection) -> ManagedTenant:
        """Register a managed tenant, or update its name and Graph connection.

        Args:
            principal: the caller; needs the ``Platform.Admin`` app role.
            tenant_id: the customer tenant id (GUID).
            display_name: a name for people.
            graph: client id and credential reference (validated never to hold a secret).

        Returns:
            The stored tenant.

        Raises:
            Forbidden: the caller is not a platform admin.
            InvalidRequest: the tenant id is not a GUID.
        """
        if not principal.is_platform_admin:
            raise Forbidden("registering tenants needs the Platform.Admin app role")
        tenant_id = _guid(tenant_id, "tenant id")
        existing = self._tenants.get(tenant_id)
        tenant = ManagedTenant(
            tenant_id=tenant_id, display_name=display_name, graph=graph,
            registered_by=existing.registered_by if existing else principal.object_id,
            registered_at=existing.registered_at if existing else self._clock(),
        )
        self._tenants.put(tenant)
        return tenant

    def list_for(self, principal: Principal) -> list[TenantAccess]:
        """Return the tenants the caller has a grant on, with the caller's role."""
        grants = {g.tenant_id: g.role for g in self._grants.list_for_principal(principal.object_id)}
        tenants = self._tenants.get_many(list(grants))
        return [TenantAccess(tenant=t, role=grants[t.tenant_id]) for t in tenants]

    def list_grants(self, *, principal: Principal, tenant_id: str) -> list[Grant]:
        """Return every grant on a tenant (admin or ``Platform.Admin``)."""
        tenant_id = self._access.require_grant_admin(principal, tenant_id).tenant_id
        return self._grants.list_for_tenant(tenant_id)

    def put_grant(self, *, principal: Principal, tenant_id: str, principal_id: str,
                  role: Role) -> Grant:
        """Give ``principal_id`` a role on a tenant (replacing any previous role).

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it.
            RoleTooLow: the caller is not an admin of the tenant.
            InvalidRequest: ``principal_id`` is not an object id (GUID).
        """
        tenant_id = self._access.require_grant_admin(principal, tenant_id).tenant_id
        grant = Grant(tenant_id=tenant_id, principal_id=_guid(principal_id, "principal id"),
                      role=role, granted_by=principal.object_id, granted_at=self._clock())
        self._grants.put(grant)
        return grant

    def delete_grant(self, *, principal: Principal, tenant_id: str, principal_id: str) -> bool:
        """Remove a grant; returns whether it existed (deleting twice is not an error).

        Raises:
            TenantNotFound: unknown tenant, or the caller has no grant on it.
            RoleTooLow: the caller is not an admin of the tenant.
        """
        tenant_id = self._access.require_grant_admin(principal, tenant_id).tenant_id
        return self._grants.delete(tenant_id=tenant_id, principal_id=principal_id.lower())
