"""The permission check service: a tenant's consent per type from its app token, rendered for the API."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest

from shared.graph.auth import StaticTokenProvider
from shared.graph.catalog import CATALOG
from shared.graph.consent import consent_of_token
from shared.graph.errors import GraphAuthError
from shared.openapi import openapi_document
from shared.services.consent import ConsentService, render_consent


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class _Client:
    def __init__(self, token: str) -> None:
        self.token_provider = StaticTokenProvider(token)


class _Graph:
    """A Graph port handing out one tenant's client; records which tenants were asked for."""

    def __init__(self, token: str) -> None:
        self._client = _Client(token)
        self.asked: list[tuple[str, bool]] = []

    async def client(self, tenant_id: str, *, writes: bool = False) -> Any:
        self.asked.append((tenant_id, writes))
        return self._client

    async def forget(self, tenant_id: str) -> None:
        pass


EVERY_WRITE = sorted({t.write_permission for t in CATALOG.values()})


async def test_types_whose_read_permission_is_missing_are_left_out_of_a_listing_with_the_reason() -> None:
    granted = [p for p in EVERY_WRITE if p != "DeviceManagementScripts.ReadWrite.All"]
    graph = _Graph(_jwt({"roles": granted}))
    service = ConsentService(graph=graph)

    split = await service.readable("t1", ["settingsCatalog", "powerShellScript", "macOSShellScript"])

    assert split.readable == ("settingsCatalog",)
    assert split.unreadable == {"powerShellScript": "DeviceManagementScripts.Read.All",
                                "macOSShellScript": "DeviceManagementScripts.Read.All"}
    errors = split.errors()
    assert errors["powerShellScript"].code == "graph-permission-missing"
    assert "DeviceManagementScripts.Read.All" in errors["powerShellScript"].message
    assert graph.asked == [("t1", False)]  # a read-only client: the check never writes


async def test_the_answer_covers_every_type_and_echoes_only_permissions_the_catalog_knows() -> None:
    planted = "Ignore previous instructions <script>"
    token = _jwt({"roles": ["DeviceManagementConfiguration.Read.All", planted]})
    service = ConsentService(graph=_Graph(token))

    report = await service.report("t1")
    body = render_consent("t1", report)

    assert body["granted"] == ["DeviceManagementConfiguration.Read.All"]
    assert planted not in json.dumps(body)
    items = {i["policyType"]: i for i in body["items"]}
    assert sorted(items) == sorted(CATALOG)
    assert items["settingsCatalog"]["capture"]["covered"] is True
    assert items["settingsCatalog"]["restore"] == {
        "permission": "DeviceManagementConfiguration.ReadWrite.All", "covered": False}
    assert items["applePushCertificate"]["restore"] is None
    assert "settingsCatalog" not in body["uncovered"]["capture"]
    assert "settingsCatalog" in body["uncovered"]["restore"]
    assert "powerShellScript" in body["uncovered"]["capture"]
    assert "applePushCertificate" not in body["uncovered"]["restore"]


async def test_a_token_that_is_not_a_jwt_is_an_upstream_auth_failure_without_its_text() -> None:
    service = ConsentService(graph=_Graph("opaque-token-text"))

    with pytest.raises(GraphAuthError) as raised:
        await service.report("t1")

    assert "opaque-token-text" not in str(raised.value.detail)


def test_the_answer_fits_the_documented_schema() -> None:
    schema = openapi_document()["components"]["schemas"]["TenantPermissions"]
    for roles in ([], ["DeviceManagementApps.ReadWrite.All"], EVERY_WRITE):
        jsonschema.Draft202012Validator(schema).validate(render_consent("t1", consent_of_token(roles)))
