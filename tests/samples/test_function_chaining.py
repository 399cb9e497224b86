"""Function chaining sample on the local host, driven as its README describes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.samples.support import sample_host, start, wait_until_done

pytestmark = pytest.mark.azurite

DOCUMENTED_OUTPUT = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("function_chaining", azurite_connection_string) as running:
        yield running


def test_chaining_returns_the_documented_greetings_in_order(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/my_orchestrator")

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == DOCUMENTED_OUTPUT
    assert final["name"] == "my_orchestrator"
    assert final["instanceId"] == started.instance_id


def test_check_status_urls_point_at_the_host_that_answered(client: httpx.Client,
                                                          host: Any) -> None:
    started = start(client, "/api/orchestrators/my_orchestrator")

    # create_check_status_response rewrites the URLs to the origin of the starter request.
    for key in ("statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                "purgeHistoryDeleteUri"):
        assert started.urls[key].startswith(host.base_url + "/"), started.urls[key]
        assert started.instance_id in started.urls[key]
    assert wait_until_done(client, started)["output"] == DOCUMENTED_OUTPUT


def test_every_start_is_a_separate_instance(client: httpx.Client) -> None:
    first = start(client, "/api/orchestrators/my_orchestrator")
    second = start(client, "/api/orchestrators/my_orchestrator")

    assert first.instance_id != second.instance_id
    assert wait_until_done(client, first)["output"] == DOCUMENTED_OUTPUT
    assert wait_until_done(client, second)["output"] == DOCUMENTED_OUTPUT


def test_starting_an_unknown_orchestrator_fails_the_starter(client: httpx.Client) -> None:
    # The client's start_new raises on the host's 400, and the starter does not catch it.
    response = client.post("/api/orchestrators/no_such_orchestrator")

    assert response.status_code == 500
