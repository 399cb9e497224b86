"""Capturing items of a backup set in chunks: concurrent reads, one transaction per table, outcomes per item.

Also the per-process tenant registration cache the captures read through.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, cast

import pytest

from shared.domain import BackupSetItem, ManagedTenant, RunStatus
from shared.domain.access import CredentialRef, GraphConnection
from shared.domain.backupsets import PolicyRef
from shared.domain.batches import CaptureChunkInput
from shared.domain.normalise import normalised_hash
from shared.graph.client import GraphClient
from shared.graph.errors import GraphServerError, GraphThrottled
from shared.services.capture import POLICY_NORMAL_FORM, CaptureService
from shared.storage.errors import StorageUnavailable
from shared.storage.memory import InMemoryBlobStore, InMemorySnapshotIndex, InMemoryTenantRepository
from shared.storage.memory_backupsets import InMemoryBackupSetRepository
from tests.fake_graph import FakeGraph as FakeGraphTenants
from tests.fake_graph import FakeGraphClient
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


class SlowClient(FakeGraphClient):
    """A fake tenant's client whose object reads yield to the loop, count reads in flight, and can fail."""

    def __init__(self, clients: ReadingGraphClients, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients = clients

    async def get(self, url: str, *, params: Any = None) -> dict[str, Any]:
        clients = self._clients
        clients.in_flight += 1
        clients.peak = max(clients.peak, clients.in_flight)
        try:
            await asyncio.sleep(clients.delays.get(url.rsplit("/", 1)[-1], 0.01))
            failure = clients.failures.get(url.rsplit("/", 1)[-1])
            if failure is not None:
                raise failure
            return await super().get(url, params=params)
        finally:
            clients.in_flight -= 1


class ReadingGraphClients:
    """The client factory's surface over the in-memory Graph: reads that succeed, or fail as told."""

    def __init__(self) -> None:
        self.graph = FakeGraphTenants()
        self.failures: dict[str, Exception] = {}
        self.delays: dict[str, float] = {}
        self.clients_made = 0
        self.in_flight = 0
        self.peak = 0

    def knows(self, **_: Any) -> bool:
        return True

    def forget(self, **_: Any) -> None:
        pass

    def get(self, *, tenant_id: str, **_: Any) -> GraphClient:
        self.clients_made += 1
        return cast("GraphClient", SlowClient(self, self.graph, self.graph.tenant(tenant_id), read_only=True))


class FlakyBlobs(InMemoryBlobStore):
    """Blob storage that refuses the bodies of the policies named in ``refuse``."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: set[str] = set()

    def put_json(self, tenant_id: str, body: bytes) -> tuple[str, str, int]:
        if json.loads(body)["id"] in self.refuse:
            raise StorageUnavailable("storage is busy")
        return super().put_json(tenant_id, body)


def register(tenants: InMemoryTenantRepository, credential_name: str) -> None:
    tenants.put(ManagedTenant(tenant_id=TENANT, display_name="Contoso", graph=GraphConnection(
        client_id=CLIENT_ID, credential=CredentialRef(type="keyVaultSecret", name=credential_name))))


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def capture_service(runs: RunsHarness, sets: InMemoryBackupSetRepository, tenants: InMemoryTenantRepository,
                    graph: Any, seconds: Seconds | None = None, blobs: InMemoryBlobStore | None = None,
                    record_within_seconds: float = 5.0) -> CaptureService:
    return CaptureService(tenants=tenants, runs=runs.service, snapshots=InMemorySnapshotIndex(),
                          blobs=blobs or InMemoryBlobStore(), graph=graph,
                          credentials=lambda tenant: None,  # type: ignore[arg-type,return-value]
                          clock=runs.clock, backup_sets=sets, tenant_cache_seconds=60,
                          monotonic=seconds or Seconds(), record_within_seconds=record_within_seconds)


def count_calls(target: Any, name: str) -> Any:
    """Wrap ``target.name`` so its calls are counted; returns a function reading the count."""
    original = getattr(target, name)
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(target, name, counted)
    return lambda: calls[0]


@dataclass
class Planned:
    """A planned backup set (and its run) of settings catalog policies."""

    runs: RunsHarness
    sets: InMemoryBackupSetRepository
    run_id: str
    backup_set_id: str
    items: list[BackupSetItem]

    def chunk(self, members: list[PolicyRef] | None = None, *, attempt: int = 1,
              final: bool = False) -> CaptureChunkInput:
        return CaptureChunkInput(
            tenant_id=TENANT, run_id=self.run_id, backup_set_id=self.backup_set_id,
            members=members if members is not None else [PolicyRef(type=i.policy_type, id=i.source_id)
                                                         for i in self.items],
            attempt=attempt, final_attempt=final)

    def set_items(self) -> dict[str, BackupSetItem]:
        page = self.sets.list_items(tenant_id=TENANT, backup_set_id=self.backup_set_id)
        return {i.item_id: i for i in page.items}

    def run_items(self) -> dict[str, Any]:
        return {i.item_id: i for i in self.runs.items.list(tenant_id=TENANT, run_id=self.run_id).items}


async def planned_set(count: int, graph: ReadingGraphClients | None = None) -> Planned:
    runs, sets, service = harness(FakeGraph({"settingsCatalog": count}), batch_size=100)
    result, backup_set = await start(service, {"types": ["settingsCatalog"]}, includeFoundations=False)
    await service.plan(tenant_id=TENANT, run_id=result.run.id)
    items = sets.list_items(tenant_id=TENANT, backup_set_id=backup_set.id).items
    if graph is not None:
        tenant = graph.graph.tenant(TENANT)
        for item in items:
            tenant.add("settingsCatalog", {
                "name": f"Policy {item.source_id}", "platforms": "windows10", "technologies": "mdm",
                "roleScopeTagIds": ["0"], "assignments": [],
                "settings": [{"settingInstance": {"settingDefinitionId": f"{item.source_id}_x",
                                                  "value": "on"}}],
            }, object_id=item.source_id)
    return Planned(runs, sets, result.run.id, backup_set.id, items)


async def test_a_chunk_is_read_concurrently_and_recorded_in_one_transaction_per_table() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(5, graph)
    tenants = CountingTenants()
    register(tenants, "a")
    blobs = InMemoryBlobStore()
    capture = capture_service(planned.runs, planned.sets, tenants, graph, blobs=blobs)
    run_reads, item_reads = count_calls(planned.runs.runs, "get"), count_calls(planned.sets, "get_item")
    set_writes, run_writes = planned.sets.transactions, planned.runs.items.transactions

    results = await capture.capture_chunk(planned.chunk())

    # One result per member, in the members' order; the reads overlapped.
    assert [r.item_id for r in results] == [i.item_id for i in planned.items]
    assert {r.status for r in results} == {"succeeded"}
    assert graph.peak > 1
    # One transaction on the run's items and one on the set's items; no read of the run or the items; one
    # tenant read and one client for the chunk.
    assert planned.sets.transactions - set_writes == 1
    assert planned.runs.items.transactions - run_writes == 1
    assert (run_reads(), item_reads(), tenants.reads, graph.clients_made) == (0, 0, 1, 1)
    stored = planned.set_items()
    for result, item in zip(results, planned.items, strict=True):
        settled = stored[item.item_id]
        body = json.loads(blobs.get_json(TENANT, settled.content_hash or ""))
        assert (settled.status, settled.display_name, settled.batch, settled.attempts) == (
            "captured", f"Policy {item.source_id}", item.batch, 1)
        assert settled.content_hash == result.content_hash
        assert settled.normalised_hash == normalised_hash(body, POLICY_NORMAL_FORM)
    assert planned.runs.items.counts(tenant_id=TENANT, run_id=planned.run_id).succeeded == 5

    # A repeated activity writes the same.
    again = await capture.capture_chunk(planned.chunk())
    assert again == results
    assert planned.set_items() == stored


async def test_outcomes_and_retries_stay_per_item_within_a_chunk() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(4, graph)
    tenants = InMemoryTenantRepository()
    register(tenants, "a")
    capture = capture_service(planned.runs, planned.sets, tenants, graph)
    busy, gone, *fine = planned.items
    graph.failures[busy.source_id] = GraphThrottled("busy", retry_after=9)
    graph.graph.tenant(TENANT).delete("settingsCatalog", gone.source_id)

    results = await capture.capture_chunk(planned.chunk())

    assert [(r.status, r.retry_after_seconds) for r in results] == [
        ("retry", 9), ("failed", None), ("succeeded", None), ("succeeded", None)]
    assert results[1].error is not None
    assert results[1].error.code == "policy-not-found"
    # The item asking to retry wrote nothing; the failure is recorded on the run and on the set.
    stored, on_run = planned.set_items(), planned.run_items()
    assert stored[busy.item_id].status == "pending"
    assert busy.item_id not in on_run
    assert (stored[gone.item_id].status, stored[gone.item_id].display_name) == ("failed", gone.display_name)
    assert on_run[gone.item_id].status == "failed"
    assert all(stored[i.item_id].status == "captured" for i in fine)

    # The retry round's chunk holds only the item that asked; on the final attempt a fault settles it failed.
    last = await capture.capture_chunk(planned.chunk([PolicyRef(type=busy.policy_type, id=busy.source_id)],
                                                     attempt=3, final=True))
    assert [(r.item_id, r.status) for r in last] == [(busy.item_id, "failed")]
    settled = planned.set_items()[busy.item_id]
    assert (settled.status, settled.attempts) == ("failed", 3)
    assert planned.run_items()[busy.item_id].status == "failed"


async def test_a_slow_item_holds_its_neighbours_outcomes_back_only_for_a_while() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(4, graph)
    tenants = InMemoryTenantRepository()
    register(tenants, "a")
    capture = capture_service(planned.runs, planned.sets, tenants, graph, record_within_seconds=0.05)
    slow, *quick = planned.items
    graph.delays[slow.source_id] = 0.5
    set_writes, run_writes = planned.sets.transactions, planned.runs.items.transactions

    running = asyncio.create_task(capture.capture_chunk(planned.chunk()))
    await asyncio.sleep(0.3)
    # The quick items are recorded while the slow one is still being read.
    assert not running.done()
    assert sorted(planned.run_items()) == sorted(i.item_id for i in quick)
    assert [planned.set_items()[i.item_id].status for i in planned.items] == ["pending"] + ["captured"] * 3
    results = await running
    assert [r.status for r in results] == ["succeeded"] * 4
    assert planned.set_items()[slow.item_id].status == "captured"
    assert slow.item_id in planned.run_items()
    # Two writes per table: the quick ones together, then the slow one.
    assert (planned.sets.transactions - set_writes, planned.runs.items.transactions - run_writes) == (2, 2)


async def test_an_item_never_planned_is_not_created_and_the_chunks_planned_items_still_settle() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(3, graph)
    graph.graph.tenant(TENANT).add("settingsCatalog", {"name": "Stray", "settings": []}, object_id="stray")
    tenants = InMemoryTenantRepository()
    register(tenants, "a")
    capture = capture_service(planned.runs, planned.sets, tenants, graph)
    members = [PolicyRef(type=i.policy_type, id=i.source_id) for i in planned.items]
    members.insert(1, PolicyRef(type="settingsCatalog", id="stray"))

    results = await capture.capture_chunk(planned.chunk(members))

    assert [r.status for r in results] == ["succeeded"] * 4
    stored = planned.set_items()
    assert "settingsCatalog:stray" not in stored
    assert [stored[i.item_id].status for i in planned.items] == ["captured"] * 3


async def test_a_body_that_cannot_be_stored_retries_that_item_alone() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(3, graph)
    tenants = InMemoryTenantRepository()
    register(tenants, "a")
    blobs = FlakyBlobs()
    capture = capture_service(planned.runs, planned.sets, tenants, graph, blobs=blobs)
    refused = planned.items[1]
    blobs.refuse.add(refused.source_id)

    results = await capture.capture_chunk(planned.chunk())
    assert [r.status for r in results] == ["succeeded", "retry", "succeeded"]
    assert results[1].error is not None
    assert results[1].error.code == "internal-error"
    # On the final attempt it fails unrecorded: the finish settles an item still pending as not captured.
    alone = [PolicyRef(type=refused.policy_type, id=refused.source_id)]
    last = await capture.capture_chunk(planned.chunk(alone, attempt=3, final=True))
    assert [r.status for r in last] == ["failed"]
    assert planned.set_items()[refused.item_id].status == "pending"
    assert refused.item_id not in planned.run_items()


async def test_a_chunk_whose_outcomes_cannot_be_recorded_raises() -> None:
    graph = ReadingGraphClients()
    planned = await planned_set(2, graph)
    tenants = InMemoryTenantRepository()
    register(tenants, "a")
    capture = capture_service(planned.runs, planned.sets, tenants, graph)

    def unavailable(**_: Any) -> list[str]:
        raise StorageUnavailable("storage is down")

    planned.sets.settle_items = unavailable  # type: ignore[method-assign]
    with pytest.raises(StorageUnavailable):
        await capture.capture_chunk(planned.chunk())


async def test_set_items_are_settled_without_reading_the_run_the_tenant_or_the_item_each_time() -> None:
    planned = await planned_set(3)
    tenants, graph, seconds = CountingTenants(), FailingGraphClients(), Seconds()
    register(tenants, "a")
    capture = capture_service(planned.runs, planned.sets, tenants, graph, seconds)
    run_reads, item_reads = count_calls(planned.runs.runs, "get"), count_calls(planned.sets, "get_item")
    transactions = planned.sets.transactions

    async def capture_all() -> None:
        outcomes = await capture.capture_chunk(planned.chunk(attempt=3, final=True))
        assert [o.status for o in outcomes] == ["failed"] * 3

    await capture_all()
    # One tenant read for the chunk; no run read, no item read; one transaction for the set's items.
    assert (tenants.reads, run_reads(), item_reads()) == (1, 0, 0)
    assert planned.sets.transactions - transactions == 1
    settled = planned.sets.list_items(tenant_id=TENANT, backup_set_id=planned.backup_set_id).items
    assert [(i.status, i.display_name, i.attempts) for i in settled] == [("failed", p.display_name, 3)
                                                                         for p in planned.items]
    assert all(i.error is not None and i.error.code == "graph-server-error" for i in settled)
    assert planned.runs.items.counts(tenant_id=TENANT, run_id=planned.run_id).failed == 3

    # A changed credential reference is picked up once the cached registration expires.
    register(tenants, "b")
    seconds.now += 59
    await capture_all()
    assert tenants.reads == 1
    seconds.now += 2
    await capture_all()
    assert tenants.reads == 2
    assert graph.credential_keys == ["keyVaultSecret:a"] * 2 + ["keyVaultSecret:b"]
    assert planned.runs.service.get(tenant_id=TENANT, run_id=planned.run_id).status == RunStatus.RUNNING

