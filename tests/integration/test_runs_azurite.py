from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import ItemOutcome, RunKind, RunStatus, RunTarget
from shared.errors import IdempotencyKeyReused
from shared.ports import ClaimConflict
from shared.services.notifications import NotificationService
from shared.services.outbox import OutboxDispatcher
from shared.services.runs import RunService, StartResult
from shared.storage import StorageFactory
from tests.fakes import RecordingLauncher, make_principal
from tests.unit.storage_contract import claim_for, make_run

pytestmark = pytest.mark.azurite

TENANT = "22222222-2222-2222-2222-222222222222"


def test_fifty_concurrent_claims_from_threads_have_one_winner(storage: StorageFactory) -> None:
    runs = storage.runs()
    candidates = [make_run(key="same-key") for _ in range(50)]

    def claim(run):
        try:
            runs.claim(claim_for(run))
        except ClaimConflict:
            return None
        return run.id

    with ThreadPoolExecutor(max_workers=16) as pool:
        winners = [w for w in pool.map(claim, candidates) if w is not None]
    assert len(winners) == 1
    listed = runs.list(tenant_id=TENANT, top=100).items
    assert [r.id for r in listed] == winners


@pytest.fixture
def service(storage: StorageFactory) -> RunService:
    def clock():
        return datetime.now(UTC)

    notifications = NotificationService(repository=storage.notifications(), clock=clock)
    return RunService(runs=storage.runs(), items=storage.items(), notifications=notifications,
                      clock=clock)


async def test_fifty_concurrent_identical_starts_launch_once(service: RunService,
                                                             storage: StorageFactory) -> None:
    launcher = RecordingLauncher(delay=0.05)
    principal = make_principal()

    async def start() -> StartResult:
        return await service.start(principal=principal, tenant_id=TENANT,
                                   kind=RunKind.POLICY_CAPTURE,
                                   target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                                   scope={"includeAssignments": True}, idempotency_key=None)

    results = await asyncio.gather(*(start() for _ in range(50)))
    # Every request hands its result to the process's dispatcher, as the trigger does.
    dispatcher = OutboxDispatcher(runs=storage.runs(), service=service, clock=lambda: datetime.now(UTC),
                                  tenant_ids=lambda: [TENANT])
    for result in results:
        dispatcher.submit(result, launcher)
    await dispatcher.idle()
    assert len({r.run.id for r in results}) == 1
    assert sum(not r.reused for r in results) == 1
    assert len(launcher.launched) == 1


async def test_run_lifecycle_on_table_storage(service: RunService, storage: StorageFactory) -> None:
    launcher = RecordingLauncher()
    principal = make_principal()
    target = RunTarget(backup_set_id="bs-1")
    first = await service.start(principal=principal, tenant_id=TENANT,
                                kind=RunKind.RESTORE_PREVIEW, target=target, scope={"a": 1},
                                idempotency_key="logic-app-run-1")
    service.mark_running(tenant_id=TENANT, run_id=first.run.id, expected_items=2)
    for item_id, status, action in (("i1", "succeeded", "unchanged"), ("i2", "failed", "failed")):
        service.record_item(tenant_id=TENANT, run_id=first.run.id,
                            outcome=ItemOutcome(item_id=item_id, action=action, status=status))
    done = service.complete(tenant_id=TENANT, run_id=first.run.id)
    assert done.status == RunStatus.PARTIAL
    assert done.counts.total == 2
    replay = await service.start(principal=principal, tenant_id=TENANT,
                                 kind=RunKind.RESTORE_PREVIEW, target=target, scope={"a": 1},
                                 idempotency_key="logic-app-run-1")
    assert replay.reused
    assert replay.run.id == first.run.id
    with pytest.raises(IdempotencyKeyReused):
        await service.start(principal=principal, tenant_id=TENANT,
                            kind=RunKind.RESTORE_PREVIEW, target=target, scope={"a": 2},
                            idempotency_key="logic-app-run-1")
    fresh = await service.start(principal=principal, tenant_id=TENANT,
                                kind=RunKind.RESTORE_PREVIEW, target=target, scope={"a": 1},
                                idempotency_key=None)
    assert not fresh.reused
    # The queued events are delivered from the outbox, off the request path (here: by the sweeper).
    dispatcher = OutboxDispatcher(runs=storage.runs(), service=service,
                                  clock=lambda: datetime.now(UTC) + timedelta(minutes=1),
                                  tenant_ids=lambda: [TENANT])
    assert await dispatcher.sweep(launcher) == 2
    assert launcher.launched == [fresh.run.id]  # the first run had ended: only its event is delivered
    statuses = [n.status for n in storage.notifications().list(principal_id=principal.object_id,
                                                                 top=10).items]
    assert statuses == [RunStatus.QUEUED, RunStatus.PARTIAL, RunStatus.RUNNING, RunStatus.QUEUED]
