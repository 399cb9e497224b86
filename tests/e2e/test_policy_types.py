"""``GET /api/policy-types`` over HTTP on the local stack: any authenticated caller reads the whole catalog,
with what a restore can do with each type; without a token the answer is 401."""

from __future__ import annotations

import httpx
import pytest

from shared.graph.catalog import CATALOG
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def test_a_caller_without_any_grant_reads_every_catalog_type_with_its_capabilities(stack: Stack) -> None:
    api, _ = stack.user(None, None)

    response = api.get("/policy-types")

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    items = response.json()["items"]
    assert [item["key"] for item in items] == sorted(CATALOG)
    for item in items:
        policy_type = CATALOG[item["key"]]
        writable = policy_type.backup_only is None
        assert item["displayName"] == policy_type.display_name
        assert item["graphRoute"] == policy_type.list_url()
        assert item["permission"] == {"read": policy_type.read_permission,
                                      "write": policy_type.write_permission}
        assert item["capabilities"] == {"capture": True, "create": writable, "update": writable,
                                        "assignments": writable and policy_type.assignments is not None}
        assert item.get("backupOnly") == policy_type.backup_only
    backup_only = {item["key"] for item in items if "backupOnly" in item}
    assert backup_only == {"deviceManagementPartner", "remoteAssistancePartner", "contentApp",
                           "depOnboardingSetting", "vppToken", "applePushCertificate", "managedGooglePlay",
                           "compliancePartner"}


def test_no_token_is_401(stack: Stack) -> None:
    response = httpx.get(f"{stack.info.api_base_url}/policy-types", timeout=30.0)

    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "items" not in response.json()
