from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from shared.auth.access import AccessService
from shared.domain import PLATFORM_ADMIN_ROLE, AuditAction, CredentialRef, GraphConnection, Role
from shared.errors import ConcurrentUpdate, Forbidden, InvalidRequest, RoleTooLow, TenantNotFound
from shared.services.audit import AuditService
from shared.services.tenants import TenantService
from shared.storage.memory import InMemoryAuditRepository
from tests.fakes import FakeClock, InMemoryGrantRepository, InMemoryTenantRepository, make_principal

TENANT = "22222222-2222-2222-2222-222222222222"
UNKNOWN = "55555555-5555-5555-5555-555555555555"
PLATFORM = make_principal("aaaaaaaa-0000-0000-0000-000000000001", name="Platform",
                          roles=frozenset({PLATFORM_ADMIN_ROLE}), is_app=True)
ALICE = make_principal("aaaaaaaa-0000-0000-0000-000000000002", name="Alice")
BOB = make_principal("aaaaaaaa-0000-0000-0000-000000000003", name="Bob")
MALLORY = make_principal("aaaaaaaa-0000-0000-0000-000000000004", name="Mallory")
# Same object id as Alice, but from another home tenant: a different principal.
ALICE_ELSEWHERE = make_principal(ALICE.object_id, tid="77777777-7777-7777-7777-777777777777", name="Alice?")
# Platform.Admin assigned to a person: ignored, the user is an ordinary caller.
PLATFORM_USER = make_principal("aaaaaaaa-0000-0000-0000-000000000005", name="Pat",
                               roles=frozenset({PLATFORM_ADMIN_ROLE}), is_app=False)
# Every check here runs with the grant cache on, as in production.
CACHE_TTL = timedelta(seconds=30)
GRAPH = GraphConnection(client_id="0f0e0d0c-0b0a-0908-0706-050403020100",
                        credential=CredentialRef(type="keyVaultCertificate", name="graph-cert"))


@pytest.fixture
def svc():
    clock = FakeClock()
    audit = InMemoryAuditRepository()
    tenants, grants = InMemoryTenantRepository(), InMemoryGrantRepository(audit)
    access = AccessService(tenants=tenants, grants=grants, clock=clock, cache_ttl=CACHE_TTL)
    service = TenantService(tenants=tenants, grants=grants, access=access, clock=clock)
    service.register(principal=PLATFORM, tenant_id=TENANT, display_name="Contoso", graph=GRAPH)
    service.put_grant(principal=PLATFORM, tenant_id=TENANT, principal_id=ALICE.object_id,
                      role=Role.ADMIN)
    clock.advance(seconds=1)
    service.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id,
                      role=Role.READER)
    clock.advance(seconds=1)
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


def test_registering_a_new_tenant_says_it_was_created(svc):
    _, service = svc
    tenant, created = service.register(principal=PLATFORM, tenant_id=UNKNOWN, display_name="Fabrikam",
                                       graph=GRAPH)
    assert created
    assert tenant.tenant_id == UNKNOWN


def test_reregistering_keeps_original_registration(svc):
    _, service = svc
    again, created = service.register(principal=PLATFORM, tenant_id=TENANT, display_name="Contoso Ltd",
                                      graph=GRAPH)
    assert not created
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


def test_nobody_grants_changes_or_revokes_a_role_of_their_own(svc):
    access, service = svc
    for caller in (PLATFORM, ALICE):
        for call in (
            lambda c=caller: service.put_grant(principal=c, tenant_id=TENANT, principal_id=c.object_id,
                                               role=Role.ADMIN),
            lambda c=caller: service.put_grant(principal=c, tenant_id=TENANT,
                                               principal_id=c.object_id.upper(), role=Role.READER,
                                               principal_tenant_id=c.tenant_id.upper()),
            lambda c=caller: service.delete_grant(principal=c, tenant_id=TENANT, principal_id=c.object_id),
        ):
            with pytest.raises(Forbidden) as err:
                call()
            assert (err.value.status, err.value.instance_code) == (403, "self-grant-forbidden")
    assert access.require(ALICE, TENANT, Role.ADMIN).role == Role.ADMIN


def test_platform_admin_role_on_a_user_token_is_ignored(svc):
    _, service = svc
    assert not PLATFORM_USER.is_platform_admin
    with pytest.raises(Forbidden):
        service.register(principal=PLATFORM_USER, tenant_id=UNKNOWN, display_name="X", graph=GRAPH)
    with pytest.raises(TenantNotFound):
        service.put_grant(principal=PLATFORM_USER, tenant_id=TENANT, principal_id=BOB.object_id,
                          role=Role.ADMIN)
    with pytest.raises(TenantNotFound):
        service.list_grants(principal=PLATFORM_USER, tenant_id=TENANT)


