"""Version gating, unknown routes and bearer-token validation."""

from __future__ import annotations

import httpx
import pytest

from localdev.graphsim.testing import SimHandle

DM = "/deviceManagement"


@pytest.mark.parametrize("segment", ["configurationPolicies", "groupPolicyConfigurations",
                                     "deviceManagementScripts", "intents", "assignmentFilters",
                                     "roleScopeTags", "windowsAutopilotDeploymentProfiles"])
def test_beta_only_collections_are_not_found_under_v1(graph, segment):
    client = graph(version="v1.0")
    response = client.get(f"{DM}/{segment}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"] == f"Resource not found for the segment '{segment}'."
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])


@pytest.mark.parametrize("segment", ["deviceConfigurations", "deviceCompliancePolicies",
                                     "deviceEnrollmentConfigurations", "deviceCategories",
                                     "notificationMessageTemplates"])
def test_v1_collections_are_served_under_both_versions(graph, segment):
    for version in ("v1.0", "beta"):
        response = graph(version=version).get(f"{DM}/{segment}")
        assert response.status_code == 200
        assert f"/{version}/$metadata#deviceManagement/{segment}" in response.json()[
            "@odata.context"]


def test_unknown_routes_ids_and_versions(sim, graph):
    client = graph()
    unknown = client.get(f"{DM}/notACollection")
    assert unknown.status_code == 400
    assert "notACollection" in unknown.json()["error"]["message"]
    missing = client.get(f"{DM}/deviceConfigurations/00000000-0000-0000-0000-000000000123")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ResourceNotFound"
    token = client.headers["Authorization"]
    bad_version = httpx.get(f"{sim.base_url}/v2.0/deviceManagement/deviceConfigurations",
                            headers={"Authorization": token}, verify=sim.ssl_context())
    assert bad_version.status_code == 400
    assert client.request("PUT", f"{DM}/deviceCategories", json={}).status_code == 405


def _get(sim: SimHandle, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{sim.base_url}/beta{DM}/deviceCategories", headers=headers,
                     verify=sim.ssl_context())


def test_missing_expired_and_foreign_tokens_are_401(sim, tenant_id):
    control = sim.control
    graph_aud = "https://graph.microsoft.com"
    roles = ["DeviceManagementConfiguration.Read.All"]
    valid = control.mint_token(tenant_id, graph_aud, roles=roles, idtyp="app")
    assert _get(sim, valid).status_code == 200

    for token, fragment in [
        (None, "empty"),
        (control.mint_token(tenant_id, graph_aud, roles=roles, expires_in=-60), "expired"),
        (control.mint_token(tenant_id, "api://someone-else", roles=roles), "validation"),
        (control.mint_token("0d0f1a2b-0000-4000-8000-000000000000", graph_aud, roles=roles),
         "tenant"),
        (valid[:-4] + "AAAA", "validation"),
    ]:
        response = _get(sim, token)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "InvalidAuthenticationToken"
        assert fragment in error["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
