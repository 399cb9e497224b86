"""Per-tenant authorization: every request under a managed tenant is checked against its grants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.domain import PLATFORM_ADMIN_ROLE, Grant, Principal, Role, role_at_least
from shared.errors import RoleTooLow, TenantNotFound
from shared.ports import GrantRepository, TenantRepository

__all__ = ["AccessService"]


class AccessService:
    """Answers "may this principal do that on this tenant?" from the grant table."""

    def __init__(self, *, tenants: TenantRepository, grants: GrantRepository,
                 clock: Callable[[], datetime]) -> None:
        self._tenants = tenants
        self._grants = grants
        self._clock = clock

    def require(self, principal: Principal, tenant_id: str, minimum: Role) -> Grant:
        """Return the caller's grant on ``tenant_id`` if its role is at least ``minimum``.

        Args:
            principal: the authenticated caller.
            tenant_id: the managed tenant from the route (never trusted without this lookup).
            minimum: the least role the operation needs.

        Returns:
            The caller's grant; its ``tenant_id`` is the canonical (lower-case) id to use from here on.

        Raises:
            TenantNotFound: the tenant is unknown or the caller has no grant on it (404, so tenants
                cannot be enumerated).
            RoleTooLow: the caller has a grant, but its role is too low (403).
        """
        tenant_id = tenant_id.lower()
        if self._tenants.get(tenant_id) is None:
            raise TenantNotFound("tenant not found")
        grant = self._grants.get(tenant_id=tenant_id, principal_id=principal.object_id)
        if grant is None:
            raise TenantNotFound("tenant not found")
        if not role_at_least(grant.role, minimum):
            raise RoleTooLow(f"this operation needs the {minimum} role on the tenant")
        return grant

    def require_grant_admin(self, principal: Principal, tenant_id: str) -> Grant:
        """Like :meth:`require` with ``admin``, but a ``Platform.Admin`` passes on any known tenant.

        ``Platform.Admin`` counts as admin for grant management only, so that the first admin of a newly
        registered tenant can be granted; it does not open the tenant's runs or restores.
        """
        if principal.is_platform_admin:
            tenant_id = tenant_id.lower()
            if self._tenants.get(tenant_id) is None:
                raise TenantNotFound("tenant not found")
            return Grant(tenant_id=tenant_id, principal_id=principal.object_id, role=Role.ADMIN,
                         granted_by=PLATFORM_ADMIN_ROLE, granted_at=self._clock())
        return self.require(principal, tenant_id, Role.ADMIN)

    def readable_tenant_ids(self, principal: Principal) -> list[str]:
        """Return the managed tenants the caller can read (any grant), for cross-tenant views."""
        return [g.tenant_id for g in self._grants.list_for_principal(principal.object_id)]
