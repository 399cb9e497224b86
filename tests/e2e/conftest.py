"""The whole local stack for end-to-end tests: Azurite (session), the Graph + Entra simulator and the local
Durable host running our ``function_app.py``, all over real HTTP(S) on loopback."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.stack import (
    StackInfo,
    create_customer_tenant,
    mint_token,
    running_stack,
    sim_client,
    tenant_registration,
)

pytestmark = pytest.mark.e2e

# The session stack's GRAPH_RETRY_SCALE (see ``stack``).
RETRY_SCALE = 20


@dataclass
class Api:
    """Our API as one caller sees it."""

    base_url: str
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0,
                            headers={"Authorization": f"Bearer {self.token}"})

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self.client() as client:
            return client.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)


@dataclass
class Stack:
    """The running stack plus helpers to mint callers and seed tenants."""

    info: StackInfo
    sim: httpx.Client
    demo_secret: str

    def mint(self, *, oid: str | None = None, roles: list[str] | None = None, idtyp: str = "user",
             audience: str | None = None, expires_in: int | None = None, name: str = "Test User",
             tenant_id: str | None = None) -> str:
        return mint_token(self.sim, oid=oid or str(uuid.uuid4()), name=name, roles=roles, idtyp=idtyp,
                          audience=audience or self.info.api_audience,
                          tenant_id=tenant_id or self.info.operator_tenant_id, expires_in=expires_in)

    def api(self, token: str) -> Api:
        return Api(self.info.api_base_url, token)

    def admin(self) -> Api:
        return self.api(self.mint(idtyp="app", roles=["Platform.Admin"], name="Provisioning"))

    def new_customer_tenant(self, *, preset: str = "demo", seed: int = 1) -> str:
        """A fresh customer tenant in the simulator, registered with our API and reachable by our app."""
        tenant_id = str(uuid.uuid4())
        name = f"Customer {tenant_id[:8]}"
        # The app registration reuses the launch's secret, which the host has as an app setting.
        create_customer_tenant(self.sim, tenant_id=tenant_id, secret=self.demo_secret, display_name=name,
                               preset=preset, seed=seed)
        response = self.admin().put(f"/tenants/{tenant_id}", json=tenant_registration(name))
        assert response.status_code in (200, 201), response.text
        return tenant_id

    def grant(self, tenant_id: str, oid: str, role: str) -> None:
        response = self.admin().put(f"/tenants/{tenant_id}/grants/{oid}", json={"role": role})
        assert response.status_code in (200, 201), response.text

    def objects(self, tenant_id: str, type_key: str) -> list[dict[str, Any]]:
        """What the simulator holds of a catalog type (or a collection) in a tenant."""
        response = self.sim.get(f"/_sim/tenants/{tenant_id}/objects/{type_key}")
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    def mutate(self, tenant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change the tenant behind the app's back, as an admin in the Intune portal would.

        ``body`` is ``{op: add | edit | delete, type, id?, object?, patch?}``.
        """
        response = self.sim.post(f"/_sim/tenants/{tenant_id}/mutations", json=body)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    def user(self, tenant_id: str | None, role: str | None, *, name: str = "Test User") -> tuple[Api, str]:
        """A user with ``role`` on ``tenant_id`` (or no grant at all); returns its API and object id."""
        oid = str(uuid.uuid4())
        if tenant_id and role:
            self.grant(tenant_id, oid, role)
        return self.api(self.mint(oid=oid, name=name)), oid


@pytest.fixture(scope="session")
def stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state_dir: Path = tmp_path_factory.mktemp("stack")
    demo_secret = secrets.token_urlsafe(24)
    # Waits between attempts that Graph did not name (backoff, the durable wait before an item is tried
    # again) shortened 20x, so that failure paths end in seconds; a Retry-After is still honoured in full.
    with running_stack(storage=azurite_connection_string, state_dir=state_dir, demo_secret=demo_secret,
                       extra_env={"GRAPH_RETRY_SCALE": str(RETRY_SCALE)}) as info, sim_client(info) as sim:
        yield Stack(info=info, sim=sim, demo_secret=demo_secret)


def wait_terminal(api: Api, monitor_url: str, *, timeout: float = 60.0,
                  on_poll: Callable[[httpx.Response], None] | None = None) -> dict[str, Any]:
    """Follow a monitor URL like a Logic App until it answers 200."""
    deadline = time.monotonic() + timeout
    url = monitor_url
    while time.monotonic() < deadline:
        response = api.get(url)
        if on_poll:
            on_poll(response)
        if response.status_code == 200:
            return dict(response.json())
        assert response.status_code == 202, response.text
        assert response.headers["Location"]
        assert int(response.headers["Retry-After"]) >= 1
        url = response.headers["Location"]
        time.sleep(0.2)
    raise AssertionError(f"run not terminal within {timeout}s: {monitor_url}")
