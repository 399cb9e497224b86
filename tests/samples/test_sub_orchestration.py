"""Sub-orchestration samples: one child, and children per batch in parallel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.samples.support import sample_host, start, wait_until_done

pytestmark = pytest.mark.azurite

CITIES = ["Tokyo", "Seattle", "London", "Lagos", "Lima", "Oslo", "Perth"]


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("sub_orchestration", azurite_connection_string) as running:
        yield running


def test_parent_returns_what_its_child_orchestration_returned(client: httpx.Client) -> None:
    final = wait_until_done(client, start(client, "/api/orchestrators/DurableOrchestrator"))

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "Hello Seattle!"


def test_batched_children_greet_every_city_in_order(client: httpx.Client, host: Any) -> None:
    started = start(client, "/api/orchestrators/BatchedGreetings",
                    {"cities": CITIES, "batch_size": 3})

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == {"batches": 3,
                               "greetings": [f"Hello {city}!" for city in CITIES]}
    # Each batch ran as its own child instance under the id the parent chose.
    expected_batches = [CITIES[0:3], CITIES[3:6], CITIES[6:7]]
    for number, batch in enumerate(expected_batches):
        child = httpx.get(f"{host.rpc_base_url}instances/{started.instance_id}:batch-{number}",
                          timeout=15.0)
        assert child.status_code == 200, child.text
        body = child.json()
        assert body["name"] == "GreetBatch"
        assert body["runtimeStatus"] == "Completed"
        assert body["output"] == [f"Hello {city}!" for city in batch]


def test_a_single_batch_is_one_child(client: httpx.Client, host: Any) -> None:
    started = start(client, "/api/orchestrators/BatchedGreetings",
                    {"cities": CITIES[:2], "batch_size": 10})

    final = wait_until_done(client, started)

    assert final["output"] == {"batches": 1, "greetings": ["Hello Tokyo!", "Hello Seattle!"]}
    missing = httpx.get(f"{host.rpc_base_url}instances/{started.instance_id}:batch-1",
                        timeout=15.0)
    assert missing.status_code == 404
