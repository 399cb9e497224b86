"""The policy type catalog as ``GET /api/policy-types`` renders it, against the catalog and the document."""

from __future__ import annotations

from http_triggers._views import render_policy_types
from shared.graph.catalog import CATALOG
from shared.openapi import openapi_document


def _rendered() -> dict[str, dict[str, object]]:
    items = render_policy_types(CATALOG.values())["items"]
    assert [i["key"] for i in items] == sorted(CATALOG)
    return {i["key"]: i for i in items}


def test_every_catalog_type_is_rendered_with_its_route_permissions_and_capabilities() -> None:
    rendered = _rendered()
    for key, policy_type in CATALOG.items():
        item = rendered[key]
        assert item["displayName"] == policy_type.display_name
        assert item["graphRoute"] == f"/{policy_type.api_version}/{policy_type.collection}"
        assert item["permission"] == {"read": policy_type.read_permission,
                                      "write": policy_type.write_permission}
        writable = policy_type.backup_only is None
        assert item["capabilities"] == {"capture": True, "create": writable, "update": writable,
                                        "assignments": writable and policy_type.assignments is not None}
        assert item.get("backupOnly") == policy_type.backup_only


def test_backup_only_is_present_only_on_types_never_written_back() -> None:
    rendered = _rendered()
    partner = rendered["deviceManagementPartner"]
    assert partner["capabilities"] == {"capture": True, "create": False, "update": False,
                                       "assignments": False}
    assert isinstance(partner["backupOnly"], str)
    assert partner["backupOnly"]
    assert "backupOnly" not in rendered["settingsCatalog"]
    assert rendered["settingsCatalog"]["capabilities"]["assignments"] is True
    # Conditional Access targets live in the policy's conditions: restorable, but without assignments.
    assert "backupOnly" not in rendered["conditionalAccessPolicy"]
    assert rendered["conditionalAccessPolicy"]["capabilities"] == {
        "capture": True, "create": True, "update": True, "assignments": False}
    assert rendered["conditionalAccessPolicy"]["graphRoute"] == "/v1.0/identity/conditionalAccess/policies"


def test_the_document_describes_exactly_the_fields_a_rendered_type_has() -> None:
    schemas = openapi_document()["components"]["schemas"]
    schema = schemas["PolicyType"]
    for item in _rendered().values():
        assert set(schema["required"]) <= set(item) <= set(schema["properties"])
        assert set(item["capabilities"]) == set(schema["properties"]["capabilities"]["properties"])
        assert set(item["permission"]) == set(schema["properties"]["permission"]["properties"])
        assert item["key"] in schema["properties"]["key"]["enum"]
    get = openapi_document()["paths"]["/api/policy-types"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PolicyTypeList"}
    assert get["security"] == [{"entra": []}]
