"""Hostile request bodies over HTTP: authorisation before parsing, then bounded parsing, never a 500.

The routes that take a body are the grant and registration PUTs. Authentication and the access check come
first on every route, before any body or query parameter is looked at. Whoever may not use the route is
refused exactly as with a harmless body (404 without a grant, 403 with too low a role) and the body is never
parsed; whoever may use it gets a 400 or 415 problem with a stable code, and nothing is written.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import Api, Stack

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
GRANT = '{"role": "reader"}'

# name -> (body, headers, status, code) for a caller allowed to use the route. Every body stays under
# 16 KB, so the answers hold for a route with a tight byte limit too.
HOSTILE: dict[str, tuple[bytes, dict[str, str], int, str]] = {
    "nested arrays, 2 KB": (b"[" * 1024 + b"]" * 1024, JSON, 400, "json-too-deep"),
    "nested arrays, 15 KB unclosed": (b"[" * 15_000, JSON, 400, "json-too-deep"),
    "nested objects": (b'{"role":' * 1_000 + b'"x"' + b"}" * 1_000, JSON, 400, "json-too-deep"),
    "5,000-digit number": (b'{"role": ' + b"9" * 5_000 + b"}", JSON, 400, "json-number-too-large"),
    "huge exponent": (b'{"role": 1e999999}', JSON, 400, "json-number-too-large"),
    "NaN": (b'{"role": NaN}', JSON, 400, "malformed-json"),
    "text/plain": (GRANT.encode(), {"Content-Type": "text/plain"}, 415, "unsupported-media-type"),
    "no content type": (GRANT.encode(), {}, 415, "unsupported-media-type"),
    "form content type": (b"role=admin", {"Content-Type": "application/x-www-form-urlencoded"}, 415,
                          "unsupported-media-type"),
    "charset utf-16": (GRANT.encode("utf-16"), {"Content-Type": "application/json; charset=utf-16"}, 415,
                       "unsupported-media-type"),
    "UTF-16 with BOM": (GRANT.encode("utf-16"), JSON, 400, "malformed-json"),
    "UTF-16 without BOM": (GRANT.encode("utf-16-le"), JSON, 400, "malformed-json"),
    "UTF-8 BOM": (GRANT.encode("utf-8-sig"), JSON, 400, "malformed-json"),
    "duplicate key": (b'{"role":"reader","role":"admin"}', JSON, 400, "duplicate-json-key"),
    "duplicate nested key": (b'{"role":"reader","x":{"a":1,"a":2}}', JSON, 400, "duplicate-json-key"),
}
CASES = pytest.mark.parametrize("case", list(HOSTILE))


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


def _put(api: Api, path: str, case: str) -> httpx.Response:
    body, headers, _, _ = HOSTILE[case]
    return api.put(path, content=body, headers=headers)


def _assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code


def _has_any_grant(stack: Stack, tenant: str, oid: str) -> bool:
    return stack.api(stack.mint(oid=oid)).get(f"/tenants/{tenant}/runs").status_code != 404


@CASES
def test_a_caller_without_a_grant_gets_404_whatever_the_body(stack: Stack, tenant: str, case: str) -> None:
    stranger, _ = stack.user(None, None)
    target = str(uuid.uuid4())
    _assert_problem(_put(stranger, f"/tenants/{tenant}/grants/{target}", case), 404, "tenant-not-found")
    assert not _has_any_grant(stack, tenant, target)


@CASES
def test_a_reader_gets_403_before_the_body_is_parsed(stack: Stack, tenant: str, case: str) -> None:
    reader, _ = stack.user(tenant, "reader")
    target = str(uuid.uuid4())
    _assert_problem(_put(reader, f"/tenants/{tenant}/grants/{target}", case), 403, "role-too-low")
    assert not _has_any_grant(stack, tenant, target)


@CASES
def test_a_user_without_platform_admin_cannot_register_whatever_the_body(stack: Stack, case: str) -> None:
    user, _ = stack.user(None, None)
    new_tenant = str(uuid.uuid4())
    response = _put(user, f"/tenants/{new_tenant}", case)
    assert response.status_code == 403, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert _is_unregistered(stack, new_tenant)


@CASES
def test_an_admin_gets_a_problem_with_a_stable_code_and_nothing_is_granted(
    stack: Stack, tenant: str, case: str,
) -> None:
    admin, _ = stack.user(tenant, "admin")
    target = str(uuid.uuid4())
    _, _, status, code = HOSTILE[case]
    _assert_problem(_put(admin, f"/tenants/{tenant}/grants/{target}", case), status, code)
    assert not _has_any_grant(stack, tenant, target)


def _is_unregistered(stack: Stack, tenant: str) -> bool:
    # Platform.Admin may manage grants on any registered tenant; an unregistered one is 404.
    response = stack.admin().put(f"/tenants/{tenant}/grants/{uuid.uuid4()}", json={"role": "reader"})
    return response.status_code == 404


@pytest.mark.parametrize("case", ["nested arrays, 2 KB", "nested arrays, 200 KB unclosed",
                                  "5,000-digit number", "text/plain", "no content type", "UTF-16 with BOM",
                                  "duplicate key"])
def test_a_platform_admin_registering_with_a_hostile_body_registers_nothing(stack: Stack, case: str) -> None:
    new_tenant = str(uuid.uuid4())
    if case == "nested arrays, 200 KB unclosed":
        response = stack.admin().put(f"/tenants/{new_tenant}", content=b"[" * 200_000, headers=JSON)
        _assert_problem(response, 400, "json-too-deep")
    else:
        _, _, status, code = HOSTILE[case]
        _assert_problem(_put(stack.admin(), f"/tenants/{new_tenant}", case), status, code)
    assert _is_unregistered(stack, new_tenant)


def test_a_duplicated_credential_type_in_a_registration_is_refused(stack: Stack) -> None:
    new_tenant = str(uuid.uuid4())
    client_id = stack.info.demo_graph_client_id
    body = ('{"displayName": "Duplicated", "graph": {"clientId": "' + client_id + '", "credential": '
            '{"type": "federatedManagedIdentity", "type": "appSetting", "name": "GRAPH_CREDENTIAL_X"}}}')
    response = stack.admin().put(f"/tenants/{new_tenant}", content=body.encode(), headers=JSON)
    _assert_problem(response, 400, "duplicate-json-key")
    assert _is_unregistered(stack, new_tenant)


@pytest.mark.parametrize("content_type", ["application/json", "APPLICATION/JSON; CHARSET=UTF-8",
                                          'application/json;charset="utf-8"'])
def test_only_json_is_accepted_in_any_spelling_of_its_media_type(
    stack: Stack, tenant: str, content_type: str,
) -> None:
    admin, _ = stack.user(tenant, "admin")
    target = str(uuid.uuid4())
    path = f"/tenants/{tenant}/grants/{target}"
    as_text = admin.put(path, content=GRANT.encode(), headers={"Content-Type": "text/plain"})
    _assert_problem(as_text, 415, "unsupported-media-type")
    assert not _has_any_grant(stack, tenant, target)
    response = admin.put(path, content=GRANT.encode(), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert _has_any_grant(stack, tenant, target)


def test_routes_without_a_body_still_refuse_an_oversized_one(stack: Stack, tenant: str) -> None:
    operator, _ = stack.user(tenant, "operator")
    for path in (f"/tenants/{tenant}/policies/settingsCatalog/abc/snapshots",
                 f"/notifications/{uuid.uuid4()}/read"):
        response = operator.post(path, content=b"[" * 300_000, headers=JSON)
        _assert_problem(response, 413, "payload-too-large")


def test_a_caller_without_a_token_gets_401_before_an_oversized_body_is_looked_at(stack: Stack,
                                                                                  tenant: str) -> None:
    with httpx.Client(base_url=stack.info.api_base_url, timeout=30.0) as anonymous:
        for path in (f"/tenants/{tenant}/policies/settingsCatalog/abc/snapshots",
                     f"/notifications/{uuid.uuid4()}/read"):
            response = anonymous.post(path, content=b"[" * 300_000, headers=JSON)
            assert response.status_code == 401, (path, response.status_code, response.text[:300])


def test_a_caller_without_a_grant_gets_404_before_an_oversized_body_is_looked_at(stack: Stack,
                                                                                  tenant: str) -> None:
    stranger, _ = stack.user(None, None)
    response = stranger.post(f"/tenants/{tenant}/policies/settingsCatalog/abc/snapshots",
                             content=b"[" * 300_000, headers=JSON)
    _assert_problem(response, 404, "tenant-not-found")


def test_a_caller_without_a_grant_gets_404_whatever_the_query(stack: Stack, tenant: str) -> None:
    stranger, _ = stack.user(None, None)
    reader, _ = stack.user(tenant, "reader")
    for top in ("0", "many"):
        response = stranger.get(f"/tenants/{tenant}/audit", params={"top": top})
        _assert_problem(response, 404, "tenant-not-found")
        # Only a caller who may read the trail learns what is wrong with the query.
        response = reader.get(f"/tenants/{tenant}/audit", params={"top": top})
        assert response.status_code == 400, (response.status_code, response.text[:300])
