"""Grants and their audit trail over HTTP on the local stack: no self-grants, ``Platform.Admin`` only on app
tokens, principals keyed by home tenant and object id, every change audited, and a caller without a grant
unable to tell an unknown tenant from one it may not see."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from localdev.stack import LOCAL_OPERATOR_TENANT, running_stack, sim_client, tenant_registration
from shared.domain import PLATFORM_ADMIN_ROLE
from tests.e2e.conftest import Api, Stack

pytestmark = pytest.mark.e2e

# A second tenant whose callers this stack accepts (as a partner MSP's would be): its principals may
# share object ids with ours, and must never be taken for them.
PARTNER_TENANT = "44444444-4444-4444-8444-444444444444"


@pytest.fixture(scope="module")
def stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """This module's own stack: like the shared one, but also accepting tokens from ``PARTNER_TENANT``."""
    demo_secret = secrets.token_urlsafe(24)
    extra_env = {"AUTH_ISSUER_TENANTS": f"{LOCAL_OPERATOR_TENANT},{PARTNER_TENANT}"}
    with running_stack(storage=azurite_connection_string, state_dir=tmp_path_factory.mktemp("grants-stack"),
                       demo_secret=demo_secret, extra_env=extra_env) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> str:
    return stack.new_customer_tenant()


def _grant_path(tenant_id: str, oid: str) -> str:
    return f"/tenants/{tenant_id}/grants/{oid}"


def _delete(api: Api, path: str, **kwargs: Any) -> httpx.Response:
    return api.request("DELETE", path, **kwargs)


def _assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    if code is not None:
        assert response.json()["code"] == code


def _my_role(api: Api, tenant_id: str) -> str | None:
    items = api.get("/tenants").json()["items"]
    return next((t["role"] for t in items if t["tenantId"] == tenant_id), None)


def test_nobody_grants_changes_or_revokes_a_role_of_their_own(stack: Stack, tenant: str) -> None:
    platform_oid = str(uuid.uuid4())
    platform = stack.api(stack.mint(oid=platform_oid, idtyp="app", roles=[PLATFORM_ADMIN_ROLE],
                                    name="Provisioning"))
    _assert_problem(platform.put(_grant_path(tenant, platform_oid), json={"role": "admin"}), 403,
                    "self-grant-forbidden")
    # Naming its own home tenant explicitly changes nothing.
    _assert_problem(platform.put(_grant_path(tenant, platform_oid.upper()),
                                 json={"role": "reader", "principalTenantId": LOCAL_OPERATOR_TENANT}),
                    403, "self-grant-forbidden")
    assert _my_role(platform, tenant) is None

    admin, admin_oid = stack.user(tenant, "admin", name="Ada Admin")
    _assert_problem(admin.put(_grant_path(tenant, admin_oid), json={"role": "reader"}), 403,
                    "self-grant-forbidden")
    _assert_problem(_delete(admin, _grant_path(tenant, admin_oid)), 403, "self-grant-forbidden")
    assert _my_role(admin, tenant) == "admin"
    audit = admin.get(f"/tenants/{tenant}/audit").json()["items"]
    assert not [e for e in audit if e["subject"]["id"] == platform_oid]
    assert [e["newRole"] for e in audit if e["subject"]["id"] == admin_oid] == ["admin"]


def test_platform_admin_on_a_user_token_is_an_ordinary_user(stack: Stack, tenant: str) -> None:
    person = stack.api(stack.mint(roles=[PLATFORM_ADMIN_ROLE], name="Pat Person"))
    new_tenant = str(uuid.uuid4())
    _assert_problem(person.put(f"/tenants/{new_tenant}", json=tenant_registration("Not yours")), 403)
    _assert_problem(person.put(_grant_path(tenant, str(uuid.uuid4())), json={"role": "admin"}), 404,
                    "tenant-not-found")
    _assert_problem(person.get(f"/tenants/{tenant}/grants"), 404, "tenant-not-found")
    # The same role on an app-only token does register.
    assert stack.admin().put(f"/tenants/{new_tenant}", json=tenant_registration("Yours")).status_code == 201


