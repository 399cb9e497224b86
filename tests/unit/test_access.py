from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.auth.access import AccessService
from shared.domain import PLATFORM_ADMIN_ROLE, CredentialRef, GraphConnection, Role
from shared.errors import Forbidden, InvalidRequest, RoleTooLow, TenantNotFound
from shared.services.tenants import TenantService
from tests.fakes import FakeClock, InMemoryGrantRepository, InMemoryTenantRepository, make_principal

TENANT = "22222222-2222-2222-2222-222222222222"
UNKNOWN = "55555555-5555-5555-5555-555555555555"
PLATFORM = make_principal("aaaaaaaa-0000-0000-0000-000000000001", name="Platform",
                          roles=frozenset({PLATFORM_ADMIN_ROLE}), is_app=True)
ALICE = make_principal("aaaaaaaa-0000-0000-0000-000000000002", name="Alice")
BOB = make_principal("aaaaaaaa-0000-0000-0000-000000000003", name="Bob")
MALLORY = make_principal("aaaaaaaa-0000-0000-0000-000000000004", name="Mallory")
GRAPH = GraphConnection(client_id="0f0e0d0c-0b0a-0908-0706-050403020100",
                        credential=CredentialRef(type="keyVaultCertificate", name="graph-cert"))


@pytest.fixture
def svc():
    clock = FakeClock()
    tenants, grants = InMemoryTenantRepository(), InMemoryGrantRepository()
    access = AccessService(tenants=tenants, grants=grants, clock=clock)
    service = TenantService(tenants=tenants, grants=grants, access=access, clock=clock)
    service.register(principal=PLATFORM, tenant_id=TENANT, display_name="Contoso", graph=GRAPH)
    service.put_grant(principal=PLATFORM, tenant_id=TENANT, principal_id=ALICE.object_id,
                      role=Role.ADMIN)
    service.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id,
                      role=Role.READER)
    return access, service


def test_no_grant_is_404_not_403(svc):
    access, _ = svc
    with pytest.raises(TenantNotFound) as err:
        access.require(MALLORY, TENANT, Role.READER)
    assert err.value.status == 404


def test_unknown_tenant_is_404_even_for_platform_admin(svc):
    access, service = svc
    with pytest.raises(TenantNotFound):
        access.require(ALICE, UNKNOWN, Role.READER)
    with pytest.raises(TenantNotFound):
        service.put_grant(principal=PLATFORM, tenant_id=UNKNOWN, principal_id=BOB.object_id,
                          role=Role.ADMIN)


def test_role_too_low_is_403(svc):
    access, _ = svc
    assert access.require(BOB, TENANT, Role.READER).role == Role.READER
    with pytest.raises(RoleTooLow) as err:
        access.require(BOB, TENANT, Role.OPERATOR)
    assert (err.value.status, err.value.code) == (403, "role-too-low")


def test_roles_are_ordered(svc):
    access, _ = svc
    for minimum in Role:
        assert access.require(ALICE, TENANT, minimum).role == Role.ADMIN


def test_tenant_ids_are_case_insensitive(svc):
    access, _ = svc
    assert access.require(ALICE, TENANT.upper(), Role.ADMIN).tenant_id == TENANT


def test_platform_admin_manages_grants_but_does_not_read_runs(svc):
    access, service = svc
    assert [g.principal_id for g in service.list_grants(principal=PLATFORM, tenant_id=TENANT)] \
        == sorted([ALICE.object_id, BOB.object_id])
    with pytest.raises(TenantNotFound):
        access.require(PLATFORM, TENANT, Role.READER)


def test_only_admins_manage_grants(svc):
    _, service = svc
    with pytest.raises(RoleTooLow):
        service.put_grant(principal=BOB, tenant_id=TENANT, principal_id=BOB.object_id,
                          role=Role.ADMIN)
    with pytest.raises(TenantNotFound):
        service.delete_grant(principal=MALLORY, tenant_id=TENANT, principal_id=BOB.object_id)


def test_only_platform_admin_registers_tenants(svc):
    _, service = svc
    with pytest.raises(Forbidden):
        service.register(principal=ALICE, tenant_id=UNKNOWN, display_name="X", graph=GRAPH)
    with pytest.raises(InvalidRequest):
        service.register(principal=PLATFORM, tenant_id="not-a-guid", display_name="X", graph=GRAPH)


def test_list_for_shows_tenants_with_grants_and_role(svc):
    _, service = svc
    listed = service.list_for(BOB)
    assert [(a.tenant.tenant_id, a.role) for a in listed] == [(TENANT, Role.READER)]
    assert service.list_for(MALLORY) == []


def test_delete_grant_revokes_access(svc):
    access, service = svc
    assert service.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    assert not service.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    with pytest.raises(TenantNotFound):
        access.require(BOB, TENANT, Role.READER)
    assert access.readable_tenant_ids(BOB) == []


def test_reregistering_keeps_original_registration(svc):
    _, service = svc
    again = service.register(principal=PLATFORM, tenant_id=TENANT, display_name="Contoso Ltd",
                             graph=GRAPH)
    assert again.display_name == "Contoso Ltd"
    assert again.registered_by == PLATFORM.object_id


def test_graph_connection_body_rejects_a_pasted_secret():
    body = {"clientId": "0f0e0d0c-0b0a-0908-0706-050403020100",
            "credential": {"type": "keyVaultSecret", "name": "abc8Q~aBcDeFgHiJkLmNoPqRsTuVwXyZ0123"}}
    with pytest.raises(ValidationError) as err:
        GraphConnection.model_validate(body)
    assert "aBcDeFg" not in str(err.value.errors(include_input=False))
    with pytest.raises(ValidationError):
        GraphConnection.model_validate({**body, "credential": {"type": "password", "name": "x"}})
