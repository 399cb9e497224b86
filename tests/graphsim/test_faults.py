"""Injected faults: status faults, transport faults, partial pages, deterministic firing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import msal
import pytest

from localdev.graphsim.testing import SimHandle

DM = "/deviceManagement"
PATH = "deviceCategories$"


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("429", 429, "TooManyRequests"),
    ("429-no-retry-after", 429, "TooManyRequests"),
    ("500", 500, "InternalServerError"),
    ("502", 502, "BadGateway"),
    ("503", 503, "serviceNotAvailable"),
    ("503-no-retry-after", 503, "serviceNotAvailable"),
    ("504", 504, "GatewayTimeout"),
    ("401-expired", 401, "InvalidAuthenticationToken"),
    ("403", 403, "Forbidden"),
    ("404", 404, "ResourceNotFound"),
    ("409", 409, "Conflict"),
])
def test_status_faults(sim, graph, kind, status, code):
    client = graph()
    sim.control.set_faults([{"kind": kind, "path": PATH, "times": 1}])
    failed = client.get(f"{DM}/deviceCategories")
    assert failed.status_code == status
    error = failed.json()["error"]
    assert error["code"] == code
    assert error["innerError"]["request-id"] == failed.headers["request-id"]
    if kind in ("429", "503"):
        assert failed.headers["Retry-After"] == "1"
    else:
        assert "Retry-After" not in failed.headers
    if kind == "500":
        assert json.loads(error["message"])["_version"] == 3
    if kind == "401-expired":
        assert "expired" in error["message"]
    if kind == "403":
        assert "Application is not authorized" in error["message"]
    if kind == "404":
        assert json.loads(error["message"])["Message"].startswith("Resource not found: deviceCategories")
    assert client.get(f"{DM}/deviceCategories").status_code == 200
    assert sim.control.faults()[0]["fired"] == 1


PLANTED = "the value is Wq3Ld8Rt5Zy1Hk7Nm2Bv6Cx9Pf4Gs0Jj"


@pytest.mark.parametrize(("kind", "status", "code", "nested"), [
    ("403", 403, "Forbidden", False),
    ("404", 404, "ResourceNotFound", True),
    ("409", 409, "Conflict", True),
])
def test_403_404_and_409_faults_carry_a_planted_message_in_graphs_intune_shape(
        sim, graph, kind, status, code, nested):
    client = graph()
    category = client.get(f"{DM}/deviceCategories").json()["value"][0]["id"]
    sim.control.set_faults([{"kind": kind, "path": PATH.rstrip("$"), "message": PLANTED}])
    failed = client.get(f"{DM}/deviceCategories/{category}")
    assert failed.status_code == status
    error = failed.json()["error"]
    assert error["code"] == code
    assert error["innerError"]["request-id"] == failed.headers["request-id"]
    if nested:
        # Intune's record as a JSON document inside `message`, with the planted text as its Message.
        assert json.loads(error["message"])["Message"].startswith(f"{PLANTED} - Operation ID")
    else:
        assert error["message"] == PLANTED


def test_404_and_409_faults_on_entra_groups_answer_entras_flat_shape(sim, graph):
    client = graph()
    group = client.get("/groups").json()["value"][0]["id"]
    sim.control.set_faults([{"kind": "404", "path": "/groups/", "nth": 1},
                            {"kind": "409", "path": "/groups/", "nth": 2}])
    missing = client.get(f"/groups/{group}").json()["error"]
    assert missing["code"] == "Request_ResourceNotFound"
    assert missing["message"].startswith(f"Resource '{group}' does not exist")
    conflict = client.get(f"/groups/{group}").json()["error"]
    assert conflict["code"] == "Conflict"
    assert not conflict["message"].startswith("{")


def test_fractional_and_date_retry_after_values_are_passed_through(sim, graph):
    client = graph()
    sim.control.set_faults([{"kind": "429", "path": PATH, "nth": 1, "retryAfter": 2.128},
                            {"kind": "503", "path": PATH, "nth": 2,
                             "retryAfter": "Wed, 21 Oct 2015 07:28:00 GMT"}])
    assert client.get(f"{DM}/deviceCategories").headers["Retry-After"] == "2.128"
    assert client.get(f"{DM}/deviceCategories").headers["Retry-After"] == (
        "Wed, 21 Oct 2015 07:28:00 GMT")


def test_reset_drops_the_connection_mid_response(sim, graph):
    client = graph()
    sim.control.set_faults([{"kind": "reset", "path": PATH, "times": 1}])
    with pytest.raises(httpx.TransportError):
        client.get(f"{DM}/deviceCategories")
    assert client.get(f"{DM}/deviceCategories").status_code == 200


@pytest.mark.parametrize("chunked", [False, True])
def test_truncated_sends_a_partial_body_then_closes(sim, graph, chunked):
    client = graph()
    sim.control.set_faults([{"kind": "truncated", "path": PATH, "times": 1,
                             "chunked": chunked}])
    with pytest.raises(httpx.TransportError):
        client.get(f"{DM}/deviceCategories")
    assert client.get(f"{DM}/deviceCategories").status_code == 200


def test_slow_exceeds_a_client_timeout(sim, graph):
    client = graph(timeout=0.5)
    sim.control.set_faults([{"kind": "slow", "path": PATH, "times": 1, "delaySeconds": 1.5}])
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{DM}/deviceCategories")
    assert client.get(f"{DM}/deviceCategories").status_code == 200


def test_short_page_ends_the_settings_early(sim, graph):
    client = graph()
    policies = client.get(f"{DM}/configurationPolicies").json()["value"]
    big = next(p for p in policies if p["settingCount"] > 25)
    sim.control.set_faults([{"kind": "short-page", "path": r"/settings$", "times": 1}])
    page = client.get(f"{DM}/configurationPolicies/{big['id']}/settings").json()
    assert len(page["value"]) < 25
    assert "@odata.nextLink" not in page
    assert page["@odata.count"] == big["settingCount"]  # what was promised


def test_fault_filters_by_method_tenant_and_app(sim, graph, tenant_id):
    client = graph()
    other = sim.control.create_tenant("empty")["tenantId"]
    sim.control.set_faults([{"kind": "500", "method": "POST", "tenant": other}])
    assert client.post(f"{DM}/deviceCategories", json={"displayName": "x"}).status_code == 201
    sim.control.set_faults([{"kind": "500", "method": "POST", "tenant": tenant_id}])
    assert client.post(f"{DM}/deviceCategories", json={"displayName": "y"}).status_code == 500
    assert client.get(f"{DM}/deviceCategories").status_code == 200


def _firing_pattern(sim: SimHandle, client: httpx.Client, rules: list[dict[str, Any]],
                    seed: int) -> list[int]:
    sim.control.set_faults(rules, seed=seed)
    return [client.get(f"{DM}/deviceCategories").status_code for _ in range(12)]


def test_firing_is_deterministic_for_a_seed(sim, graph):
    client = graph()
    rules = [{"kind": "503", "path": PATH, "probability": 0.5},
             {"kind": "500", "path": PATH, "every": 3}]
    first = _firing_pattern(sim, client, rules, seed=42)
    second = _firing_pattern(sim, client, rules, seed=42)
    assert first == second
    assert 503 in first
    assert 200 in first
    other = [_firing_pattern(sim, client, rules, seed=s) for s in range(1, 6)]
    assert any(p != first for p in other)


def test_nth_every_and_times(sim, graph):
    client = graph()
    nth = _firing_pattern(sim, client, [{"kind": "500", "path": PATH, "nth": 3}], seed=0)
    assert [i for i, s in enumerate(nth) if s == 500] == [2]
    every = _firing_pattern(sim, client, [{"kind": "500", "path": PATH, "every": 4,
                                           "times": 2}], seed=0)
    assert [i for i, s in enumerate(every) if s == 500] == [3, 7]
    described = sim.control.faults()[0]
    assert described["matched"] == 12
    assert described["fired"] == 2


def test_unknown_fault_kind_is_rejected(sim):
    with pytest.raises(httpx.HTTPStatusError):
        sim.control.set_faults([{"kind": "teapot"}])


def test_token_endpoint_faults(sim, tenant_id):
    from tests.graphsim.conftest import GRAPH_SCOPE, msal_app

    app = sim.control.create_app(tenant_id, roles=[])
    sim.control.set_faults([{"kind": "503", "path": "/oauth2/v2.0/token$", "times": 1,
                             "retryAfter": 1}])
    client = msal_app(sim, tenant_id, app["clientId"], app["secret"])
    # MSAL raises on a 5xx from the token endpoint rather than returning an error dict.
    with pytest.raises(msal.exceptions.MsalServiceError, match="503"):
        client.acquire_token_for_client(scopes=GRAPH_SCOPE)
    assert sim.control.faults()[0]["fired"] == 1


@pytest.mark.parametrize(("kind", "status", "error", "aadsts"), [
    ("401-expired", 401, "invalid_client", 7000215),
    ("503", 503, "temporarily_unavailable", 50196),
])
def test_token_endpoint_fault_with_a_message_answers_an_entra_error_carrying_it(
        sim, tenant_id, kind, status, error, aadsts):
    app = sim.control.create_app(tenant_id, roles=[])
    sim.control.set_faults([{"kind": kind, "path": "/oauth2/v2.0/token$", "message": PLANTED}])
    with httpx.Client(verify=sim.ssl_context()) as client:
        answer = client.post(f"{sim.base_url}/{tenant_id}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["clientId"],
            "client_secret": app["secret"], "scope": "https://graph.microsoft.com/.default"})
    assert answer.status_code == status
    body = answer.json()
    assert (body["error"], body["error_codes"]) == (error, [aadsts])
    assert body["error_description"].startswith(f"AADSTS{aadsts}: {PLANTED} Trace ID: ")
