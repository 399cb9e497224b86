"""Fixtures for Graph tests that run over real HTTPS against the local Graph simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from localdev.graphsim.testing import SimHandle, running_simulator
from shared.graph import CATALOG, BudgetConfig, ClientSecret, GraphClient, GraphClientFactory, RetryPolicy
from shared.graph.budget import PUBLISHED_LIMITS
from shared.graph.client import DEFAULT_TIMEOUT

WRITE_ROLES = sorted({t.write_permission for t in CATALOG.values()} | {"Group.ReadWrite.All"})
READ_ROLES = sorted({t.read_permission for t in CATALOG.values()} | {"Group.Read.All"})
# Short waits so fault tests stay quick; the caps still bound every call.
FAST_RETRY = RetryPolicy(max_attempts=6, max_total_sleep=20.0, backoff_base=0.2, backoff_max=2.0)


@pytest.fixture(scope="session")
def sim() -> Iterator[SimHandle]:
    """One simulator for the Graph tests (each test makes its own tenant)."""
    with running_simulator() as handle:
        yield handle


@dataclass
class SimTenant:
    sim: SimHandle
    tenant_id: str
    client_id: str
    secret: str
    counts: dict[str, int]

    def factory(self, *, budget: BudgetConfig | None = PUBLISHED_LIMITS, retry: RetryPolicy = FAST_RETRY,
                timeout: httpx.Timeout | None = None) -> GraphClientFactory:
        return GraphClientFactory(
            graph_base_url=self.sim.base_url, authority_host=self.sim.base_url,
            ca_bundle=str(self.sim.ca_file), budget=budget, retry=retry,
            timeout=timeout or DEFAULT_TIMEOUT)

    def client(self, factory: GraphClientFactory, *, read_only: bool = False) -> GraphClient:
        return factory.get(tenant_id=self.tenant_id, client_id=self.client_id,
                           credential=ClientSecret(self.secret), read_only=read_only)


def make_tenant(sim: SimHandle, preset: str = "demo", *, roles: list[str] | None = None,
                **kwargs: int) -> SimTenant:
    created = sim.control.create_tenant(preset, **kwargs)  # type: ignore[arg-type]
    app = sim.control.create_app(created["tenantId"], roles=roles or WRITE_ROLES)
    return SimTenant(sim, created["tenantId"], app["clientId"], app["secret"], created["counts"])


@pytest.fixture
def demo(sim: SimHandle) -> Iterator[SimTenant]:
    """A fresh demo tenant with an app holding every write permission; faults cleared afterwards."""
    tenant = make_tenant(sim, "demo", seed=11)
    yield tenant
    sim.control.clear_faults()
    sim.control.set_throttling(False)


@pytest.fixture
async def demo_factory(demo: SimTenant) -> AsyncIterator[GraphClientFactory]:
    factory = demo.factory()
    yield factory
    await factory.aclose()
