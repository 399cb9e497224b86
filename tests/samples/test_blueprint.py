"""Blueprint sample: durable functions from a ``df.Blueprint`` next to a plain HTTP function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.samples.support import sample_host, start, wait_until_done

pytestmark = pytest.mark.azurite


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("blueprint", azurite_connection_string) as running:
        yield running


def test_blueprint_starter_runs_the_blueprint_orchestrator(client: httpx.Client) -> None:
    started = start(client, "/api/startOrchestrator")

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["name"] == "my_orchestrator"
    assert final["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_plain_http_function_greets_the_name_from_the_query(client: httpx.Client) -> None:
    response = client.get("/api/HttpTrigger", params={"name": "Ada"})

    assert response.status_code == 200
    assert response.text == "Hello, Ada. This HTTP triggered function executed successfully."


def test_plain_http_function_greets_the_name_from_a_json_body(client: httpx.Client) -> None:
    response = client.post("/api/HttpTrigger", json={"name": "Grace"})

    assert response.status_code == 200
    assert response.text == "Hello, Grace. This HTTP triggered function executed successfully."


def test_plain_http_function_without_a_name_still_succeeds(client: httpx.Client) -> None:
    response = client.get("/api/HttpTrigger")

    assert response.status_code == 200
    assert response.text.startswith("This HTTP triggered function executed successfully.")
    assert "Pass a name" in response.text
