"""Webhooks end to end: subscriptions through the API, run events delivered to loopback receivers.

The local stack sets ``WEBHOOK_ALLOW_LOOPBACK=true``, so plain-HTTP receivers on 127.0.0.1 stand in for
Power Automate trigger URLs (Azure accepts only https targets on public hosts); everything else (signing,
encryption at rest, retries, parking) is what runs in Azure.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from shared.domain import (
    CreatedBy,
    ErrorInfo,
    RunKind,
    RunRecord,
    RunStatus,
    RunTarget,
    derive_idempotency_key,
    new_run_id,
)
from shared.domain.webhooks import verify_signature
from shared.ports import ActiveEntry, OutboxEntry, RunClaim
from shared.services.runs import event_slot
from shared.storage.factory import StorageFactory
from tests.e2e.conftest import Api, Stack, wait_terminal
from tests.webhook_support import Received, Receiver, adaptive_card_errors

pytestmark = pytest.mark.e2e

ALL_EVENTS = ["run.queued", "run.running", "run.completed"]


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _secret_url(receiver: Receiver) -> tuple[str, list[str]]:
    """A trigger-like URL whose path and query carry secrets, and those secrets."""
    path_token, sig = secrets.token_hex(12), secrets.token_urlsafe(18)
    return receiver.url(f"/workflows/{path_token}/invoke?api-version=1&sig={sig}"), [path_token, sig]


def _subscribe(api: Api, tenant: str, name: str, url: str, **body: Any) -> dict[str, Any]:
    response = api.put(f"/tenants/{tenant}/subscriptions/{name}",
                       json={"url": url, "events": ALL_EVENTS, **body})
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/tenants/{tenant}/subscriptions/{name}")
    return dict(response.json())


def _start_snapshot(api: Api, tenant: str) -> dict[str, Any]:
    policies = api.get(f"/tenants/{tenant}/policies", params={"type": "settingsCatalog"})
    assert policies.status_code == 200, policies.text
    policy_id = policies.json()["items"][0]["id"]
    started = api.post(f"/tenants/{tenant}/policies/settingsCatalog/{policy_id}/snapshots")
    assert started.status_code == 202, started.text
    done = wait_terminal(api, started.headers["Location"])
    assert done["status"] == "succeeded", done
    return done


def _logical(received: list[Received], run_id: str) -> list[Received]:
    """The first delivery of each event of ``run_id``, in arrival order (duplicates share the id)."""
    seen: dict[str, Received] = {}
    for item in received:
        event_id = item.headers["X-Event-Id"]
        if event_id.startswith(run_id + ":"):
            seen.setdefault(event_id, item)
    return list(seen.values())


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _expected_ids(run_id: str) -> list[str]:
    return [f"{run_id}:queued", f"{run_id}:running", f"{run_id}:succeeded"]


def test_each_transition_reaches_each_subscription_once_signed_in_order_and_secrets_stay_secret(
    stack: Stack, tenant: str, receiver: Receiver, azurite_connection_string: str,
) -> None:
    admin, _ = stack.user(tenant, "admin", name="Adele Admin")
    operator, _ = stack.user(tenant, "operator")
    event_url, event_secrets = _secret_url(receiver)
    teams_url, teams_secrets = _secret_url(receiver)
    created = _subscribe(admin, tenant, "flow-events", event_url)
    teams = _subscribe(admin, tenant, "teams-channel", teams_url, format="teams")
    signing = {"event": created["secret"], "teams": teams["secret"]}
    assert created["urlMasked"] == f"http://127.0.0.1:{receiver.port}/workflows/…"

    done = _start_snapshot(operator, tenant)
    run_id = done["id"]

    def by_format(fmt: str) -> list[Received]:
        token = (event_secrets if fmt == "event" else teams_secrets)[0]
        return _logical([r for r in receiver.received if token in r.path], run_id)

    _wait_for(lambda: len(by_format("event")) == 3 and len(by_format("teams")) == 3, timeout=60,
              what="three events at each receiver")
    for fmt in ("event", "teams"):
        deliveries = by_format(fmt)
        assert [d.headers["X-Event-Id"] for d in deliveries] == _expected_ids(run_id)
        for delivery in deliveries:
            assert verify_signature(signing[fmt], delivery.headers["X-Signature"], delivery.body,
                                    now=int(time.time()))
        # Every physical delivery of an event (a retry, a repeated fan-out) is the same logical one.
        ids = [r.headers["X-Event-Id"] for r in receiver.received if r.path in {d.path for d in deliveries}]
        assert set(ids) == set(_expected_ids(run_id))
    events = [d.json() for d in by_format("event")]
    assert [e["type"] for e in events] == ALL_EVENTS
    assert events[-1]["status"] == "succeeded"
    assert events[-1]["itemsSucceeded"] == 1
    assert events[-1]["statusUrl"] == done["links"]["self"]
    assert all(None not in e.values() for e in events)
    for card in by_format("teams"):
        assert adaptive_card_errors(card.json()) == []

    listed = admin.get(f"/tenants/{tenant}/subscriptions")
    one = admin.get(f"/tenants/{tenant}/subscriptions/flow-events")
    deliveries = admin.get(f"/tenants/{tenant}/subscriptions/flow-events/deliveries")
    assert listed.status_code == one.status_code == deliveries.status_code == 200
    assert {s["name"] for s in listed.json()["items"]} == {"flow-events", "teams-channel"}
    mine = [d for d in deliveries.json()["items"] if d["runId"] == run_id]
    assert [(d["eventId"], d["state"]) for d in mine] == [(i, "delivered") for i in _expected_ids(run_id)]

    # Secrets appear in no answer after the PUT, no stored row (only their own encrypted fields), no log.
    planted = [*event_secrets, *teams_secrets, *signing.values()]
    answers = listed.text + one.text + deliveries.text
    storage = _storage_text(azurite_connection_string)
    logs = {name: Path(path).read_text(errors="replace") for name, path in stack.info.logs.items()
            if Path(path).exists()}
    assert logs
    for where, text in [("API answers", answers), ("storage", storage), *logs.items()]:
        leaked = [s for s in planted if s in text]
        assert not leaked, f"a webhook secret leaked into {where}"


def test_events_sent_while_the_receiver_is_down_arrive_in_order_once_it_is_back(
    stack: Stack, tenant: str, receiver: Receiver,
) -> None:
    admin, _ = stack.user(tenant, "admin")
    operator, _ = stack.user(tenant, "operator")
    url, _ = _secret_url(receiver)
    created = _subscribe(admin, tenant, "down-for-a-while", url)
    receiver.status = 503  # down: every delivery fails and is retried
    run_id = _start_snapshot(operator, tenant)["id"]

    def pending_retries() -> bool:
        page = admin.get(f"/tenants/{tenant}/subscriptions/down-for-a-while/deliveries",
                         params={"status": "pending"}).json()["items"]
        return any(d["runId"] == run_id and d["attempts"] >= 1 for d in page)

    _wait_for(pending_retries, timeout=30, what="a failed attempt")
    assert _logical(receiver.received, run_id) == []
    time.sleep(3)
    receiver.status = 200
    _wait_for(lambda: len(_logical(receiver.received, run_id)) == 3, timeout=90,
              what="every event after the receiver came back")
    arrived = _logical(receiver.received, run_id)
    assert [r.headers["X-Event-Id"] for r in arrived] == _expected_ids(run_id)
    for item in arrived:
        assert verify_signature(created["secret"], item.headers["X-Signature"], item.body,
                                now=int(time.time()))


def test_a_refused_delivery_is_parked_listed_and_replayed_by_an_admin(
    stack: Stack, tenant: str, receiver: Receiver,
) -> None:
    admin, _ = stack.user(tenant, "admin")
    operator, _ = stack.user(tenant, "operator")
    reader, _ = stack.user(tenant, "reader")
    url, _ = _secret_url(receiver)
    _subscribe(admin, tenant, "refuses", url, events=["run.completed"])
    receiver.status = 400  # a permanent refusal: parked at once, no retries
    run_id = _start_snapshot(operator, tenant)["id"]
    parked_path = f"/tenants/{tenant}/subscriptions/refuses/deliveries"

    def parked() -> list[dict[str, Any]]:
        items = admin.get(parked_path, params={"status": "parked"}).json()["items"]
        return [d for d in items if d["runId"] == run_id]

    _wait_for(lambda: bool(parked()), timeout=30, what="the delivery to be parked")
    [delivery] = parked()
    assert (delivery["eventId"], delivery["lastStatusCode"], delivery["attempts"]) == (
        f"{run_id}:succeeded", 400, 1)
    assert reader.get(parked_path).status_code == 403
    assert operator.post(f"{parked_path}/{delivery['eventId']}/replay").status_code == 403

    receiver.status = 200
    replayed = admin.post(f"{parked_path}/{delivery['eventId']}/replay")
    assert replayed.status_code == 202, replayed.text
    _wait_for(lambda: len(_logical(receiver.received, run_id)) == 1, timeout=30, what="the replay")
    assert admin.post(f"{parked_path}/{run_id}:running/replay").status_code == 404


def test_subscriptions_are_for_admins_and_bad_requests_have_stable_codes(
    stack: Stack, tenant: str, receiver: Receiver,
) -> None:
    admin, _ = stack.user(tenant, "admin")
    path = f"/tenants/{tenant}/subscriptions"
    body = {"url": receiver.url("/hook"), "events": ["run.completed"]}
    for role in ("reader", "operator"):
        api, _ = stack.user(tenant, role)
        assert api.get(path).status_code == 403
        assert api.put(f"{path}/mine", json=body).status_code == 403
    stranger, _ = stack.user(None, None)
    assert stranger.get(path).status_code == 404
    assert stranger.put(f"{path}/mine", json=body).status_code == 404

    for bad, code in [
        ({"url": "https://10.1.2.3/hook"}, "webhook-url-not-allowed"),
        ({"url": "https://169.254.169.254/latest"}, "webhook-url-not-allowed"),
        ({"url": "ftp://127.0.0.1/hook"}, "invalid-webhook-url"),
        ({"format": "slack"}, "invalid-webhook-format"),
        ({"events": ["run.finished"]}, "invalid-webhook-events"),
    ]:
        response = admin.put(f"{path}/bad", json={**body, **bad})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == code
    assert admin.put(f"{path}/has%20space", json=body).json()["code"] == "invalid-subscription-name"

    created = _subscribe(admin, tenant, "tested", body["url"], format="teams")
    fired = admin.post(f"{path}/tested/test")
    assert fired.status_code == 200, fired.text
    assert fired.json()["delivered"] is True
    [test_delivery] = [r for r in receiver.received if r.headers["X-Event-Id"] == fired.json()["eventId"]]
    assert verify_signature(created["secret"], test_delivery.headers["X-Signature"], test_delivery.body,
                            now=int(time.time()))
    assert adaptive_card_errors(test_delivery.json()) == []
    assert admin.request("DELETE", f"{path}/tested").status_code == 204
    assert admin.get(f"{path}/tested").status_code == 404


def test_a_transition_whose_process_died_before_delivery_is_still_delivered(
    stack: Stack, tenant: str, receiver: Receiver,
) -> None:
    """The crash is reproduced exactly: the status change and its event row are written to Table Storage as
    the transition writes them, and nothing delivers them; the host's outbox timer must."""
    admin, _ = stack.user(tenant, "admin")
    _, oid = stack.user(tenant, "operator")
    url, _ = _secret_url(receiver)
    created = _subscribe(admin, tenant, "after-a-crash", url, events=["run.completed"])
    now = datetime.now(UTC)
    target = RunTarget(policy_type="settingsCatalog", policy_id="crashed")
    run = RunRecord(id=new_run_id(now), tenant_id=tenant, kind=RunKind.POLICY_CAPTURE, target=target,
                    created_by=CreatedBy(id=oid, name="Crashed Caller"), created_at=now,
                    derived_key=derive_idempotency_key(tenant, RunKind.POLICY_CAPTURE, target, {}))
    failed = run.model_copy(update={"status": RunStatus.FAILED, "finished_at": now,
                                    "failure": ErrorInfo(code="launch-failed", message="Lost.")})
    storage = StorageFactory.from_connection_string(stack.info.storage_connection_string,
                                                    table_prefix=stack.info.table_prefix,
                                                    snapshot_container=stack.info.snapshot_container)
    try:
        runs = storage.runs()
        receipt = runs.claim(RunClaim(tenant_id=tenant, run=run, active=ActiveEntry(run.derived_key, run.id)))
        assert receipt.run_etag is not None
        event = OutboxEntry(tenant_id=tenant, run_id=run.id, kind=run.kind, created_at=now, due_at=now,
                            attempts=1, launch=False, events=(RunStatus.FAILED,),
                            slot=event_slot(RunStatus.FAILED))
        runs.transition(failed, etag=receipt.run_etag, event=event, release=True)
        # ... and the process dies here.
        _wait_for(lambda: len(_logical(receiver.received, run.id)) == 1, timeout=60,
                  what="the sweeper to deliver the event")
        [delivery] = _logical(receiver.received, run.id)
        assert delivery.headers["X-Event-Id"] == f"{run.id}:failed"
        assert delivery.json()["errorCode"] == "launch-failed"
        assert verify_signature(created["secret"], delivery.headers["X-Signature"], delivery.body,
                                now=int(time.time()))
        _wait_for(lambda: runs.list_run_outbox(tenant_id=tenant, run_id=run.id) == [], timeout=20,
                  what="the event row to be settled")
    finally:
        storage.close()


def _storage_text(connection_string: str) -> str:
    tables = TableServiceClient.from_connection_string(connection_string)
    parts = [json.dumps(dict(entity), default=str) for table in tables.list_tables()
             for entity in tables.get_table_client(table.name).list_entities()]
    return "\n".join(parts)
