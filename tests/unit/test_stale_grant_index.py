"""A principal-side index row left behind without its grant opens nothing (list of tenants, progress)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.auth.access import AccessService
from shared.domain import PLATFORM_ADMIN_ROLE, CredentialRef, Grant, GraphConnection, Role, RunKind, RunTarget
from shared.services.tenants import TenantService
from tests.fakes import (
    FakeClock,
    InMemoryGrantRepository,
    InMemoryTenantRepository,
    RunsHarness,
    make_principal,
)

KEPT = "22222222-2222-2222-2222-222222222222"
REVOKED = "33333333-3333-3333-3333-333333333333"
PLATFORM = make_principal("aaaaaaaa-0000-0000-0000-000000000001", name="Platform",
                          roles=frozenset({PLATFORM_ADMIN_ROLE}), is_app=True)
BOB = make_principal("aaaaaaaa-0000-0000-0000-000000000003", name="Bob")
GRAPH = GraphConnection(client_id="0f0e0d0c-0b0a-0908-0706-050403020100",
                        credential=CredentialRef(type="keyVaultCertificate", name="graph-cert"))


class GrantsWithStaleIndex(InMemoryGrantRepository):
    """Grants whose principal-side index still holds rows of grants that were revoked.

    This is what a grant change racing a revoke can leave in table storage: the index row is written
    outside the grant's own transaction.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stale: list[Grant] = []

    def list_for_principal(self, *, principal_tenant_id: str, principal_id: str) -> list[Grant]:
        rows = {g.tenant_id: g for g in super().list_for_principal(principal_tenant_id=principal_tenant_id,
                                                                     principal_id=principal_id)}
        # One index row per tenant: a stale one stands where the current one should be.
        rows.update((g.tenant_id, g) for g in self.stale
                    if (g.principal_tenant_id, g.principal_id) == (principal_tenant_id, principal_id))
        return sorted(rows.values(), key=lambda g: g.tenant_id)


@pytest.fixture
def world() -> tuple[AccessService, TenantService, GrantsWithStaleIndex]:
    clock = FakeClock()
    tenants, grants = InMemoryTenantRepository(), GrantsWithStaleIndex()
    access = AccessService(tenants=tenants, grants=grants, clock=clock, cache_ttl=timedelta(seconds=30))
    service = TenantService(tenants=tenants, grants=grants, access=access, clock=clock)
    for tenant_id in (KEPT, REVOKED):
        service.register(principal=PLATFORM, tenant_id=tenant_id, display_name=tenant_id[:4], graph=GRAPH)
        service.put_grant(principal=PLATFORM, tenant_id=tenant_id, principal_id=BOB.object_id,
                          role=Role.READER)
    # The revoke removed the grant, but its index row survived the race.
    revoked = grants.get(tenant_id=REVOKED, principal_tenant_id=BOB.tenant_id, principal_id=BOB.object_id)
    assert revoked is not None
    service.delete_grant(principal=PLATFORM, tenant_id=REVOKED, principal_id=BOB.object_id)
    grants.stale.append(revoked.value)
    assert [g.tenant_id for g in grants.list_for_principal(
        principal_tenant_id=BOB.tenant_id, principal_id=BOB.object_id)] == [KEPT, REVOKED]
    return access, service, grants


def test_a_revoked_caller_no_longer_sees_the_tenant_in_the_tenant_list(world):
    _, service, _ = world
    assert [a.tenant.tenant_id for a in service.list_for(BOB)] == [KEPT]


async def test_a_revoked_callers_progress_leaves_out_the_tenants_runs(world):
    access, _, _ = world
    runs = RunsHarness()
    ada = make_principal()
    for tenant_id in (KEPT, REVOKED):
        await runs.service.start(principal=ada, tenant_id=tenant_id, kind=RunKind.POLICY_CAPTURE,
                                 target=RunTarget(policy_type="settingsCatalog", policy_id="pol-1"),
                                 scope={}, idempotency_key=None)
    # What GET /api/progress does.
    entries = runs.service.progress(tenant_ids=access.readable_tenant_ids(BOB), now=runs.clock())
    assert {e.run.tenant_id for e in entries} == {KEPT}


def test_the_listed_role_is_the_grants_not_the_index_rows(world):
    _, service, grants = world
    kept = grants.get(tenant_id=KEPT, principal_tenant_id=BOB.tenant_id, principal_id=BOB.object_id)
    assert kept is not None
    # An index row left from an earlier role must not raise the caller's role in the list.
    grants.stale.append(kept.value.model_copy(update={"role": Role.ADMIN}))
    assert [(a.tenant.tenant_id, a.role) for a in service.list_for(BOB)] == [(KEPT, Role.READER)]
