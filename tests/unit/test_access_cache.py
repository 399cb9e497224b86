"""The per-process grant cache: reads saved, revokes honoured at once here and within the TTL elsewhere.

Two processes are modelled as two :class:`AccessService` (each with its :class:`TenantService`) over the
same in-memory tables, with one fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from shared.auth.access import AccessService
from shared.auth.cache import ExpiringCache
from shared.domain import PLATFORM_ADMIN_ROLE, CredentialRef, GraphConnection, Role
from shared.errors import RoleTooLow, TenantNotFound
from shared.services.tenants import TenantService
from tests.fakes import FakeClock, InMemoryGrantRepository, InMemoryTenantRepository, make_principal

TTL = timedelta(seconds=30)
TENANT = "22222222-2222-2222-2222-222222222222"
PLATFORM = make_principal("aaaaaaaa-0000-0000-0000-000000000001", name="Platform",
                          roles=frozenset({PLATFORM_ADMIN_ROLE}), is_app=True)
ALICE = make_principal("aaaaaaaa-0000-0000-0000-000000000002", name="Alice")
BOB = make_principal("aaaaaaaa-0000-0000-0000-000000000003", name="Bob")
# Bob's object id in another home tenant: someone else, who must never ride on Bob's cached grant.
BOB_ELSEWHERE = make_principal(BOB.object_id, tid="77777777-7777-7777-7777-777777777777", name="Bob?")
GRAPH = GraphConnection(client_id="0f0e0d0c-0b0a-0908-0706-050403020100",
                        credential=CredentialRef(type="keyVaultCertificate", name="graph-cert"))


class Counting:
    """Wraps a repository, records each call, and may run a hook right after a ``get``."""

    def __init__(self, inner: Any, label: str, log: list[str]) -> None:
        self._inner, self._label, self._log = inner, label, log
        self.after_get: Any = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append(f"{self._label}.{name}")
            result = method(*args, **kwargs)
            if name == "get" and self.after_get is not None:
                hook, self.after_get = self.after_get, None
                hook()
            return result
        return call


@dataclass
class Process:
    """One app process: its own access cache, over the shared tables."""

    access: AccessService
    tenants: TenantService
    grants: Counting
    reads: list[str] = field(default_factory=list)


@dataclass
class World:
    clock: FakeClock
    tables: tuple[InMemoryTenantRepository, InMemoryGrantRepository]

    def process(self, ttl: timedelta = TTL) -> Process:
        log: list[str] = []
        tenants, grants = self.tables
        counted_grants = Counting(grants, "grants", log)
        access = AccessService(tenants=Counting(tenants, "tenants", log), grants=counted_grants,
                               clock=self.clock, cache_ttl=ttl)
        service = TenantService(tenants=tenants, grants=grants, access=access, clock=self.clock)
        return Process(access=access, tenants=service, grants=counted_grants, reads=log)


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    world = World(clock=clock, tables=(InMemoryTenantRepository(), InMemoryGrantRepository()))
    setup = world.process()
    setup.tenants.register(principal=PLATFORM, tenant_id=TENANT, display_name="Contoso", graph=GRAPH)
    setup.tenants.put_grant(principal=PLATFORM, tenant_id=TENANT, principal_id=ALICE.object_id,
                            role=Role.ADMIN)
    setup.tenants.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id,
                            role=Role.OPERATOR)
    return world


def test_a_caller_with_a_grant_reads_nothing_until_the_ttl_ends(world):
    p = world.process()
    assert p.access.require(BOB, TENANT, Role.OPERATOR).role == Role.OPERATOR
    assert p.reads == ["grants.get", "tenants.get"]
    p.reads.clear()
    world.clock.advance(seconds=TTL.total_seconds() - 1)
    for minimum in (Role.READER, Role.OPERATOR):
        assert p.access.require(BOB, TENANT.upper(), minimum).tenant_id == TENANT
    with pytest.raises(RoleTooLow):  # the cached role is still checked against each operation
        p.access.require(BOB, TENANT, Role.ADMIN)
    assert p.reads == []
    world.clock.advance(seconds=1)
    p.access.require(BOB, TENANT, Role.READER)
    assert p.reads == ["grants.get", "tenants.get"]  # both rows are read again


def test_a_revoke_in_another_process_ends_access_here_within_the_ttl(world):
    here, elsewhere = world.process(), world.process()
    here.access.require(BOB, TENANT, Role.OPERATOR)
    assert elsewhere.tenants.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    with pytest.raises(TenantNotFound):
        elsewhere.access.require(BOB, TENANT, Role.READER)
    world.clock.advance(seconds=TTL.total_seconds() - 1)
    assert here.access.require(BOB, TENANT, Role.OPERATOR).role == Role.OPERATOR  # the stated window
    world.clock.advance(seconds=1)
    with pytest.raises(TenantNotFound):
        here.access.require(BOB, TENANT, Role.READER)


def test_a_revoke_or_role_change_through_the_service_takes_effect_at_once_in_its_process(world):
    p = world.process()
    p.access.require(BOB, TENANT, Role.OPERATOR)
    p.tenants.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id, role=Role.READER)
    with pytest.raises(RoleTooLow):
        p.access.require(BOB, TENANT, Role.OPERATOR)
    p.tenants.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id, role=Role.ADMIN)
    assert p.access.require(BOB, TENANT, Role.ADMIN).role == Role.ADMIN
    assert p.tenants.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    with pytest.raises(TenantNotFound):
        p.access.require(BOB, TENANT, Role.READER)


def test_deleting_through_the_service_a_grant_already_gone_still_clears_this_process(world):
    here, elsewhere = world.process(), world.process()
    here.access.require(BOB, TENANT, Role.OPERATOR)
    assert elsewhere.tenants.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    # An admin who sees Bob still working here repeats the revoke through this process.
    assert not here.tenants.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    with pytest.raises(TenantNotFound):
        here.access.require(BOB, TENANT, Role.READER)


def test_a_revoke_during_a_read_keeps_the_old_grant_out_of_the_cache(world):
    p = world.process()
    # Bob's read has fetched his grant when the revoke lands, before the result is cached.
    p.grants.after_get = lambda: p.tenants.delete_grant(principal=ALICE, tenant_id=TENANT,
                                                        principal_id=BOB.object_id)
    assert p.access.require(BOB, TENANT, Role.OPERATOR).role == Role.OPERATOR  # it began before the revoke
    with pytest.raises(TenantNotFound):
        p.access.require(BOB, TENANT, Role.READER)


def test_no_grant_is_never_cached_so_a_new_grant_works_at_once(world):
    here, elsewhere = world.process(), world.process()
    carol = make_principal("aaaaaaaa-0000-0000-0000-000000000009", name="Carol")
    for _ in range(2):
        with pytest.raises(TenantNotFound):
            here.access.require(carol, TENANT, Role.READER)
    assert here.reads == ["grants.get", "grants.get"]  # each refusal reads again
    elsewhere.tenants.put_grant(principal=ALICE, tenant_id=TENANT, principal_id=carol.object_id,
                                role=Role.READER)
    assert here.access.require(carol, TENANT, Role.READER).role == Role.READER


def test_entries_are_per_principal_home_tenant_and_object_id(world):
    p = world.process()
    p.access.require(BOB, TENANT, Role.OPERATOR)
    with pytest.raises(TenantNotFound):
        p.access.require(BOB_ELSEWHERE, TENANT, Role.READER)
    with pytest.raises(TenantNotFound):
        p.access.require(BOB, "55555555-5555-5555-5555-555555555555", Role.READER)


def test_platform_admin_checks_read_the_registration_once_per_ttl(world):
    p = world.process()
    for _ in range(3):
        assert p.access.require_grant_admin(PLATFORM, TENANT).role == Role.ADMIN
    assert p.reads == ["tenants.get"]


def test_a_zero_ttl_reads_on_every_check(world):
    p = world.process(ttl=timedelta(0))
    p.access.require(BOB, TENANT, Role.READER)
    p.access.require(BOB, TENANT, Role.READER)
    assert p.reads == ["grants.get", "tenants.get", "grants.get", "tenants.get"]


def test_the_cache_is_bounded_and_evicts_the_least_recently_used():
    now = [0.0]
    cache: ExpiringCache[str, int] = ExpiringCache(max_entries=2, clock=lambda: now[0])
    cache.put("a", 1, expires_at=10)
    cache.put("b", 2, expires_at=10)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3, expires_at=10)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    now[0] = 10
    assert cache.get("a") is None
    cache.put("d", 4, expires_at=10)  # already expired: not kept
    assert cache.get("d") is None


def test_the_cache_only_lookup_answers_what_require_would_and_nothing_it_would_refuse(world):
    p = world.process()
    assert p.access.cached_grant(BOB, TENANT, Role.OPERATOR) is None  # not read yet: the caller must read
    p.access.require(BOB, TENANT, Role.OPERATOR)
    p.reads.clear()
    assert p.access.cached_grant(BOB, TENANT.upper(), Role.READER).role == Role.OPERATOR
    assert p.access.cached_grant(BOB, TENANT, Role.ADMIN) is None  # require raises RoleTooLow
    assert p.access.cached_grant(BOB_ELSEWHERE, TENANT, Role.READER) is None
    assert p.reads == []
    world.clock.advance(seconds=TTL.total_seconds())
    assert p.access.cached_grant(BOB, TENANT, Role.READER) is None  # past the window
    p.access.require(BOB, TENANT, Role.OPERATOR)
    assert p.tenants.delete_grant(principal=ALICE, tenant_id=TENANT, principal_id=BOB.object_id)
    assert p.access.cached_grant(BOB, TENANT, Role.READER) is None  # a revoke here takes effect at once
