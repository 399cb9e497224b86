"""Retry, backoff and Retry-After handling of the Graph client (httpx.MockTransport, no network)."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS
from shared.graph import (
    GraphAuthError,
    GraphBadRequest,
    GraphIncompleteRead,
    GraphNotFound,
    GraphPermissionMissing,
    GraphServerError,
    GraphThrottled,
    RetryPolicy,
)
from shared.graph.retry import parse_retry_after, wait_before_retry
from tests.graph.scripted import REQUEST_ID, graph_error, make_client


def scripted(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


OK = httpx.Response(200, json={"id": "p1", "displayName": "Policy"})


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("2.128", 2.128), ("1", 1.0)],
)
async def test_retry_after_seconds_are_honoured(header: str, expected: float) -> None:
    client, recorder, sleeps, _ = make_client(
        scripted(graph_error(429, "TooManyRequests", **{"Retry-After": header}), OK))
    body = await client.get("/beta/deviceManagement/deviceConfigurations/p1")
    assert body["displayName"] == "Policy"
    assert sleeps.calls == [pytest.approx(expected)]
    assert len(recorder.requests) == 2


async def test_retry_after_http_date_is_honoured() -> None:
    when = formatdate(time.time() + 6, usegmt=True)
    client, _, sleeps, _ = make_client(
        scripted(graph_error(503, "serviceNotAvailable", **{"Retry-After": when}), OK))
    await client.get("/beta/deviceManagement/deviceConfigurations/p1")
    assert len(sleeps.calls) == 1
    assert 4.0 < sleeps.calls[0] <= 6.0


async def test_retry_after_is_a_floor_and_repeated_throttling_backs_off_further() -> None:
    # Graph counts throttled calls too: callers that all return exactly on time stay throttled.
    throttled = graph_error(429, "TooManyRequests", **{"Retry-After": "0"})
    client, _, sleeps, _ = make_client(scripted(throttled, throttled, throttled, throttled, OK))
    await client.get("/beta/deviceManagement/deviceCategories")
    assert 0.5 <= sleeps.calls[0] <= 1.0
    assert 4.0 <= sleeps.calls[3] <= 8.0


def test_parse_retry_after_rejects_garbage() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0


async def test_missing_retry_after_backs_off_exponentially_with_jitter() -> None:
    client, recorder, sleeps, _ = make_client(scripted(
        graph_error(503, "serviceNotAvailable"), graph_error(503, "serviceNotAvailable"),
        graph_error(504, "GatewayTimeout"), OK))
    await client.get("/beta/deviceManagement/deviceConfigurations/p1")
    assert len(recorder.requests) == 4
    # Attempt n waits within [base*2^(n-1)/2, base*2^(n-1)].
    assert 0.5 <= sleeps.calls[0] <= 1.0
    assert 1.0 <= sleeps.calls[1] <= 2.0
    assert 2.0 <= sleeps.calls[2] <= 4.0


async def test_a_scaled_policy_shortens_the_backoff_but_still_honours_retry_after_in_full() -> None:
    policy = RetryPolicy(max_attempts=5, max_total_sleep=60.0, backoff_base=1.0, backoff_max=8.0).scaled(20)
    client, _, sleeps, _ = make_client(scripted(
        graph_error(503, "serviceNotAvailable"), graph_error(503, "serviceNotAvailable"),
        graph_error(429, "TooManyRequests", **{"Retry-After": "3"}), OK), retry=policy)
    await client.get("/beta/deviceManagement/deviceConfigurations/p1")
    assert 0.025 <= sleeps.calls[0] <= 0.05
    assert 0.05 <= sleeps.calls[1] <= 0.1
    assert sleeps.calls[2] == 3.0


def test_the_durable_wait_is_what_graph_asked_for_when_it_throttled_and_the_default_otherwise() -> None:
    throttled = GraphThrottled("throttled", retry_after=42.0)
    assert wait_before_retry(throttled) == 42.0
    assert wait_before_retry(throttled, 0.75) == 42.0
    assert wait_before_retry(GraphServerError("bad gateway")) == DEFAULT_RETRY_DELAY_SECONDS
    assert wait_before_retry(GraphIncompleteRead("cut short"), 0.75) == 0.75


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_transient_statuses_are_retried_for_reads(status: int) -> None:
    client, recorder, _, _ = make_client(scripted(graph_error(status, "x", **{"Retry-After": "1"}), OK))
    await client.get("/beta/deviceManagement/deviceCategories/p1")
    assert len(recorder.requests) == 2


async def test_throttling_beyond_the_sleep_cap_raises_graph_throttled_with_the_wait() -> None:
    client, recorder, sleeps, _ = make_client(
        scripted(graph_error(429, "TooManyRequests", **{"Retry-After": "10"})),
        retry=RetryPolicy(max_attempts=10, max_total_sleep=25.0))
    with pytest.raises(GraphThrottled) as info:
        await client.get("/beta/deviceManagement/deviceConfigurations")
    assert info.value.retry_after == pytest.approx(10.0)
    assert info.value.code == "graph-throttled"
    assert sleeps.calls == [10.0, 10.0]  # a third 10 s wait would exceed the 25 s cap
    assert len(recorder.requests) == 3


async def test_attempts_are_capped() -> None:
    client, recorder, _, _ = make_client(
        scripted(graph_error(502, "BadGateway")), retry=RetryPolicy(max_attempts=3, backoff_base=0.01))
    with pytest.raises(GraphServerError):
        await client.get("/beta/deviceManagement/deviceConfigurations")
    assert len(recorder.requests) == 3


async def test_connect_errors_are_retried() -> None:
    client, recorder, _, _ = make_client(scripted(httpx.ConnectError("refused"), OK))
    assert (await client.get("/beta/deviceManagement/deviceCategories/p1"))["id"] == "p1"
    assert len(recorder.requests) == 2


async def test_truncated_json_body_is_retried_for_reads() -> None:
    truncated = httpx.Response(200, content=b'{"value": [{"id": "1"}, {"id": "2', headers={
        "content-type": "application/json"})
    client, recorder, _, _ = make_client(scripted(truncated, OK))
    assert (await client.get("/beta/deviceManagement/deviceCategories/p1"))["id"] == "p1"
    assert len(recorder.requests) == 2


async def test_ambiguous_failures_of_a_create_are_not_retried() -> None:
    # The create may have happened: retrying could duplicate the policy.
    for failure in (graph_error(502, "BadGateway"), httpx.ReadTimeout("slow")):
        client, recorder, _, _ = make_client(scripted(failure, OK))
        with pytest.raises(GraphServerError):
            await client.post("/beta/deviceManagement/deviceCategories", json_body={"displayName": "x"})
        assert len(recorder.requests) == 1


async def test_create_is_retried_when_graph_did_not_process_it() -> None:
    created = httpx.Response(201, json={"id": "new"})
    client, recorder, _, _ = make_client(scripted(
        graph_error(429, "TooManyRequests", **{"Retry-After": "1"}),
        graph_error(503, "serviceNotAvailable"), created))
    response = await client.post("/beta/deviceManagement/deviceCategories", json_body={"displayName": "x"})
    assert response.status_code == 201
    assert recorder.methods == ["POST", "POST", "POST"]


async def test_idempotent_action_is_retried_after_a_gateway_timeout() -> None:
    client, recorder, _, _ = make_client(scripted(graph_error(504, "GatewayTimeout"), httpx.Response(204)))
    response = await client.post("/beta/deviceManagement/deviceHealthScripts/s1/assign",
                                 json_body={"deviceHealthScriptAssignments": []}, idempotent=True)
    assert response.status_code == 204
    assert len(recorder.requests) == 2


async def test_expired_token_is_dropped_and_the_call_retried_once_with_a_new_one() -> None:
    client, recorder, sleeps, provider = make_client(
        scripted(graph_error(401, "InvalidAuthenticationToken", "Access token has expired"), OK),
        tokens=("token-old", "token-new"))
    await client.get("/beta/deviceManagement/deviceCategories/p1")
    assert [r.headers["authorization"] for r in recorder.requests] == [
        "Bearer token-old", "Bearer token-new"]
    assert provider.invalidated == ["token-old"]
    assert sleeps.calls == []


async def test_a_second_401_is_an_auth_error() -> None:
    client, recorder, _, _ = make_client(
        scripted(graph_error(401, "InvalidAuthenticationToken")), tokens=("a", "b"))
    with pytest.raises(GraphAuthError):
        await client.get("/beta/deviceManagement/deviceCategories/p1")
    assert len(recorder.requests) == 2


async def test_403_names_the_permission_the_route_needs() -> None:
    client, _, _, _ = make_client(scripted(graph_error(403, "Forbidden", "Application is not authorized")))
    with pytest.raises(GraphPermissionMissing) as info:
        await client.get("/beta/deviceManagement/deviceManagementScripts/s1")
    assert info.value.permission == "DeviceManagementScripts.Read.All"
    assert info.value.code == "graph-permission-missing"
    assert info.value.detail.startswith("graph-permission-missing: DeviceManagementScripts.Read.All")


async def test_403_on_a_write_names_the_write_permission() -> None:
    client, _, _, _ = make_client(scripted(graph_error(403, "Forbidden")))
    with pytest.raises(GraphPermissionMissing) as info:
        await client.patch("/beta/deviceAppManagement/iosManagedAppProtections/p1", json_body={})
    assert info.value.permission == "DeviceManagementApps.ReadWrite.All"


async def test_status_mapping() -> None:
    client, _, _, _ = make_client(scripted(graph_error(404, "ResourceNotFound")))
    with pytest.raises(GraphNotFound) as not_found:
        await client.get("/beta/deviceManagement/deviceCategories/gone")
    assert not_found.value.code == "policy-not-found"
    assert not_found.value.request_id == REQUEST_ID

    client, recorder, _, _ = make_client(scripted(graph_error(400, "BadRequest", "bad filter")))
    with pytest.raises(GraphBadRequest) as bad:
        await client.get("/beta/deviceManagement/deviceCategories")
    assert bad.value.detail == ("GET /beta/deviceManagement/deviceCategories: Microsoft Graph answered 400: "
                                "the request was rejected")
    assert bad.value.graph_code == "BadRequest"
    assert bad.value.status_code == 400
    assert len(recorder.requests) == 1


async def test_intune_nested_json_message_is_not_kept() -> None:
    # Graph's message (here Intune's JSON document in it) is free text: only our own words are kept.
    nested = '{\r\n "_version": 3,\r\n "Message": "Compliance policy must have one block action"\r\n}'
    client, _, _, _ = make_client(scripted(graph_error(400, "BadRequest", nested)))
    with pytest.raises(GraphBadRequest) as info:
        await client.post("/beta/deviceManagement/deviceCompliancePolicies", json_body={})
    assert "Compliance policy" not in info.value.detail
    assert "_version" not in info.value.detail
    assert info.value.detail.startswith(
        "POST /beta/deviceManagement/deviceCompliancePolicies: Microsoft Graph answered 400")


async def test_truncated_create_answer_is_an_incomplete_read_not_a_retry() -> None:
    truncated = httpx.Response(201, content=b'{"id": "ne', headers={"content-type": "application/json"})
    client, recorder, _, _ = make_client(scripted(truncated))
    with pytest.raises(GraphIncompleteRead):
        await client.post("/beta/deviceManagement/deviceCategories", json_body={"displayName": "x"})
    assert len(recorder.requests) == 1
