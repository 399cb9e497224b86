"""JSON $batch: validation, per-item routing, dependsOn, per-item throttling and faults."""

from __future__ import annotations

from typing import Any

DM = "/deviceManagement"


def _get(i: int, url: str = f"{DM}/deviceCategories") -> dict[str, Any]:
    return {"id": str(i), "method": "GET", "url": url}


def test_twenty_items_pass_and_twenty_one_are_rejected(graph):
    client = graph()
    ok = client.post("/$batch", json={"requests": [_get(i) for i in range(20)]})
    assert ok.status_code == 200
    assert sorted(int(r["id"]) for r in ok.json()["responses"]) == list(range(20))
    too_many = client.post("/$batch", json={"requests": [_get(i) for i in range(21)]})
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "BadRequest"


def test_malformed_batches_are_400(graph):
    client = graph()
    for payload in [
        {"requests": [_get(1), _get(1)]},
        {"requests": [{"id": "1", "method": "GET",
                       "url": "https://graph.microsoft.com/beta/deviceManagement/deviceCategories"}]},
        {"requests": [{"id": "1", "method": "POST", "url": f"{DM}/deviceCategories",
                       "body": {"displayName": "x"}}]},
        {"requests": [dict(_get(1), dependsOn=["9"])]},
        {"value": []},
    ]:
        assert client.post("/$batch", json=payload).status_code == 400, payload


def test_items_are_routed_individually(sim, graph, tenant_id):
    client = graph()
    category = client.get(f"{DM}/deviceCategories").json()["value"][0]
    since = sim.control.requests()[-1]["time"]
    response = client.post("/$batch", json={"requests": [
        _get(1, f"{DM}/deviceCategories/{category['id']}"),
        _get(2, f"{DM}/deviceCategories/00000000-0000-0000-0000-000000000000"),
        _get(3, "deviceManagement/configurationPolicies?$top=1"),
        {"id": "4", "method": "POST", "url": f"{DM}/deviceCategories",
         "headers": {"Content-Type": "application/json"}, "body": {"displayName": "From batch"}},
        _get(5, f"{DM}/notAThing"),
    ]})
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["responses"]}
    assert by_id["1"]["status"] == 200
    assert by_id["1"]["body"]["id"] == category["id"]
    assert by_id["2"]["status"] == 404
    assert by_id["3"]["status"] == 200
    assert len(by_id["3"]["body"]["value"]) == 1
    assert by_id["3"]["body"]["@odata.nextLink"].startswith(sim.base_url)
    assert by_id["4"]["status"] == 201
    assert by_id["5"]["status"] == 400
    names = {c["displayName"] for c in sim.control.objects(tenant_id, "deviceCategory")}
    assert "From batch" in names
    logged = [e for e in sim.control.requests(tenant=tenant_id, since=since) if e["batch"]]
    assert sorted(e["method"] for e in logged) == ["GET", "GET", "GET", "GET", "POST"]


def test_depends_on_failure_gives_424(graph):
    client = graph()
    response = client.post("/$batch", json={"requests": [
        _get(1, f"{DM}/deviceCategories/00000000-0000-0000-0000-000000000000"),
        dict(_get(2), dependsOn=["1"]),
        dict(_get(3), dependsOn=[]),
    ]})
    by_id = {r["id"]: r["status"] for r in response.json()["responses"]}
    assert by_id == {"1": 404, "2": 424, "3": 200}


def test_items_are_throttled_and_faulted_individually(sim, graph, tenant_id):
    client = graph()
    sim.control.set_faults([{"kind": "503", "path": "deviceCategories$", "nth": 2,
                             "retryAfter": 7}])
    response = client.post("/$batch", json={"requests": [_get(i) for i in range(4)]})
    assert response.status_code == 200
    statuses = {r["id"]: r for r in response.json()["responses"]}
    assert [statuses[str(i)]["status"] for i in range(4)] == [200, 503, 200, 200]
    assert statuses["1"]["headers"]["Retry-After"] == "7"
    sim.control.clear_faults()

    sim.control.set_throttling(True, scale=1000)  # one write per app+tenant window
    writes = [{"id": str(i), "method": "POST", "url": f"{DM}/deviceCategories",
               "headers": {"Content-Type": "application/json"},
               "body": {"displayName": f"c{i}"}} for i in range(3)]
    throttled = client.post("/$batch", json={"requests": writes})
    assert throttled.status_code == 200
    codes = sorted(r["status"] for r in throttled.json()["responses"])
    assert codes == [201, 429, 429]
    inner = next(r for r in throttled.json()["responses"] if r["status"] == 429)
    assert "Retry-After" in inner["headers"]
    assert inner["body"]["error"]["code"] == "TooManyRequests"


def test_numeric_ids_are_accepted_and_answered_as_strings(graph):
    client = graph()
    response = client.post("/$batch", json={"requests": [
        {"id": 1, "method": "GET", "url": f"{DM}/deviceCategories"},
        {"id": 2, "method": "GET", "url": f"{DM}/roleScopeTags", "dependsOn": [1]},
    ]})
    assert response.status_code == 200, response.text
    answers = response.json()["responses"]
    assert sorted(r["id"] for r in answers) == ["1", "2"]
    assert all(isinstance(r["id"], str) and r["status"] == 200 for r in answers)
    # Booleans are not ids.
    assert client.post("/$batch", json={"requests": [
        {"id": True, "method": "GET", "url": f"{DM}/deviceCategories"}]}).status_code == 400


def test_select_without_id_still_returns_the_id_on_intune_routes_inside_a_batch(graph):
    client = graph()
    response = client.post("/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"{DM}/deviceShellScripts?$select=displayName"},
        {"id": "2", "method": "GET", "url": "/groups?$select=displayName"},
    ]})
    by_id = {r["id"]: r for r in response.json()["responses"]}
    scripts = by_id["1"]["body"]["value"]
    assert scripts
    assert all(set(s) == {"id", "displayName", "@odata.type"} for s in scripts)
    one = client.get(f"{DM}/deviceShellScripts/{scripts[0]['id']}", params={"$select": "fileName"}).json()
    assert one["id"] == scripts[0]["id"]
    assert "displayName" not in one
    # Entra answers only what was selected.
    assert all("id" not in g for g in by_id["2"]["body"]["value"])
