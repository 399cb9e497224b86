"""External events, instance-id reuse, terminate and purge through the SDK client and webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.dfhost.conformance.conftest import HostClient, events_of


def _waiting(status: dict[str, Any]) -> bool:
    return bool(status["customStatus"] == {"stage": "waiting"})


def test_event_raised_after_the_wait_through_the_sdk_client(real_host: HostClient) -> None:
    instance_id = real_host.start("approval", "evt-after")
    real_host.wait(instance_id, _waiting)
    response = real_host.http.post(f"/api/events/{instance_id}/Approval", json={"ok": True})
    assert response.status_code == 202, response.text
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    # The SDK client double-encodes event data, so a dict arrives as JSON text (as in Azure).
    assert status["output"] == {"decision": '{"ok": true}'}
    raised = events_of(status, "EventRaised")
    assert [e["Name"] for e in raised] == ["Approval"]


def test_event_raised_before_the_wait_is_buffered(real_host: HostClient) -> None:
    instance_id = real_host.start("approval", "evt-before", {"gate": True})
    real_host.wait(instance_id, lambda s: s["customStatus"] == {"stage": "gated"})
    # Approval arrives while the orchestrator still waits for Gate: it must be buffered.
    response = real_host.raise_webhook(instance_id, "Approval", '{"via": "webhook"}')
    assert response.status_code == 202
    status = real_host.wait(instance_id, lambda s: bool(events_of(s, "EventRaised")))
    assert status["runtimeStatus"] == "Running"
    gate = real_host.http.post(f"/api/events/{instance_id}/Gate", json="open")
    assert gate.status_code == 202
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Completed"
    # A webhook body is plain JSON, so the orchestrator receives the object itself.
    assert status["output"] == {"decision": {"via": "webhook"}}
    assert [e["Name"] for e in events_of(status, "EventRaised")] == ["Approval", "Gate"]


def test_raise_event_errors_follow_the_extension(real_host: HostClient) -> None:
    assert real_host.raise_webhook("no-such-instance", "E", "1").status_code == 404
    instance_id = real_host.start("chaining", "evt-done")
    real_host.wait(instance_id)
    assert real_host.raise_webhook(instance_id, "E", "1").status_code == 410
    not_json = real_host.http.post(
        f"{real_host.webhook}/instances/{instance_id}/raiseEvent/E", content="plain",
        headers={"Content-Type": "text/plain"})
    assert not_json.status_code == 400
    via_sdk = real_host.http.post(f"/api/events/{instance_id}/E", json=1)
    assert "is gone" in via_sdk.json()["error"]


def test_instance_id_reuse_rule_through_the_sdk_client(real_host: HostClient) -> None:
    instance_id = real_host.start("approval", "reuse-1")
    real_host.wait(instance_id, _waiting)
    again = real_host.http.post(f"/api/orchestrators/approval/{instance_id}")
    assert again.status_code == 409
    assert "An Orchestration instance with the status Running already exists." in again.text
    real_host.http.post(f"/api/events/{instance_id}/Approval", json="first")
    first = real_host.wait(instance_id)
    # Double-encoded by the SDK client: the orchestrator sees the JSON text (azure-functions-
    # durable-python#295), exactly as in Azure.
    assert first["output"] == {"decision": '"first"'}
    # A completed id is overwritten by a new execution.
    assert real_host.start("approval", instance_id) == instance_id
    status = real_host.wait(instance_id, _waiting)
    assert status["runtimeStatus"] == "Running"
    assert status["output"] is None
    real_host.http.post(f"/api/events/{instance_id}/Approval", json="second")
    assert real_host.wait(instance_id)["output"] == {"decision": '"second"'}


def test_terminate_through_the_sdk_client(real_host: HostClient) -> None:
    instance_id = real_host.start("approval", "term-1")
    real_host.wait(instance_id, _waiting)
    response = real_host.http.post(f"/api/manage/{instance_id}/terminate",
                                   params={"reason": "no longer needed"})
    assert response.status_code == 200, response.text
    status = real_host.wait(instance_id)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "no longer needed"
    gone = real_host.http.post(f"{real_host.webhook}/instances/{instance_id}/terminate")
    assert gone.status_code == 410
    missing = real_host.http.post(f"{real_host.webhook}/instances/nope-404/terminate")
    assert missing.status_code == 404


def test_suspend_and_resume(real_host: HostClient) -> None:
    instance_id = real_host.start("approval", "susp-1")
    real_host.wait(instance_id, _waiting)
    base = f"{real_host.webhook}/instances/{instance_id}"
    assert real_host.http.post(f"{base}/suspend", params={"reason": "pause"}).status_code == 202
    real_host.wait(instance_id, lambda s: s["runtimeStatus"] == "Suspended")
    assert real_host.raise_webhook(instance_id, "Approval", '"late"').status_code == 202
    assert real_host.http.post(f"{base}/resume", params={"reason": "go"}).status_code == 202
    status = real_host.wait(instance_id)
    assert status["output"] == {"decision": "late"}


def test_purge_one_and_by_filter(real_host: HostClient) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    first = real_host.start("chaining", "purge-1")
    second = real_host.start("chaining", "purge-2")
    real_host.wait(first)
    real_host.wait(second)
    purged = real_host.http.post(f"/api/manage/{first}/purge")
    assert purged.json() == {"deleted": 1}
    assert real_host.status(first).status_code == 404
    assert real_host.status(first).content == b""
    assert real_host.http.post(f"/api/manage/{first}/purge").json() == {"deleted": 0}
    by_filter = real_host.http.delete(f"{real_host.webhook}/instances/",
                                      params={"createdTimeFrom": since,
                                              "runtimeStatus": "Completed"})
    assert by_filter.status_code == 200
    assert by_filter.json()["instancesDeleted"] >= 1
    assert real_host.status(second).status_code == 404


def test_sdk_query_and_wait_for_completion(real_host: HostClient) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    instance_id = real_host.start("chaining", "sdk-wait-1")
    waited = real_host.http.post(f"/api/manage/{instance_id}/wait")
    assert waited.status_code == 200
    assert waited.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    found = real_host.http.get("/api/query", params={"since": since, "prefix": "sdk-wait-"})
    assert found.json() == [instance_id]
