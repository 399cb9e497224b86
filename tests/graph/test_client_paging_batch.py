"""Paging, $batch and read-only mode of the Graph client (httpx.MockTransport, no network)."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from shared.graph import (
    BatchRequest,
    GraphBadRequest,
    GraphIncompleteRead,
    GraphNotFound,
    GraphPermissionMissing,
    GraphWriteRefused,
)
from shared.graph.batch import chunk_requests
from tests.graph.scripted import BASE, make_client

SKIP1 = f"{BASE}/beta/deviceManagement/configurationPolicies?$skiptoken=%255Bcosmosdb%255D-1&$top=2"
SKIP2 = f"{BASE}/beta/deviceManagement/configurationPolicies?$skiptoken=%255Bcosmosdb%255D-2&$top=2"


def paged(request: httpx.Request) -> httpx.Response:
    url = str(request.url)
    if url == SKIP1:
        return httpx.Response(200, json={"value": [{"id": "3"}, {"id": "4"}], "@odata.nextLink": SKIP2})
    if url == SKIP2:
        return httpx.Response(200, json={"value": [{"id": "5"}]})
    return httpx.Response(200, json={"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": SKIP1})


async def test_get_all_follows_next_links_verbatim() -> None:
    client, recorder, _, _ = make_client(paged)
    items = await client.get_all("/beta/deviceManagement/configurationPolicies", params={"$top": "2"})
    assert [i["id"] for i in items] == ["1", "2", "3", "4", "5"]
    # The skip token is sent exactly as Graph wrote it (%25 stays %25), with its query intact.
    assert [str(r.url) for r in recorder.requests[1:]] == [SKIP1, SKIP2]


async def test_empty_pages_with_next_links_are_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "page2" in str(request.url):
            return httpx.Response(200, json={"value": [{"id": "a"}]})
        return httpx.Response(200, json={"value": [], "@odata.nextLink": f"{BASE}/beta/x?page2=1"})

    client, _, _, _ = make_client(handler)
    assert [i["id"] for i in await client.get_all("/beta/x")] == ["a"]


async def test_next_link_to_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [], "@odata.nextLink": "https://evil.test/beta/x"})

    client, recorder, _, _ = make_client(handler)
    with pytest.raises(GraphBadRequest):
        await client.get_all("/beta/x")
    assert all(r.url.host == "graph.test" for r in recorder.requests)


async def test_paging_loop_is_detected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [{"id": "a"}], "@odata.nextLink": f"{BASE}/beta/x?s=1"})

    client, _, _, _ = make_client(handler)
    with pytest.raises(GraphIncompleteRead):
        await client.get_all("/beta/x")


# ---------------------------------------------------------------- read-only mode


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
async def test_read_only_client_refuses_writes_before_sending(method: str) -> None:
    client, recorder, _, _ = make_client(lambda r: httpx.Response(204), read_only=True)
    with pytest.raises(GraphWriteRefused) as info:
        await client.request(method, "/beta/deviceManagement/deviceCategories/c1", json_body={})
    assert info.value.code == "graph-write-refused"
    assert recorder.requests == []


async def test_read_only_view_shares_the_client_but_refuses_writes() -> None:
    client, recorder, _, _ = make_client(lambda r: httpx.Response(200, json={"id": "c1"}))
    view = client.read_only_view()
    assert (await view.get("/beta/deviceManagement/deviceCategories/c1"))["id"] == "c1"
    with pytest.raises(GraphWriteRefused):
        await view.patch("/beta/deviceManagement/deviceCategories/c1", json_body={"displayName": "x"})
    await client.patch("/beta/deviceManagement/deviceCategories/c1", json_body={"displayName": "x"})
    assert recorder.methods == ["GET", "PATCH"]


def batch_echo(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    responses = [{"id": r["id"], "status": 200, "headers": {}, "body": {"url": r["url"]}}
                 for r in body["requests"]]
    random.Random(7).shuffle(responses)  # Graph answers in any order
    return httpx.Response(200, json={"responses": responses})


async def test_read_only_allows_batch_of_gets_only() -> None:
    client, recorder, _, _ = make_client(batch_echo, read_only=True)
    gets = [BatchRequest(str(i), "GET", f"/deviceManagement/deviceCategories/{i}") for i in range(3)]
    answers = await client.batch(gets)
    assert [a.status for a in answers] == [200, 200, 200]
    with pytest.raises(GraphWriteRefused):
        await client.batch([*gets, BatchRequest("w", "PATCH", "/deviceManagement/deviceCategories/1",
                                                body={"displayName": "x"})])
    raw = {"requests": [{"id": "1", "method": "DELETE", "url": "/deviceManagement/deviceCategories/1"}]}
    with pytest.raises(GraphWriteRefused):
        await client.post("/beta/$batch", json_body=raw)
    assert len(recorder.requests) == 1


# ---------------------------------------------------------------- $batch


async def test_batch_chunks_by_twenty_and_returns_answers_in_request_order() -> None:
    client, recorder, _, _ = make_client(batch_echo)
    requests = [BatchRequest(f"r{i}", "GET", f"/deviceManagement/deviceCategories/{i}") for i in range(45)]
    answers = await client.batch(requests)
    assert [a.id for a in answers] == [r.id for r in requests]
    assert [a.body["url"] for a in answers] == [r.url for r in requests]
    sizes = [len(json.loads(r.content)["requests"]) for r in recorder.requests]
    assert sizes == [20, 20, 5]
    assert all(str(r.url) == f"{BASE}/beta/$batch" for r in recorder.requests)


async def test_batch_rebatches_throttled_items_after_the_longest_retry_after() -> None:
    rounds: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ids = [r["id"] for r in body["requests"]]
        rounds.append(ids)
        responses = []
        for r in body["requests"]:
            if len(rounds) == 1 and r["id"] == "a":
                responses.append({"id": "a", "status": 429, "headers": {"Retry-After": "2"}, "body": {}})
            elif len(rounds) == 1 and r["id"] == "b":
                responses.append({"id": "b", "status": 503, "headers": {"retry-after": "5"}, "body": {}})
            elif len(rounds) == 1 and r["id"] == "c":
                # c depends on b, so it failed only because b did.
                responses.append({"id": "c", "status": 424, "headers": {}, "body": {}})
            else:
                responses.append({"id": r["id"], "status": 204, "headers": {}, "body": None})
        return httpx.Response(200, json={"responses": responses})

    client, _, sleeps, _ = make_client(handler)
    requests = [
        BatchRequest("a", "PATCH", "/deviceManagement/deviceCategories/1", body={"displayName": "1"}),
        BatchRequest("b", "PATCH", "/deviceManagement/deviceCategories/2", body={"displayName": "2"}),
        BatchRequest("c", "PATCH", "/deviceManagement/deviceCategories/3", body={"displayName": "3"},
                     depends_on=("b",)),
        BatchRequest("d", "PATCH", "/deviceManagement/deviceCategories/4", body={"displayName": "4"}),
    ]
    answers = await client.batch(requests)
    assert [a.status for a in answers] == [204, 204, 204, 204]
    assert rounds == [["a", "b", "c", "d"], ["a", "b", "c"]]
    assert sleeps.calls == [5.0]


async def test_batch_sends_depends_on_and_content_type() -> None:
    client, recorder, _, _ = make_client(batch_echo)
    await client.batch([
        BatchRequest("1", "POST", "/deviceManagement/deviceCategories", body={"displayName": "x"}),
        BatchRequest("2", "GET", "/deviceManagement/deviceCategories", depends_on=("1",)),
    ])
    sent = json.loads(recorder.requests[0].content)["requests"]
    assert sent[0]["headers"] == {"Content-Type": "application/json"}
    assert sent[0]["body"] == {"displayName": "x"}
    assert sent[1]["dependsOn"] == ["1"]
    assert "body" not in sent[1]


async def test_batch_items_still_throttled_after_the_budget_are_returned_with_their_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json={"responses": [
            {"id": r["id"], "status": 429, "headers": {"Retry-After": "40"}, "body": {}}
            for r in body["requests"]]})

    client, recorder, sleeps, _ = make_client(handler)
    answers = await client.batch([BatchRequest("1", "GET", "/deviceManagement/deviceCategories")])
    assert answers[0].status == 429
    assert not answers[0].ok
    assert sleeps.calls == [40.0]  # a second 40 s wait would pass the 60 s cap
    assert len(recorder.requests) == 2


def test_chunking_keeps_dependency_groups_together() -> None:
    requests = [BatchRequest(str(i), "GET", "/x") for i in range(19)]
    requests += [BatchRequest("p", "POST", "/x", body={}), BatchRequest("q", "GET", "/x", depends_on=("p",))]
    chunks = chunk_requests(requests)
    assert [len(c) for c in chunks] == [19, 2]
    too_big = [BatchRequest("0", "GET", "/x")] + [
        BatchRequest(str(i), "GET", "/x", depends_on=(str(i - 1),)) for i in range(1, 21)]
    with pytest.raises(ValueError, match="does not fit"):
        chunk_requests(too_big)
    with pytest.raises(ValueError, match="unique"):
        chunk_requests([BatchRequest("1", "GET", "/x"), BatchRequest("1", "GET", "/y")])


async def test_failed_batch_items_map_to_the_same_errors_as_direct_calls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"responses": [
            {"id": "s", "status": 403, "headers": {}, "body": {"error": {"code": "Forbidden"}}},
            {"id": "c", "status": 404, "headers": {}, "body": {"error": {"code": "NotFound"}}},
            {"id": "ok", "status": 200, "headers": {}, "body": {"id": "x"}},
        ]})

    client, _, _, _ = make_client(handler)
    requests = [BatchRequest("s", "GET", "/deviceManagement/deviceManagementScripts/1"),
                BatchRequest("c", "GET", "/deviceManagement/deviceCategories/1"),
                BatchRequest("ok", "GET", "/deviceManagement/deviceCategories/2")]
    script, category, ok = await client.batch(requests)
    forbidden = client.batch_error(requests[0], script)
    assert isinstance(forbidden, GraphPermissionMissing)
    assert forbidden.permission == "DeviceManagementScripts.Read.All"
    assert isinstance(client.batch_error(requests[1], category), GraphNotFound)
    assert client.batch_error(requests[2], ok) is None
