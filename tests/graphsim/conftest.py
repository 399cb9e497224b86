"""Fixtures: one simulator process per test session, a fresh tenant per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msal
import pytest

from localdev.graphsim.testing import SimHandle, running_simulator

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
READ_ALL = [
    "DeviceManagementConfiguration.Read.All", "DeviceManagementApps.Read.All",
    "DeviceManagementServiceConfig.Read.All", "DeviceManagementRBAC.Read.All",
    "DeviceManagementScripts.Read.All", "DeviceManagementManagedDevices.Read.All",
    "Group.Read.All",
]
WRITE_ALL = [r.replace(".Read.All", ".ReadWrite.All") for r in READ_ALL]


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    with running_simulator(seed_demo=True) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean_switches(sim: SimHandle) -> Iterator[None]:
    yield
    sim.control.clear_faults()
    sim.control.set_throttling(False)
    sim.control.set_strict(True)


@pytest.fixture
def tenant_id(sim: SimHandle) -> str:
    """A fresh demo tenant (seed 1) for this test."""
    return str(sim.control.create_tenant("demo", seed=1)["tenantId"])


def msal_app(sim: SimHandle, tenant_id: str, client_id: str,
             credential: str | dict[str, str]) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=f"{sim.base_url}/{tenant_id}",
        instance_discovery=False, http_client=httpx.Client(verify=sim.ssl_context()))


def app_token(sim: SimHandle, tenant_id: str, roles: list[str]) -> str:
    app = sim.control.create_app(tenant_id, roles=roles)
    result = msal_app(sim, tenant_id, app["clientId"], app["secret"]).acquire_token_for_client(
        scopes=GRAPH_SCOPE)
    assert "access_token" in result, result
    return str(result["access_token"])


GraphFactory = Callable[..., httpx.Client]


@pytest.fixture
def graph(sim: SimHandle, tenant_id: str) -> Iterator[GraphFactory]:
    """Factory of httpx clients on ``{base}/{version}`` with an app token for the test tenant."""
    clients: list[httpx.Client] = []

    def make(roles: list[str] | None = None, version: str = "beta",
             tenant: str | None = None, timeout: float = 30.0) -> httpx.Client:
        token = app_token(sim, tenant or tenant_id, WRITE_ALL if roles is None else roles)
        client = httpx.Client(base_url=f"{sim.base_url}/{version}", verify=sim.ssl_context(),
                              headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def new_guid() -> str:
    return str(uuid.uuid4())


def read_all_pages(client: httpx.Client, url: str, **params: str) -> list[dict[str, Any]]:
    """Follow @odata.nextLink verbatim until it is absent."""
    items: list[dict[str, Any]] = []
    response = client.get(url, params=params or None)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        next_link = body.get("@odata.nextLink")
        if not next_link:
            return items
        response = client.get(next_link)
