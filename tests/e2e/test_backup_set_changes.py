"""Backup set changes end to end: each set against the previous complete one of its tenant.

A second backup of an untouched tenant reports no change; after an edit, an add, a delete and an update
that changes nothing but Graph's stamps (made through the simulator's control API), exactly the edited,
added and deleted policies are reported.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


@pytest.fixture(scope="module")
def operator(stack: Stack, tenant: str) -> Api:
    api, _ = stack.user(tenant, "operator", name="Olivia Operator")
    return api


def _back_up(api: Api, tenant: str, name: str) -> str:
    """Back up the whole tenant, wait for the run, return the set's id."""
    started = api.post(f"/tenants/{tenant}/backup-sets", json={"name": name, "selection": {"all": True}})
    assert started.status_code == 202, started.text
    done = wait_terminal(api, started.headers["Location"], timeout=60)
    assert done["status"] == "succeeded", (done["failure"], done["counts"])
    return str(started.json()["backupSet"]["id"])


def _changes(api: Api, tenant: str, set_id: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every line of a set's changes by item id (read in small pages), and the set they are against."""
    lines: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"top": 5}
    while True:
        response = api.get(f"/tenants/{tenant}/backup-sets/{set_id}/changes", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        for line in body["items"]:
            assert line["itemId"] not in lines, "each item is listed once"
            lines[line["itemId"]] = line
        if not body["continuation"]:
            return lines, body["comparedWith"]
        params["continuation"] = body["continuation"]


def _objects(stack: Stack, tenant: str, policy_type: str) -> list[dict[str, Any]]:
    return list(stack.sim.get(f"/_sim/tenants/{tenant}/objects/{policy_type}").json()["value"])


def _mutate(stack: Stack, tenant: str, **body: Any) -> dict[str, Any]:
    response = stack.sim.post(f"/_sim/tenants/{tenant}/mutations", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def two_backups(operator: Api, tenant: str) -> tuple[str, str]:
    """Two backups of the untouched demo tenant, one after the other."""
    return _back_up(operator, tenant, "monday"), _back_up(operator, tenant, "tuesday")


def test_a_second_backup_of_an_untouched_tenant_reports_no_change(
        operator: Api, tenant: str, two_backups: tuple[str, str]) -> None:
    first, second = two_backups
    first_lines, first_against = _changes(operator, tenant, first)
    assert first_against is None
    assert first_lines
    assert {line["change"] for line in first_lines.values()} == {"new"}

    lines, against = _changes(operator, tenant, second)
    assert against == first
    assert sorted(lines) == sorted(first_lines)
    assert {line["change"] for line in lines.values()} == {"unchanged"}
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{second}").json()
    assert backup_set["comparedWith"] == first
    assert backup_set["changes"] == {"new": 0, "changed": 0, "unchanged": len(lines), "deleted": 0}


def test_edits_adds_and_deletes_are_reported_exactly(
        stack: Stack, operator: Api, tenant: str, two_backups: tuple[str, str]) -> None:
    _, previous = two_backups
    edited, touched = _objects(stack, tenant, "settingsCatalog")[:2]
    deleted = _objects(stack, tenant, "powerShellScript")[0]
    _mutate(stack, tenant, op="edit", type="settingsCatalog", id=edited["id"],
            patch={"description": "Raised the bar after the audit"})
    # An update that changes nothing: Graph stamps a new time and version, the policy is the same.
    _mutate(stack, tenant, op="edit", type="settingsCatalog", id=touched["id"], patch={})
    added = _mutate(stack, tenant, op="add", type="settingsCatalog", object={
        "name": "Added after Tuesday", "description": "", "platforms": "windows10", "technologies": "mdm",
        "roleScopeTagIds": ["0"], "settings": edited["settings"][:1]})
    _mutate(stack, tenant, op="delete", type="powerShellScript", id=deleted["id"])

    latest = _back_up(operator, tenant, "wednesday")
    lines, against = _changes(operator, tenant, latest)
    assert against == previous
    reported = {item_id: line["change"] for item_id, line in lines.items() if line["change"] != "unchanged"}
    assert reported == {f"settingsCatalog:{edited['id']}": "changed",
                        f"settingsCatalog:{added['id']}": "new",
                        f"powerShellScript:{deleted['id']}": "deleted"}
    assert lines[f"settingsCatalog:{touched['id']}"]["change"] == "unchanged"
    gone = lines[f"powerShellScript:{deleted['id']}"]
    assert gone == {"itemId": f"powerShellScript:{deleted['id']}", "policyType": "powerShellScript",
                    "sourceId": deleted["id"], "displayName": deleted["displayName"], "change": "deleted"}
    previous_lines, _ = _changes(operator, tenant, previous)
    assert len(lines) == len(previous_lines) + 1  # every earlier item once, plus the new one
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{latest}").json()
    assert backup_set["changes"] == {"new": 1, "changed": 1, "unchanged": len(lines) - 3, "deleted": 1}


def test_strangers_readers_and_unknown_sets(stack: Stack, tenant: str, two_backups: tuple[str, str]) -> None:
    set_id = two_backups[1]
    path = f"/tenants/{tenant}/backup-sets/{set_id}/changes"
    stranger, _ = stack.user(None, None)
    assert stranger.get(path).status_code == 404
    other = stack.new_customer_tenant()
    other_api, _ = stack.user(other, "operator")
    assert other_api.get(f"/tenants/{other}/backup-sets/{set_id}/changes").status_code == 404
    reader, _ = stack.user(tenant, "reader")
    assert reader.get(path).status_code == 200
    unknown = reader.get(f"/tenants/{tenant}/backup-sets/bs_01JD0000000000000000000000/changes")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "backup-set-not-found")
    assert reader.get(path, params={"top": 0}).status_code == 400