def test_the_same_object_id_from_another_home_tenant_is_someone_else(stack: Stack, tenant: str) -> None:
    admin, _ = stack.user(tenant, "admin")
    oid = str(uuid.uuid4())
    assert admin.put(_grant_path(tenant, oid), json={"role": "operator"}).status_code == 200
    ours = stack.api(stack.mint(oid=oid))
    lookalike = stack.api(stack.mint(oid=oid, tenant_id=PARTNER_TENANT))
    assert ours.get(f"/tenants/{tenant}/runs").status_code == 200
    _assert_problem(lookalike.get(f"/tenants/{tenant}/runs"), 404, "tenant-not-found")
    _assert_problem(lookalike.get(f"/tenants/{tenant}/audit"), 404, "tenant-not-found")
    assert lookalike.get("/tenants").json()["items"] == []

    # A grant for the partner's principal must name its home tenant, and is a grant of its own.
    granted = admin.put(_grant_path(tenant, oid),
                        json={"role": "reader", "principalTenantId": PARTNER_TENANT})
    assert granted.status_code == 200, granted.text
    assert (granted.json()["principalTenantId"], granted.json()["role"]) == (PARTNER_TENANT, "reader")
    assert lookalike.get(f"/tenants/{tenant}/runs").status_code == 200
    assert (_my_role(lookalike, tenant), _my_role(ours, tenant)) == ("reader", "operator")
    grants = admin.get(f"/tenants/{tenant}/grants").json()["items"]
    assert {(g["principalTenantId"], g["role"]) for g in grants if g["principalId"] == oid} == {
        (LOCAL_OPERATOR_TENANT, "operator"), (PARTNER_TENANT, "reader")}

    assert _delete(admin, _grant_path(tenant, oid),
                   params={"principalTenantId": PARTNER_TENANT}).status_code == 204
    _assert_problem(lookalike.get(f"/tenants/{tenant}/runs"), 404)
    assert ours.get(f"/tenants/{tenant}/runs").status_code == 200


def test_every_grant_change_is_audited_and_readers_can_read_it(stack: Stack, tenant: str) -> None:
    admin, admin_oid = stack.user(tenant, "admin", name="Ada Admin")
    target = str(uuid.uuid4())
    assert admin.put(_grant_path(tenant, target), json={"role": "reader"}).status_code == 200
    assert admin.put(_grant_path(tenant, target), json={"role": "operator"}).status_code == 200
    assert _delete(admin, _grant_path(tenant, target)).status_code == 204
    assert _delete(admin, _grant_path(tenant, target)).status_code == 204  # nothing left: no event

    reader, _ = stack.user(tenant, "reader")
    response = reader.get(f"/tenants/{tenant}/audit", params={"top": 200})
    assert response.status_code == 200, response.text
    events = response.json()["items"]
    times = [datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in events]
    assert times == sorted(times, reverse=True)  # newest first
    about_target = [(e["action"], e["oldRole"], e["newRole"]) for e in events if e["subject"]["id"] == target]
    assert about_target == [("grant.delete", "operator", None), ("grant.put", "reader", "operator"),
                            ("grant.put", None, "reader")]
    for event in (e for e in events if e["subject"]["id"] == target):
        assert event["tenantId"] == tenant
        assert event["actor"] == {"tenantId": LOCAL_OPERATOR_TENANT, "id": admin_oid, "name": "Ada Admin"}
        assert event["subject"] == {"tenantId": LOCAL_OPERATOR_TENANT, "id": target}
        assert event["id"].startswith("aud_")
    # The admin's own grant was given by provisioning automation, and is in the trail too.
    given = [e for e in events if e["subject"]["id"] == admin_oid]
    assert [(e["actor"]["name"], e["newRole"]) for e in given] == [("Provisioning", "admin")]

    first = reader.get(f"/tenants/{tenant}/audit", params={"top": 1}).json()
    assert len(first["items"]) == 1
    assert first["continuation"]
    second = reader.get(f"/tenants/{tenant}/audit", params={"top": 1, "continuation": first["continuation"]})
    assert [e["id"] for e in first["items"] + second.json()["items"]] == [e["id"] for e in events[:2]]
    assert reader.get(f"/tenants/{tenant}/audit", params={"runId": "run_none"}).json()["items"] == []
    _assert_problem(reader.put(_grant_path(tenant, target), json={"role": "reader"}), 403, "role-too-low")

    stranger, _ = stack.user(None, None)
    _assert_problem(stranger.get(f"/tenants/{tenant}/audit"), 404, "tenant-not-found")


def test_a_caller_without_a_grant_cannot_tell_unknown_from_unseen_tenants(stack: Stack, tenant: str) -> None:
    stranger, _ = stack.user(None, None)
    unknown = str(uuid.uuid4())
    target = str(uuid.uuid4())
    hostile = b"[" * 2000 + b"]" * 2000
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/tenants/{t}/runs", {}),
        ("GET", "/tenants/{t}/audit", {}),
        ("GET", "/tenants/{t}/grants", {}),
        ("GET", "/tenants/{t}/policies?type=settingsCatalog", {}),
        ("PUT", "/tenants/{t}/grants/" + target, {"json": {"role": "admin"}}),
        # Authorisation comes before the body is read, so a body that would not parse changes nothing.
        ("PUT", "/tenants/{t}/grants/" + target, {"content": hostile,
                                                    "headers": {"Content-Type": "application/json"}}),
        ("DELETE", "/tenants/{t}/grants/" + target, {}),
    ]
    for method, template, kwargs in requests:
        answers = [stranger.request(method, template.format(t=t), **kwargs) for t in (tenant, unknown)]
        for answer in answers:
            _assert_problem(answer, 404, "tenant-not-found")
        seen, unseen = ({k: v for k, v in a.json().items() if k != "instance"} for a in answers)
        assert seen == unseen, (method, template)
