"""Function chaining with custom status: the documented final status, and progress while running."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.samples.support import raise_event, sample_host, start, wait_for, wait_until_done

pytestmark = pytest.mark.azurite


def has_custom_status(expected: str, body: dict[str, Any]) -> bool:
    return bool(body["customStatus"] == expected)


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("custom_status", azurite_connection_string) as running:
        yield running


def test_chain_ends_with_the_documented_status_and_output(client: httpx.Client) -> None:
    final = wait_until_done(client, start(client, "/api/orchestrators/DurableOrchestration"))

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "One"
    assert final["customStatus"] == "Two -> Three -> One"


def test_custom_status_is_visible_while_the_instance_runs(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/DurableOrchestrationWithCheckpoints")

    for expected in ("Two ->", "Two -> Three ->"):
        body = wait_for(client, started, functools.partial(has_custom_status, expected),
                        what=f"custom status {expected!r}")
        assert body["runtimeStatus"] == "Running"
        assert body["output"] is None
        raise_event(client, started, "Proceed", True)
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "One"
    assert final["customStatus"] == "Two -> Three -> One"


def test_an_event_for_a_completed_instance_is_refused(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/DurableOrchestration")
    wait_until_done(client, started)

    response = client.post(started.event_url("Proceed"), json=True)

    assert response.status_code == 410


def test_terminate_and_purge_through_the_check_status_urls(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/DurableOrchestrationWithCheckpoints")
    wait_for(client, started, functools.partial(has_custom_status, "Two ->"),
             what="the first checkpoint")

    terminate = client.post(started.urls["terminatePostUri"].replace("{text}", "operator stop"))
    assert terminate.status_code == 202, terminate.text
    final = wait_until_done(client, started)
    assert final["runtimeStatus"] == "Terminated"
    assert final["output"] == "operator stop"
    assert final["customStatus"] == "Two ->"

    purge = client.delete(started.urls["purgeHistoryDeleteUri"])
    assert purge.status_code == 200, purge.text
    assert purge.json() == {"instancesDeleted": 1}
    assert client.get(started.status_url).status_code == 404