def test_grants_are_keyed_by_home_tenant_and_object_id(svc):
    access, service = svc
    with pytest.raises(TenantNotFound):
        access.require(ALICE_ELSEWHERE, TENANT, Role.READER)
    assert service.list_for(ALICE_ELSEWHERE) == []
    assert access.readable_tenant_ids(ALICE_ELSEWHERE) == []
    # A grant for the other tenant's principal is a separate grant.
    service.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=ALICE.object_id,
                      principal_tenant_id=ALICE_ELSEWHERE.tenant_id, role=Role.READER)
    assert access.require(ALICE_ELSEWHERE, TENANT, Role.READER).role == Role.READER
    assert access.require(ALICE, TENANT, Role.ADMIN).role == Role.ADMIN
    keys = [(g.principal_tenant_id, g.principal_id, g.role)
            for g in service.list_grants(principal=ALICE, tenant_id=TENANT)]
    assert (ALICE_ELSEWHERE.tenant_id, ALICE.object_id, Role.READER) in keys
    assert (ALICE.tenant_id, ALICE.object_id, Role.ADMIN) in keys


def test_every_grant_change_is_audited_newest_first(svc):
    access, service = svc
    service.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id, role=Role.OPERATOR)
    service._clock.advance(seconds=1)
    assert service.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    assert not service.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    audit = AuditService(audit=service._grants.audit, access=access)  # the fixture's repository
    events = audit.list(principal=ALICE, tenant_id=TENANT).items
    summary = [(e.action, e.actor.id, e.actor.tenant_id, e.subject.id if e.subject else None,
                e.old_role, e.new_role) for e in events]
    assert summary == [
        (AuditAction.GRANT_DELETE, ALICE.object_id, ALICE.tenant_id, BOB.object_id, Role.OPERATOR, None),
        (AuditAction.GRANT_PUT, ALICE.object_id, ALICE.tenant_id, BOB.object_id, Role.READER, Role.OPERATOR),
        (AuditAction.GRANT_PUT, ALICE.object_id, ALICE.tenant_id, BOB.object_id, None, Role.READER),
        (AuditAction.GRANT_PUT, PLATFORM.object_id, PLATFORM.tenant_id, ALICE.object_id, None, Role.ADMIN),
    ]
    assert all(e.tenant_id == TENANT and e.subject and e.subject.tenant_id == BOB.tenant_id
               for e in events[:3])
    assert events[0].actor.name == "Alice"
    # Readers read the audit; strangers get 404.
    service.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id, role=Role.READER)
    assert audit.list(principal=BOB, tenant_id=TENANT, top=2).continuation is not None
    with pytest.raises(TenantNotFound):
        audit.list(principal=MALLORY, tenant_id=TENANT)


def test_a_grant_that_keeps_changing_underneath_is_a_conflict_and_is_not_audited(svc):
    access, service = svc
    grants = service._grants

    class Racing:
        """Every write loses against a concurrent change."""

        def __getattr__(self, name):
            return getattr(grants, name)

        def put(self, grant, *, event, etag):
            raise ConcurrentUpdate("changed meanwhile")

    racing = TenantService(tenants=access._tenants, grants=Racing(), access=access, clock=FakeClock())
    before = grants.audit.list(tenant_id=TENANT).items
    with pytest.raises(ConcurrentUpdate):
        racing.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id, role=Role.ADMIN)
    assert grants.audit.list(tenant_id=TENANT).items == before
    assert access.require(BOB, TENANT, Role.READER).role == Role.READER


class CountingReads:
    """Wraps a repository and records every call as ``"<label>.<method>"``."""

    def __init__(self, inner, label, log):
        self._inner, self._label, self._log = inner, label, log

    def __getattr__(self, name):
        method = getattr(self._inner, name)

        def call(*args, **kwargs):
            self._log.append(f"{self._label}.{name}")
            return method(*args, **kwargs)
        return call


@pytest.mark.parametrize("caller", [MALLORY, PLATFORM_USER, ALICE_ELSEWHERE])
@pytest.mark.parametrize("check", ["require", "require_grant_admin"])
def test_unknown_and_unseen_tenants_cost_the_same_reads(svc, caller, check):
    _, service = svc

    def reads_for(tenant_id):
        log: list[str] = []
        access = AccessService(tenants=CountingReads(service._tenants, "tenants", log),
                               grants=CountingReads(service._grants, "grants", log), clock=FakeClock(),
                               cache_ttl=CACHE_TTL)
        # Others' grants (and the tenant's registration) are in the cache: a stranger still gains nothing.
        access.require(ALICE, TENANT, Role.READER)
        access.require(BOB, TENANT, Role.READER)
        log.clear()
        call = (lambda: access.require(caller, tenant_id, Role.READER)) if check == "require" else (
            lambda: access.require_grant_admin(caller, tenant_id))
        with pytest.raises(TenantNotFound) as err:
            call()
        return log, str(err.value), err.value.instance_code

    existing, unknown = reads_for(TENANT), reads_for(UNKNOWN)
    assert existing == unknown
    assert existing[0] == ["grants.get"]  # the caller's own grant, one point read, and nothing else
