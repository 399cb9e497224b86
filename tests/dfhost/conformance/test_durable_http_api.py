"""The durable client HTTP API as the extension serves it (webhook and RPC bases)."""

from __future__ import annotations

import httpx

from tests.dfhost.conformance.conftest import HostClient


def test_start_status_codes_and_location(real_host: HostClient) -> None:
    api = real_host.webhook
    started = real_host.http.post(f"{api}/orchestrators/approval/api-1", json={"gate": False})
    assert started.status_code == 202
    assert started.json()["id"] == "api-1"
    assert started.headers["location"] == started.json()["statusQueryGetUri"]
    running = real_host.status("api-1")
    assert running.status_code == 202
    assert running.headers["retry-after"] == "5"
    assert "/instances/api-1" in running.headers["location"]
    body = running.json()
    assert set(body) >= {"name", "instanceId", "runtimeStatus", "input", "customStatus", "output",
                         "createdTime", "lastUpdatedTime"}
    assert body["createdTime"].endswith("Z")
    assert len(body["createdTime"]) == len("2024-01-01T00:00:00Z")
    assert body["input"] == {"gate": False}
    real_host.raise_webhook("api-1", "Approval", "true")
    real_host.wait("api-1")
    assert real_host.status("api-1").status_code == 200


def test_rpc_base_serves_the_same_api(real_host: HostClient) -> None:
    with httpx.Client(base_url=real_host.host.rpc_base_url, timeout=30) as rpc:
        response = rpc.post("orchestrators/chaining/rpc-1")
        assert response.status_code == 202
        real_host.wait("rpc-1")
        assert rpc.get("instances/rpc-1").json()["runtimeStatus"] == "Completed"
        assert rpc.get("instances/unknown-rpc").status_code == 404


def test_start_errors(real_host: HostClient) -> None:
    api = real_host.webhook
    unknown = real_host.http.post(f"{api}/orchestrators/not_there")
    assert unknown.status_code == 400
    assert unknown.json()["ExceptionMessage"] == (
        "The function 'not_there' doesn't exist, is disabled, or is not an orchestrator function.")
    via_sdk = real_host.http.post("/api/orchestrators/not_there")
    assert "doesn't exist" in via_sdk.json()["error"]
    malformed = real_host.http.post(f"{api}/orchestrators/chaining", content=b"{not json",
                                    headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["ExceptionMessage"]
    # %23 and %3F reach the host as '#' and '?', which instance ids must not contain.
    for bad_id in ("@entity", "has%23hash", "what%3F", "x" * 300):
        response = real_host.http.post(f"{api}/orchestrators/chaining/{bad_id}")
        assert response.status_code == 400, bad_id


def test_query_filters(real_host: HostClient) -> None:
    for n in range(3):
        real_host.start("chaining", f"query-{n}")
    for n in range(3):
        real_host.wait(f"query-{n}")
    found = real_host.http.get(f"{real_host.webhook}/instances/",
                               params={"instanceIdPrefix": "query-",
                                       "runtimeStatus": "Completed,Failed",
                                       # No offset: read as UTC, as the extension does.
                                       "createdTimeFrom": "2000-01-01T00:00:00"})
    assert found.status_code == 200
    assert sorted(s["instanceId"] for s in found.json()) == ["query-0", "query-1", "query-2"]
    none = real_host.http.get(f"{real_host.webhook}/instances/",
                              params={"instanceIdPrefix": "query-", "runtimeStatus": "Running"})
    assert none.json() == []


def test_malformed_management_requests_are_400(real_host: HostClient) -> None:
    api = real_host.webhook
    assert real_host.http.get(f"{api}/instances/x", params={"showHistory": "maybe"}
                              ).status_code == 400
    assert real_host.http.get(f"{api}/instances/", params={"createdTimeFrom": "yesterday"}
                              ).status_code == 400
    assert real_host.http.post(f"{api}/instances/x/rewind").status_code == 501
    assert real_host.http.post(f"{api}/instances/unknown-x/restart").status_code == 404
    assert real_host.http.get(f"{api}/nothing/here").status_code == 404


def test_restart_reuses_the_original_input(real_host: HostClient) -> None:
    api = real_host.webhook
    first = real_host.start("fan_out", "restart-1", {"count": 4, "tag": "restart"})
    assert real_host.wait(first)["output"] == {"count": 4, "sum": 12}
    in_place = real_host.http.post(f"{api}/instances/{first}/restart",
                                   params={"restartWithNewInstanceId": "false"})
    assert in_place.status_code == 202
    assert in_place.json()["id"] == first
    fresh = real_host.http.post(f"{api}/instances/{first}/restart")
    assert fresh.status_code == 202
    new_id = fresh.json()["id"]
    assert new_id != first
    for instance_id in (first, new_id):
        status = real_host.wait(instance_id)
        assert status["output"] == {"count": 4, "sum": 12}
        assert status["input"] == '{"count": 4, "tag": "restart"}'
    assert len([x for x in real_host.executions("double") if '"restart"' in x]) == 12
