"""One contract for the webhook repository and the run repository's event rows, run on memory and Azurite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import RunStatus
from shared.domain.webhooks import (
    DeliveryState,
    EventType,
    WebhookDelivery,
    WebhookFormat,
    WebhookSubscription,
    event_id,
)
from shared.errors import ConcurrentUpdate
from shared.ports import OutboxEntry, RunRepository, StoredSubscription, WebhookRepository
from shared.services.runs import event_slot
from tests.unit.storage_contract import T0, TENANT, claim_for, make_run

OTHER_TENANT = "33333333-3333-3333-3333-333333333333"

__all__ = ["check_event_rows", "check_webhook_repository"]


def _delivery(sub: str, run_id: str, status: RunStatus, *, due_in: int = 0) -> WebhookDelivery:
    return WebhookDelivery(tenant_id=TENANT, subscription=sub, event_id=event_id(run_id, status),
                           run_id=run_id, status=status, due_at=T0 + timedelta(seconds=due_in), created_at=T0,
                           updated_at=T0)


def check_webhook_repository(repo: WebhookRepository) -> None:
    sub = WebhookSubscription(tenant_id=TENANT, name="flow", url_masked="https://h/…",
                              format=WebhookFormat.EVENT, events=[EventType.COMPLETED], created_at=T0)
    repo.put_subscription(StoredSubscription(sub, "URL-CIPHER", "SECRET-CIPHER"))
    repo.put_subscription(StoredSubscription(sub.model_copy(update={"name": "another"}), "u", "s"))
    stored = repo.get_subscription(tenant_id=TENANT, name="flow")
    assert stored is not None
    assert stored.subscription == sub
    assert (stored.url_cipher, stored.secret_cipher) == ("URL-CIPHER", "SECRET-CIPHER")
    assert [s.name for s in repo.list_subscriptions(TENANT)] == ["another", "flow"]
    assert repo.get_subscription(tenant_id=TENANT, name="nope") is None

    run_a, run_b = "run_01AAAAAAAAAAAAAAAAAAAAAAAA", "run_01BBBBBBBBBBBBBBBBBBBBBBBB"
    rows = [_delivery("flow", run_a, RunStatus.SUCCEEDED), _delivery("flow", run_a, RunStatus.QUEUED),
            _delivery("flow", run_b, RunStatus.RUNNING, due_in=60)]
    assert len(repo.create_deliveries(rows)) == 3
    assert repo.create_deliveries(rows[:1]) == []  # a repeated fan-out creates nothing
    in_order = repo.list_run_deliveries(tenant_id=TENANT, subscription="flow", run_id=run_a)
    assert [d.value.status for d in in_order] == [RunStatus.QUEUED, RunStatus.SUCCEEDED]
    assert [d.value.event_id for d in repo.list_due_deliveries(tenant_id=TENANT, due_by=T0)] == [
        f"{run_a}:queued", f"{run_a}:succeeded"]

    got = repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=f"{run_a}:succeeded")
    assert got is not None
    parked = got.value.model_copy(update={"state": DeliveryState.PARKED, "attempts": 3})
    etag = repo.update_delivery(parked, etag=got.etag)
    with pytest.raises(ConcurrentUpdate):
        repo.update_delivery(parked, etag=got.etag)
    assert etag != got.etag
    assert repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id="not-an-event") is None
    page = repo.list_deliveries(tenant_id=TENANT, subscription="flow", state=DeliveryState.PARKED)
    assert [(d.event_id, d.attempts) for d in page.items] == [(f"{run_a}:succeeded", 3)]
    assert f"{run_a}:succeeded" not in [
        d.value.event_id for d in repo.list_due_deliveries(tenant_id=TENANT, due_by=T0 + timedelta(hours=1))]
    first = repo.list_deliveries(tenant_id=TENANT, subscription="flow", top=2)
    assert len(first.items) == 2
    assert first.continuation is not None
    rest = repo.list_deliveries(tenant_id=TENANT, subscription="flow", top=2, continuation=first.continuation)
    assert [d.run_id for d in rest.items] == [run_b]

    # Retention: delivered rows last written before the cut-off go (the store's own write time, as the
    # table service's Timestamp); pending and parked ones stay whatever their age.
    queued = repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=f"{run_a}:queued")
    assert queued is not None
    repo.update_delivery(queued.value.model_copy(update={"state": DeliveryState.DELIVERED}), etag=queued.etag)
    hour_ago, in_an_hour = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    assert repo.delete_delivered(tenant_id=TENANT, written_before=hour_ago) == 0
    assert repo.delete_delivered(tenant_id=OTHER_TENANT, written_before=in_an_hour) == 0
    assert repo.delete_delivered(tenant_id=TENANT, written_before=in_an_hour) == 1
    assert repo.get_delivery(tenant_id=TENANT, subscription="flow", event_id=f"{run_a}:queued") is None
    kept = repo.list_deliveries(tenant_id=TENANT, subscription="flow").items
    assert [(d.event_id, d.state) for d in kept] == [(f"{run_a}:succeeded", DeliveryState.PARKED),
                                                      (f"{run_b}:running", DeliveryState.PENDING)]

    assert repo.delete_subscription(tenant_id=TENANT, name="flow") is True
    assert repo.get_subscription(tenant_id=TENANT, name="flow") is None
    assert repo.list_deliveries(tenant_id=TENANT, subscription="flow").items == []
    assert repo.delete_subscription(tenant_id=TENANT, name="flow") is False


def check_event_rows(runs: RunRepository) -> None:
    run = make_run()
    receipt = runs.claim(claim_for(run, outbox=True))
    assert receipt.run_etag is not None
    running = run.model_copy(update={"status": RunStatus.RUNNING, "started_at": T0})
    event = OutboxEntry(tenant_id=TENANT, run_id=run.id, kind=run.kind, created_at=T0,
                        due_at=T0 + timedelta(seconds=10), launch=False, events=(RunStatus.RUNNING,),
                        slot=event_slot(RunStatus.RUNNING))
    written = runs.transition(running, etag=receipt.run_etag, event=event)
    assert written.outbox_etag is not None
    failed = running.model_copy(update={"status": RunStatus.FAILED, "finished_at": T0})
    late = OutboxEntry(tenant_id=TENANT, run_id=run.id, kind=run.kind, created_at=T0, due_at=T0,
                       launch=False, events=(RunStatus.FAILED,), slot=event_slot(RunStatus.FAILED))
    with pytest.raises(ConcurrentUpdate):  # the status change and its event row are all or nothing
        runs.transition(failed, etag=receipt.run_etag, event=late, release=True)
    rows = runs.list_run_outbox(tenant_id=TENANT, run_id=run.id)
    assert [(r.value.launch, r.value.slot, r.value.events) for r in rows] == [
        (True, "", (RunStatus.QUEUED,)), (False, "1-running", (RunStatus.RUNNING,))]
    assert rows[1].etag == written.outbox_etag
    due = runs.list_due_outbox(tenant_id=TENANT, due_by=T0 + timedelta(seconds=10))
    assert {r.value.slot for r in due} == {"", "1-running"}
    stored = runs.get(tenant_id=TENANT, run_id=run.id)
    assert stored is not None
    assert stored.value.status == RunStatus.RUNNING
    assert stored.etag == written.run_etag
    # The launch row is still the run's own row; settling the event row leaves it.
    runs.settle_outbox(event, etag=written.outbox_etag)
    assert [r.value.slot for r in runs.list_run_outbox(tenant_id=TENANT, run_id=run.id)] == [""]
    assert runs.get_outbox(tenant_id=TENANT, run_id=run.id) is not None
