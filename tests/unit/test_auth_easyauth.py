from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.auth import authenticate
from shared.config import Settings
from shared.errors import Unauthenticated

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "5d0b6a0e-1111-2222-3333-444455556666"
AUD = "api://intune-backup"
NS = "http://schemas.microsoft.com/identity/claims/"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"auth_mode": "easyauth", "auth_audience": AUD, "website_auth_enabled": True,
                                  "storage_connection_string": "UseDevelopmentStorage=true"}
    values.update(overrides)
    return Settings(**values)


def header(claims: list[tuple[str, str]], **extra: Any) -> str:
    body = {"auth_typ": "aad", "name_typ": "name",
            "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
            "claims": [{"typ": t, "val": v} for t, v in claims], **extra}
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_short_claim_names():
    h = header([("tid", TID), ("oid", OID), ("name", "Ada"), ("aud", AUD)])
    p = authenticate({"X-MS-CLIENT-PRINCIPAL": h}, settings())
    assert (p.tenant_id, p.object_id, p.name, p.is_app) == (TID, OID, "Ada", False)


def test_uri_claim_names_roles_and_lower_case_header():
    h = header([(NS + "tenantid", TID), (NS + "objectidentifier", OID.upper()),
                ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Platform.Admin"),
                ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Runs.Read"),
                ("idtyp", "app"), ("azp", "0f0e0d0c-0b0a-0908-0706-050403020100")])
    p = authenticate({"x-ms-client-principal": h}, settings())
    assert p.object_id == OID
    assert p.roles == frozenset({"Platform.Admin", "Runs.Read"})
    assert p.is_app
    assert p.app_id == "0f0e0d0c-0b0a-0908-0706-050403020100"
    assert p.is_platform_admin


def test_fails_closed_when_easy_auth_is_not_enabled():
    h = header([("tid", TID), ("oid", OID)])
    with pytest.raises(Unauthenticated) as err:
        authenticate({"X-MS-CLIENT-PRINCIPAL": h}, settings(website_auth_enabled=False))
    assert err.value.status == 401


@pytest.mark.parametrize("value", [
    None, "", "%%%not-base64%%%", base64.b64encode(b"not json").decode(),
    base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b'{"claims": "x"}').decode(),
    base64.b64encode(b'{"claims": [{"typ": "tid"}]}').decode(),
])
def test_absent_or_malformed_header_is_401(value):
    headers = {} if value is None else {"X-MS-CLIENT-PRINCIPAL": value}
    with pytest.raises(Unauthenticated):
        authenticate(headers, settings())


def test_missing_object_id_is_401():
    with pytest.raises(Unauthenticated):
        authenticate({"X-MS-CLIENT-PRINCIPAL": header([("tid", TID)])}, settings())


def test_tenant_outside_the_allow_list_is_401():
    h = header([("tid", TID), ("oid", OID)])
    with pytest.raises(Unauthenticated):
        authenticate({"X-MS-CLIENT-PRINCIPAL": h},
                     settings(auth_issuer_tenants="11111111-1111-1111-1111-111111111111"))
    assert authenticate({"X-MS-CLIENT-PRINCIPAL": h},
                        settings(auth_issuer_tenants=TID)).tenant_id == TID


def test_other_audience_is_401():
    h = header([("tid", TID), ("oid", OID), ("aud", "api://someone-else")])
    with pytest.raises(Unauthenticated):
        authenticate({"X-MS-CLIENT-PRINCIPAL": h}, settings())
