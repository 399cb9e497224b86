"""Capturing items of a backup set: storage work per item and the per-process tenant registration cache."""

from __future__ import annotations

from typing import Any

from shared.domain import ManagedTenant, RunStatus
from shared.domain.access import CredentialRef, GraphConnection
from shared.domain.capture import CaptureItemInput
from shared.graph.errors import GraphServerError
from shared.services.capture import CaptureService
from shared.storage.memory import InMemoryBlobStore, InMemorySnapshotIndex, InMemoryTenantRepository
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fakes import RunsHarness
from tests.unit.test_backup_sets import TENANT, FakeGraph, harness, start

CLIENT_ID = "0f0e0d0c-0b0a-0908-0706-050403020100"


class CountingTenants(InMemoryTenantRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, tenant_id: str) -> ManagedTenant | None:
        self.reads += 1
        return super().get(tenant_id)


class FailingGraphClients:
    """The client factory's surface; every client fails like a Graph outage, after noting its credential."""

    def __init__(self) -> None:
        self.credential_keys: list[str] = []

    def knows(self, **_: Any) -> bool:
        return True

    def forget(self, **_: Any) -> None:
        pass

    def get(self, *, credential_key: str, **_: Any) -> Any:
        self.credential_keys.append(credential_key)
        raise GraphServerError("Microsoft Graph failed.", status_code=503)


def register(tenants: InMemoryTenantRepository, credential_name: str) -> None:
    tenants.put(ManagedTenant(tenant_id=TENANT, display_name="Contoso", graph=GraphConnection(
        client_id=CLIENT_ID, credential=CredentialRef(type="keyVaultSecret", name=credential_name))))


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_set_items_are_settled_without_reading_the_run_the_tenant_or_the_item_each_time() -> None:
    runs, sets, service = harness(FakeGraph({"settingsCatalog": 3}), batch_size=100)
    result, backup_set = await start(service, {"types": ["settingsCatalog"]}, includeFoundations=False)
    await service.plan(tenant_id=TENANT, run_id=result.run.id)
    planned = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items
    tenants, graph, seconds = CountingTenants(), FailingGraphClients(), Seconds()
    register(tenants, "a")
    capture = capture_service(runs, sets, tenants, graph, seconds)
    run_reads, item_reads = count_calls(runs.runs, "get"), count_calls(sets, "get_item")
    transactions = sets.transactions

    async def capture_all() -> None:
        for item in planned:
            outcome = await capture.capture(CaptureItemInput(
                tenant_id=TENANT, run_id=result.run.id, policy_type=item.policy_type,
                policy_id=item.source_id, attempt=3, final_attempt=True, backup_set_id=backup_set.id))
            assert outcome.status == "failed"

    await capture_all()
    # One tenant read for the three items; no run read, no item read; one write per set item.
    assert (tenants.reads, run_reads(), item_reads()) == (1, 0, 0)
    assert sets.transactions - transactions == 3
    settled = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items
    assert [(i.status, i.display_name, i.attempts) for i in settled] == [("failed", p.display_name, 3)
                                                                         for p in planned]
    assert all(i.error is not None and i.error.code == "graph-server-error" for i in settled)
    assert runs.items.counts(tenant_id=TENANT, run_id=result.run.id).failed == 3

    # A changed credential reference is picked up once the cached registration expires.
    register(tenants, "b")
    seconds.now += 59
    await capture_all()
    assert tenants.reads == 1
    seconds.now += 2
    await capture_all()
    assert tenants.reads == 2
    assert graph.credential_keys == ["keyVaultSecret:a"] * 6 + ["keyVaultSecret:b"] * 3
    assert runs.service.get(tenant_id=TENANT, run_id=result.run.id).status == RunStatus.RUNNING


def capture_service(runs: RunsHarness, sets: InMemoryBackupSetRepository, tenants: InMemoryTenantRepository,
                    graph: FailingGraphClients, seconds: Seconds) -> CaptureService:
    return CaptureService(tenants=tenants, runs=runs.service, snapshots=InMemorySnapshotIndex(),
                          blobs=InMemoryBlobStore(), graph=graph,  # type: ignore[arg-type]
                          credentials=lambda tenant: None,  # type: ignore[arg-type,return-value]
                          clock=runs.clock, backup_sets=sets, tenant_cache_seconds=60, monotonic=seconds)


def count_calls(target: Any, name: str) -> Any:
    """Wrap ``target.name`` so its calls are counted; returns a function reading the count."""
    original = getattr(target, name)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(target, name, counted)
    return lambda: calls[0]
