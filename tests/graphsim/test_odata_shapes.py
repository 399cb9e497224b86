"""The OData envelope shapes clients parse: contexts, paging links and counts, direct and inside ``$batch``.

Each answer is pinned as real Graph gives it: an absolute ``@odata.context`` on the version the request used
(``/$entity`` for one object, the parent's id for a navigation, the selected properties after the entity
set), an absolute ``@odata.nextLink`` that carries every other query option and an opaque ``$skiptoken``,
and no link on the last page.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.graphsim.conftest import read_all_pages

DM = "/deviceManagement"


def _metadata(sim, version: str) -> str:
    return f"{sim.base_url}/{version}/$metadata#"


def test_list_item_and_navigation_contexts_on_both_versions(sim, graph):
    for version in ("beta", "v1.0"):
        client = graph(version=version)
        listed = client.get(f"{DM}/deviceCompliancePolicies").json()
        collection = _metadata(sim, version) + "deviceManagement/deviceCompliancePolicies"
        assert listed["@odata.context"] == collection
        assert "@odata.nextLink" not in listed
        policy_id = listed["value"][0]["id"]
        item = client.get(f"{DM}/deviceCompliancePolicies/{policy_id}").json()
        assert item["@odata.context"] == (_metadata(sim, version)
                                          + "deviceManagement/deviceCompliancePolicies/$entity")
        assert item["id"] == policy_id
        nav = client.get(f"{DM}/deviceCompliancePolicies/{policy_id}/assignments").json()
        assert nav["@odata.context"] == (_metadata(sim, version) + "deviceManagement/deviceCompliancePolicies"
                                         f"('{policy_id}')/assignments")
        assert isinstance(nav["value"], list)
        groups = client.get("/groups").json()
        assert groups["@odata.context"] == _metadata(sim, version) + "groups"


def test_select_is_named_in_the_context(sim, graph):
    client = graph()
    listed = client.get(f"{DM}/deviceCompliancePolicies", params={"$select": "displayName,version"}).json()
    assert listed["@odata.context"] == (_metadata(sim, "beta")
                                        + "deviceManagement/deviceCompliancePolicies(displayName,version)")
    assert all(set(p) <= {"id", "@odata.type", "displayName", "version"} for p in listed["value"])
    policy_id = listed["value"][0]["id"]
    item = client.get(f"{DM}/deviceCompliancePolicies/{policy_id}", params={"$select": "displayName"}).json()
    assert item["@odata.context"] == (_metadata(sim, "beta")
                                      + "deviceManagement/deviceCompliancePolicies(displayName)/$entity")
    assert item["id"] == policy_id


def test_next_link_keeps_the_other_options_and_the_last_page_has_none(sim, graph):
    tenant = sim.control.create_tenant("generated", policies=400, seed=4)
    client = graph(tenant=tenant["tenantId"])
    url = f"{DM}/deviceCompliancePolicies"
    first = client.get(url, params={"$top": "5", "$select": "displayName",
                                    "$expand": "assignments"}).json()
    assert len(first["value"]) == 5
    link = urlsplit(first["@odata.nextLink"])
    assert f"{link.scheme}://{link.netloc}" == sim.base_url
    assert link.path == f"/beta{url}"
    options = parse_qs(link.query)
    assert options["$top"] == ["5"]
    assert options["$select"] == ["displayName"]
    assert options["$expand"] == ["assignments"]
    assert len(options["$skiptoken"]) == 1
    assert "$skip" not in options
    second = client.get(first["@odata.nextLink"]).json()
    assert second["@odata.context"] == first["@odata.context"]
    assert all("assignments" in p for p in second["value"])
    assert not {p["id"] for p in first["value"]} & {p["id"] for p in second["value"]}
    everything = read_all_pages(client, url, **{"$top": "7"})
    assert len(everything) == len({p["id"] for p in everything}) > 7
    last = client.get(url, params={"$top": str(len(everything))}).json()
    assert len(last["value"]) == len(everything)
    assert "@odata.nextLink" not in last
    # A token that is not one of Graph's is a 400, not a first page.
    assert client.get(url, params={"$skiptoken": "not-a-token"}).status_code == 400


def test_entra_lists_page_with_skiptoken_and_count_only_on_request(sim, graph):
    client = graph(version="v1.0")
    first = client.get("/groups", params={"$top": "1"}).json()
    assert "@odata.count" not in first
    assert first["@odata.nextLink"].startswith(f"{sim.base_url}/v1.0/groups?")
    assert "$skiptoken=" in first["@odata.nextLink"]
    counted = client.get("/groups", params={"$count": "true"}).json()
    assert counted["@odata.count"] == len(read_all_pages(client, "/groups"))


def test_batch_answers_carry_the_same_shapes_as_direct_calls(sim, graph):
    client = graph()
    direct = client.get(f"{DM}/deviceCompliancePolicies").json()
    policy_id = direct["value"][0]["id"]
    response = client.post("/$batch", json={"requests": [
        {"id": "list", "method": "GET", "url": f"{DM}/deviceCompliancePolicies?$top=1"},
        {"id": "item", "method": "GET", "url": f"{DM}/deviceCompliancePolicies/{policy_id}"},
        {"id": "nav", "method": "GET", "url": f"{DM}/deviceCompliancePolicies/{policy_id}/assignments"},
        {"id": "missing", "method": "GET", "url": f"{DM}/deviceCompliancePolicies/{'0' * 8}-0000-0000-0000-"
                                                  f"{'0' * 12}"},
    ]})
    assert response.status_code == 200
    envelope = response.json()
    assert set(envelope) == {"responses"}
    answers = {r["id"]: r for r in envelope["responses"]}
    assert set(answers) == {"list", "item", "nav", "missing"}
    for answer in answers.values():
        assert set(answer) <= {"id", "status", "headers", "body"}
        assert answer["headers"]["Content-Type"].startswith("application/json")
    base = _metadata(sim, "beta") + "deviceManagement/deviceCompliancePolicies"
    listed = answers["list"]["body"]
    assert answers["list"]["status"] == 200
    assert listed["@odata.context"] == base
    assert len(listed["value"]) == 1
    assert urlsplit(listed["@odata.nextLink"]).path == f"/beta{DM}/deviceCompliancePolicies"
    assert client.get(listed["@odata.nextLink"]).status_code == 200
    assert answers["item"]["body"]["@odata.context"] == base + "/$entity"
    assert answers["item"]["body"]["id"] == policy_id
    assert answers["nav"]["body"]["@odata.context"] == base + f"('{policy_id}')/assignments"
    assert answers["missing"]["status"] == 404
    assert set(answers["missing"]["body"]["error"]) >= {"code", "message", "innerError"}
