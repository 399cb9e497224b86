"""Webhook events survive the app dying: the host SIGKILLed right after a start, and while deliveries wait.

These tests run on a stack of their own: they kill the host.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.stack import kill_host, restart_host, running_stack, sim_client
from shared.domain.webhooks import verify_signature
from tests.e2e.conftest import Api, Stack, wait_terminal
from tests.webhook_support import Received, Receiver

pytestmark = pytest.mark.e2e

ALL_EVENTS = ["run.queued", "run.running", "run.completed"]


@pytest.fixture(scope="module")
def own_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("webhook-crash-stack")
    demo_secret = secrets.token_urlsafe(24)
    with running_stack(storage=azurite_connection_string, state_dir=state_dir,
                       demo_secret=demo_secret) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _logical(received: list[Received], run_id: str) -> list[Received]:
    seen: dict[str, Received] = {}
    for item in received:
        if item.headers["X-Event-Id"].startswith(run_id + ":"):
            seen.setdefault(item.headers["X-Event-Id"], item)
    return list(seen.values())


def _wait_for_events(receiver: Receiver, run_id: str, count: int, timeout: float) -> list[Received]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        arrived = _logical(receiver.received, run_id)
        if len(arrived) >= count:
            return arrived
        time.sleep(0.25)
    raise AssertionError(f"only {len(_logical(receiver.received, run_id))} of {count} events arrived")


def _subscribe(admin: Api, tenant: str, receiver: Receiver) -> str:
    response = admin.put(f"/tenants/{tenant}/subscriptions/flow", json={
        "url": receiver.url(f"/workflows/{secrets.token_hex(8)}/invoke"), "events": ALL_EVENTS})
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


def _snapshot(api: Api, tenant: str) -> tuple[str, str]:
    listed = api.get(f"/tenants/{tenant}/policies", params={"type": "deviceCategory"}).json()
    policy_id = listed["items"][0]["id"]
    started = api.post(f"/tenants/{tenant}/policies/deviceCategory/{policy_id}/snapshots")
    assert started.status_code == 202, started.text
    return str(started.json()["id"]), started.headers["Location"]


def _check_in_order_and_signed(arrived: list[Received], run_id: str, secret: str) -> None:
    assert [r.headers["X-Event-Id"] for r in arrived] == [
        f"{run_id}:queued", f"{run_id}:running", f"{run_id}:succeeded"]
    for item in arrived:
        assert verify_signature(secret, item.headers["X-Signature"], item.body, now=int(time.time()))


def test_the_host_killed_right_after_a_start_still_runs_it_and_delivers_every_event(
        own_stack: Stack, receiver: Receiver) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    secret = _subscribe(admin, tenant, receiver)
    run_id, monitor = _snapshot(admin, tenant)
    # The claim is written; the launch and the events are owed by the outbox when the process dies.
    kill_host(stack.info)
    restart_host(stack.info)
    assert wait_terminal(admin, monitor, timeout=120)["status"] == "succeeded"
    _check_in_order_and_signed(_wait_for_events(receiver, run_id, 3, timeout=90), run_id, secret)


def test_deliveries_waiting_for_a_receiver_survive_the_host_being_killed(
        own_stack: Stack, receiver: Receiver) -> None:
    stack = own_stack
    tenant = stack.new_customer_tenant()
    admin, _ = stack.user(tenant, "admin")
    secret = _subscribe(admin, tenant, receiver)
    receiver.status = 503  # down: deliveries fail and wait for their next attempt
    run_id, monitor = _snapshot(admin, tenant)
    # Killed once a delivery failed and waits to be tried again (its wait doubles with each failure, so the
    # receiver comes back before the waits grow long).
    deadline = time.monotonic() + 60
    pending = f"/tenants/{tenant}/subscriptions/flow/deliveries"
    while not any(d["runId"] == run_id and d["attempts"] >= 1
                  for d in admin.get(pending, params={"status": "pending"}).json()["items"]):
        assert time.monotonic() < deadline, "no delivery was tried"
        time.sleep(0.2)
    kill_host(stack.info)
    receiver.status = 200
    restart_host(stack.info)
    assert wait_terminal(admin, monitor, timeout=120)["status"] == "succeeded"
    _check_in_order_and_signed(_wait_for_events(receiver, run_id, 3, timeout=120), run_id, secret)
