"""``GET /api/tenants/{tenantId}/permissions`` over the local stack: before any run, which policy types the
tenant's consent does not cover, read from the app token our service gets for that tenant."""

from __future__ import annotations

import time
import uuid

import pytest

from localdev.stack import DEMO_GRAPH_CLIENT_ID, DEMO_GRAPH_ROLES, tenant_registration
from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Stack, wait_terminal

pytestmark = pytest.mark.e2e

_SCRIPTS_READ = "DeviceManagementScripts.Read.All"
_SCRIPTS_WRITE = "DeviceManagementScripts.ReadWrite.All"


def _tenant_consenting_to(stack: Stack, roles: list[str]) -> str:
    """A customer tenant where our app registration holds exactly ``roles``."""
    tenant_id = str(uuid.uuid4())
    name = f"Customer {tenant_id[:8]}"
    stack.sim.post("/_sim/tenants", json={"preset": "demo", "tenantId": tenant_id, "seed": 1,
                                          "displayName": name}).raise_for_status()
    stack.sim.post(f"/_sim/tenants/{tenant_id}/apps", json={
        "clientId": DEMO_GRAPH_CLIENT_ID, "secret": stack.demo_secret, "roles": roles}).raise_for_status()
    response = stack.admin().put(f"/tenants/{tenant_id}", json=tenant_registration(name))
    assert response.status_code in (200, 201), response.text
    return tenant_id


def test_a_tenant_without_the_scripts_permission_reports_the_script_types_uncovered(stack: Stack) -> None:
    script_types = {k for k, t in CATALOG.items() if t.read_permission == _SCRIPTS_READ}
    assert {"powerShellScript", "macOSShellScript", "complianceScript"} <= script_types
    without_scripts = [r for r in DEMO_GRAPH_ROLES if r not in (_SCRIPTS_READ, _SCRIPTS_WRITE)]
    tenant = _tenant_consenting_to(stack, without_scripts)
    reader, _ = stack.user(tenant, "reader")

    response = reader.get(f"/tenants/{tenant}/permissions")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenantId"] == tenant
    assert set(body["uncovered"]["capture"]) == script_types
    assert set(body["uncovered"]["restore"]) == {k for k in script_types if CATALOG[k].backup_only is None}
    assert _SCRIPTS_READ not in body["granted"]
    assert "DeviceManagementConfiguration.ReadWrite.All" in body["granted"]
    items = {i["policyType"]: i for i in body["items"]}
    assert sorted(items) == sorted(CATALOG)
    assert items["powerShellScript"]["capture"] == {"permission": _SCRIPTS_READ, "covered": False}
    assert items["powerShellScript"]["restore"] == {"permission": _SCRIPTS_WRITE, "covered": False}
    assert items["settingsCatalog"]["capture"]["covered"] is True
    assert items["settingsCatalog"]["restore"]["covered"] is True
    assert items["vppToken"]["restore"] is None  # backup-only: nothing is written back


def test_a_read_only_consent_covers_capture_and_no_restore(stack: Stack) -> None:
    read_only = sorted({t.read_permission for t in CATALOG.values()})
    tenant = _tenant_consenting_to(stack, read_only)
    reader, _ = stack.user(tenant, "reader")

    body = reader.get(f"/tenants/{tenant}/permissions").json()

    assert body["uncovered"]["capture"] == []
    assert body["uncovered"]["restore"] == sorted(k for k, t in CATALOG.items() if t.backup_only is None)


def test_only_callers_with_a_grant_see_a_tenant_permissions(stack: Stack) -> None:
    tenant = stack.new_customer_tenant()
    stranger, _ = stack.user(None, None)

    response = stranger.get(f"/tenants/{tenant}/permissions")

    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    reader, _ = stack.user(tenant, "reader")
    full = reader.get(f"/tenants/{tenant}/permissions").json()
    assert full["uncovered"] == {"capture": [], "restore": []}


def test_a_whole_tenant_backup_leaves_out_only_the_types_the_consent_cannot_read(stack: Stack) -> None:
    script_types = {k for k, t in CATALOG.items() if t.read_permission == _SCRIPTS_READ}
    without_scripts = [r for r in DEMO_GRAPH_ROLES if r not in (_SCRIPTS_READ, _SCRIPTS_WRITE)]
    tenant = _tenant_consenting_to(stack, without_scripts)
    operator, _ = stack.user(tenant, "operator")
    since = time.time()
    started = operator.post(f"/tenants/{tenant}/backup-sets",
                            json={"name": "all", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    run = wait_terminal(operator, started.headers["Location"], timeout=120)
    # Every policy it could list was captured; the set says what it could not hold, and why.
    assert run["status"] == "succeeded", run
    backup_set = operator.get(f"/tenants/{tenant}/backup-sets/{started.json()['backupSet']['id']}").json()
    assert backup_set["status"] == "partial"
    left_out = backup_set["typesLeftOut"]
    assert set(left_out) == script_types
    assert all(_SCRIPTS_READ in error["message"] for error in left_out.values())
    # The consent check left them out before Graph was asked.
    log = stack.sim.get("/_sim/requests", params={"tenant": tenant, "since": str(since)}).json()["value"]
    script_routes = ("deviceManagementScripts", "deviceHealthScripts")
    assert not [e for e in log if any(route in e["path"] for route in script_routes)]
