"""``Platform.Admin`` counts only on app-only tokens, in both authentication modes."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared.auth import authenticate
from shared.auth.claims import principal_from_claims
from shared.config import Settings
from shared.domain import PLATFORM_ADMIN_ROLE

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OID = "5d0b6a0e-1111-2222-3333-444455556666"
AUD = "api://intune-backup"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
SCOPE_URI = "http://schemas.microsoft.com/identity/claims/scope"


@pytest.mark.parametrize(("extra", "is_admin"), [
    ({"idtyp": "app", "azp": "0f0e0d0c-0b0a-0908-0706-050403020100"}, True),  # pipeline, managed identity
    ({"idtyp": "user", "scp": "user_impersonation"}, False),                  # a person holding the role
    ({"scp": "user_impersonation"}, False),                                   # delegated, no idtyp claim
    ({}, False),                                                              # not known to be an app
    ({"idtyp": "app", "scp": "user_impersonation"}, False),                   # contradictory: fail closed
])
def test_platform_admin_needs_an_app_only_token(extra: dict[str, Any], is_admin: bool) -> None:
    principal = principal_from_claims({"tid": TID, "oid": OID, "roles": [PLATFORM_ADMIN_ROLE], **extra})
    assert principal.is_platform_admin is is_admin
    assert PLATFORM_ADMIN_ROLE in principal.roles


def _easyauth(claims: list[tuple[str, str]]) -> dict[str, str]:
    body = {"auth_typ": "aad", "name_typ": "name", "role_typ": ROLE_URI,
            "claims": [{"typ": t, "val": v} for t, v in [("tid", TID), ("oid", OID), ("aud", AUD), *claims]]}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(body).encode()).decode()}


def test_easy_auth_applies_the_same_rule() -> None:
    settings = Settings(auth_mode="easyauth", auth_audience=AUD, website_auth_enabled=True,
                        storage_connection_string="UseDevelopmentStorage=true")
    app = authenticate(_easyauth([(ROLE_URI, PLATFORM_ADMIN_ROLE), ("idtyp", "app")]), settings)
    user = authenticate(_easyauth([(ROLE_URI, PLATFORM_ADMIN_ROLE), (SCOPE_URI, "user_impersonation"),
                                   ("idtyp", "app")]), settings)
    assert app.is_platform_admin
    assert not user.is_platform_admin
    assert not user.is_app
