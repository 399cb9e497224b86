"""Per-tenant authorization: every request under a managed tenant is checked against its grants.

Grants that were found are kept for a short time (``cache_ttl``) in the process, so that the requests of a
caller with access read no storage at all. Only grants that exist are kept: a caller without one reads the
same rows every time (a new grant works at once, and an unknown tenant still costs what a hidden one costs).
A change or revoke through :class:`~shared.services.tenants.TenantService` calls :meth:`AccessService.forget`,
which takes effect at once in that process; other processes see it within ``cache_ttl``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from shared.auth.cache import ExpiringCache
from shared.domain import PLATFORM_ADMIN_ROLE, Grant, Principal, Role, role_at_least
from shared.errors import RoleTooLow, TenantNotFound
from shared.ports import GrantRepository, TenantRepository

__all__ = ["MAX_CACHED_GRANTS", "AccessService"]

# A bound on memory: far more callers than one process serves within a TTL.
MAX_CACHED_GRANTS = 10_000
_GrantKey = tuple[str, str, str]  # (managed tenant, principal's home tenant, principal's object id)


class AccessService:
    """Answers "may this principal do that on this tenant?" from the grant table.

    Args:
        tenants: the registered managed tenants.
        grants: the grants (the truth for authorization).
        clock: the service clock.
        cache_ttl: how long a grant (and a tenant's registration) that was found is trusted without a read;
            zero reads storage on every check. This is how long a revoke made elsewhere stays unseen here.
    """

    def __init__(self, *, tenants: TenantRepository, grants: GrantRepository,
                 clock: Callable[[], datetime], cache_ttl: timedelta = timedelta(0)) -> None:
        self._tenants = tenants
        self._grants = grants
        self._clock = clock
        self._ttl = cache_ttl.total_seconds()
        self._granted: ExpiringCache[_GrantKey, Grant] = ExpiringCache(
            max_entries=MAX_CACHED_GRANTS, clock=self._seconds)
        # Registrations are never withdrawn, so a tenant once seen stays registered.
        self._registered: ExpiringCache[str, bool] = ExpiringCache(
            max_entries=MAX_CACHED_GRANTS, clock=self._seconds)

    def _seconds(self) -> float:
        return self._clock().timestamp()

    def forget(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str) -> None:
        """Drop this process's copy of one grant at once (after it was changed or revoked)."""
        self._granted.discard((tenant_id.lower(), principal_tenant_id, principal_id))

    def _is_registered(self, tenant_id: str) -> bool:
        if self._registered.get(tenant_id):
            return True
        if self._tenants.get(tenant_id) is None:
            return False
        self._registered.put(tenant_id, True, expires_at=self._seconds() + self._ttl)
        return True

    def _grant(self, principal: Principal, tenant_id: str) -> Grant:
        key = (tenant_id, principal.tenant_id, principal.object_id)
        cached = self._granted.get(key)
        if cached is not None:
            return cached
        # Taken before the read: a revoke that lands while we read keeps the old grant out of the cache.
        generation = self._granted.generation
        stored = self._grants.get(tenant_id=tenant_id, principal_tenant_id=principal.tenant_id,
                                  principal_id=principal.object_id)
        # A grant can outlive its tenant's registration; only then is the tenant itself read.
        if stored is None or not self._is_registered(tenant_id):
            raise TenantNotFound("tenant not found")
        self._granted.put(key, stored.value, expires_at=self._seconds() + self._ttl, generation=generation)
        return stored.value

    def cached_grant(self, principal: Principal, tenant_id: str, minimum: Role) -> Grant | None:
        """The grant :meth:`require` would return, if this process caches it and its role suffices.

        No storage read: ``None`` means "ask :meth:`require`", which also raises every refusal. An async
        trigger calls this on its event loop and hands only a miss to a thread.
        """
        grant = self._granted.get((tenant_id.lower(), principal.tenant_id, principal.object_id))
        if grant is None or not role_at_least(grant.role, minimum):
            return None
        return grant

    def require(self, principal: Principal, tenant_id: str, minimum: Role) -> Grant:
        """Return the caller's grant on ``tenant_id`` if its role is at least ``minimum``.

        The caller's own grant is looked up first (in this process's cache, else one point read by tenant
        and principal) and a caller without one is answered at once, before the tenant is looked at: an
        unknown tenant and a tenant the caller may not see cost the same work, so neither the answer nor
        its timing tells them apart. Absence is never cached, so a new grant works at once.

        Args:
            principal: the authenticated caller, identified by home tenant and object id.
            tenant_id: the managed tenant from the route (never trusted without this lookup).
            minimum: the least role the operation needs.

        Returns:
            The caller's grant; its ``tenant_id`` is the canonical (lower-case) id to use from here on.

        Raises:
            TenantNotFound: the caller has no grant on the tenant, or the tenant is unknown (404, so
                tenants cannot be enumerated).
            RoleTooLow: the caller has a grant, but its role is too low (403).
        """
        grant = self._grant(principal, tenant_id.lower())
        if not role_at_least(grant.role, minimum):
            raise RoleTooLow(f"this operation needs the {minimum} role on the tenant")
        return grant

    def require_grant_admin(self, principal: Principal, tenant_id: str) -> Grant:
        """Like :meth:`require` with ``admin``, but a platform admin passes on any registered tenant.

        ``Platform.Admin`` (on an app-only token, see :attr:`Principal.is_platform_admin`) counts as admin
        for grant management only, so that the first admin of a newly registered tenant can be granted; it
        does not open the tenant's runs or restores. Provisioning automation registers the tenants, so for
        it the tenant is read directly; everyone else goes through :meth:`require`.
        """
        if principal.is_platform_admin:
            tenant_id = tenant_id.lower()
            if not self._is_registered(tenant_id):
                raise TenantNotFound("tenant not found")
            return Grant(tenant_id=tenant_id, principal_tenant_id=principal.tenant_id,
                         principal_id=principal.object_id, role=Role.ADMIN,
                         granted_by=PLATFORM_ADMIN_ROLE, granted_at=self._clock())
        return self.require(principal, tenant_id, Role.ADMIN)

    def readable_grants(self, principal: Principal) -> list[Grant]:
        """Return the caller's grants (any role) on registered tenants, for cross-tenant views.

        The principal-side index only says where to look: its row is written outside the grant's own
        transaction, so a grant change racing a revoke can leave a row behind with no grant. Each tenant it
        names is therefore checked like a request to it (the cached point read of :meth:`require`), and
        only grants that really exist are returned, with their stored role.
        """
        indexed = self._grants.list_for_principal(principal_tenant_id=principal.tenant_id,
                                                  principal_id=principal.object_id)
        readable: list[Grant] = []
        for entry in indexed:
            try:
                readable.append(self._grant(principal, entry.tenant_id.lower()))
            except TenantNotFound:
                continue  # a stale index row (revoked grant) or a tenant no longer registered
        return readable

    def readable_tenant_ids(self, principal: Principal) -> list[str]:
        """Return the managed tenants the caller can read (a grant that exists), for cross-tenant views."""
        return [g.tenant_id for g in self.readable_grants(principal)]
