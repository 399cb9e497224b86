"""While storage is down, the API answers ``503`` problem+json with ``Retry-After`` quickly, never ``500``,
and serves again once storage is back.

The stack runs on its own Azurite (with its data on disk), so stopping it does not disturb the other tests.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import pytest

from localdev.azurite import start_azurite
from localdev.stack import running_stack, sim_client
from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

# Azurite stopped means connection refused: each request should fail within the storage client's retry budget
# (a second or two); far below the 300 s an SDK call could wait before.
ANSWER_WITHIN_SECONDS = 30


def _assert_storage_unavailable(response: httpx.Response, elapsed: float, *, forbidden: list[str]) -> None:
    request = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, f"{request}: {response.status_code} {response.text}"
    assert response.headers["Content-Type"].startswith("application/problem+json"), request
    assert int(response.headers["Retry-After"]) >= 1, request
    problem = response.json()
    assert problem["status"] == 503, request
    assert problem["code"] == "storage-unavailable", request
    # No internals: neither the storage account nor its endpoint nor the SDK's wording.
    for text in forbidden:
        assert text not in response.text, f"{request} names {text!r}"
    assert elapsed < ANSWER_WITHIN_SECONDS, f"{request} took {elapsed:.1f}s"


def _timed(api: Api, method: str, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = api.request(method, path)
    return response, time.monotonic() - started


def _wait_ok(api: Api, path: str, *, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(path)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_storage_outage_answers_503_with_retry_after_and_service_resumes(tmp_path: Path) -> None:
    data = tmp_path / "azurite"
    azurite = start_azurite(location=data, log=tmp_path / "azurite.log")
    ports = (azurite.blob_port, azurite.queue_port, azurite.table_port)
    demo_secret = secrets.token_urlsafe(24)
    try:
        with running_stack(storage=azurite.connection_string, state_dir=tmp_path / "stack",
                           demo_secret=demo_secret) as info, sim_client(info) as sim:
            stack = Stack(info=info, sim=sim, demo_secret=demo_secret)
            tenant = stack.new_customer_tenant()
            api, _ = stack.user(tenant, "operator")
            policies = api.get(f"/tenants/{tenant}/policies", params={"type": "settingsCatalog"})
            assert policies.status_code == 200, policies.text
            policy_id = policies.json()["items"][0]["id"]
            snapshots = f"/tenants/{tenant}/policies/settingsCatalog/{policy_id}/snapshots"
            started = api.post(snapshots)
            assert started.status_code == 202, started.text
            run = wait_terminal(api, started.headers["Location"])
            assert run["status"] == "succeeded", run

            azurite.stop()

            forbidden = ["devstoreaccount1", "127.0.0.1", *(f":{port}" for port in ports), "Traceback",
                         "Connection refused", "HTTPConnectionPool", "azure"]
            for method, path in [("GET", f"/tenants/{tenant}/runs"),
                                 ("GET", f"/tenants/{tenant}/runs/{run['id']}"),
                                 ("POST", snapshots),
                                 ("GET", "/tenants")]:
                response, elapsed = _timed(api, method, path)
                _assert_storage_unavailable(response, elapsed, forbidden=forbidden)

            # Storage comes back on the same endpoint with its data: the same clients serve again.
            azurite = start_azurite(location=data, ports=ports, log=tmp_path / "azurite.log")
            again = _wait_ok(api, f"/tenants/{tenant}/runs/{run['id']}")
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "succeeded"
            listed = api.get("/tenants")
            assert listed.status_code == 200, listed.text
            assert tenant in {t["tenantId"] for t in listed.json()["items"]}
    finally:
        azurite.stop()
