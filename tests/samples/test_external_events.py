"""External events sample: an orchestration gated on events raised through an HTTP function."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.samples.support import sample_host, start, status, wait_until_done

pytestmark = pytest.mark.azurite

STARTER = "/api/orchestrators/DurableOrchestration"


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("external_events", azurite_connection_string) as running:
        yield running


def raise_through_the_app(client: httpx.Client, instance_id: str, event_name: str) -> None:
    response = client.get("/api/RaiseEvent",
                          params={"instance_id": instance_id, "event_name": event_name})
    assert response.status_code == 200, response.text
    assert response.text == f'"{event_name}" event is sent'


def test_and_rule_waits_for_both_events(client: httpx.Client) -> None:
    started = start(client, STARTER)

    raise_through_the_app(client, started.instance_id, "A")
    # Give the host ample time to process A; the instance must still wait for B.
    time.sleep(0.5)
    assert status(client, started)["runtimeStatus"] == "Running"
    raise_through_the_app(client, started.instance_id, "B")
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == ["Hello Tokyo"]


def test_or_rule_continues_after_any_one_event(client: httpx.Client) -> None:
    rule = {"condition": {"wait_events": ["A", "B"], "logic": "or"},
            "satisfied": [{"activity_func_name": "SuccessActions", "args": {"name": "Osaka"}},
                          {"activity_func_name": "SuccessActions", "args": {"name": "Kyoto"}}]}
    started = start(client, STARTER, rule)

    raise_through_the_app(client, started.instance_id, "B")
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == ["Hello Osaka", "Hello Kyoto"]


def test_raising_an_event_for_an_unknown_instance_fails_the_function(
        client: httpx.Client) -> None:
    # The durable client raises on the host's 404, and the sample function does not catch it.
    response = client.get("/api/RaiseEvent",
                          params={"instance_id": "no-such-instance", "event_name": "A"})

    assert response.status_code == 500
