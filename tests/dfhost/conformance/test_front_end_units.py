"""In-process checks of the front end's building blocks (no subprocess, no storage)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.durable_functions import DurableOrchestrationClient

from localdev.dfhost.config import ConfigError, load_host_config, load_local_settings
from localdev.dfhost.http_durable import client_binding_json
from localdev.dfhost.http_routes import RouteError, RouteTemplate
from localdev.dfhost.triggers import next_occurrence, resolve_setting_expression
from tests.dfhost.conformance.conftest import DURABLE_APP, FIXTURES


def test_host_json_settings(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {
        "http": {"routePrefix": "/v1/"},
        "durableTask": {"hubName": "Hub1", "maxConcurrentActivityFunctions": 3,
                        "maxConcurrentOrchestratorFunctions": 2,
                        "overridableExistingInstanceStates": "AnyState",
                        "maxOrchestrationActions": 50},
        "queues": {"maxDequeueCount": 2, "visibilityTimeout": "00:00:30",
                   "messageEncoding": "none"}}}))
    config = load_host_config(tmp_path)
    assert config.route_prefix == "v1"
    assert config.hub_name == "Hub1"
    assert config.max_concurrent_activities == 3
    assert config.max_concurrent_orchestrations == 2
    assert config.overridable_existing_instance_states == "AnyState"
    assert config.max_orchestration_actions == 50
    assert config.queues.max_dequeue_count == 2
    assert config.queues.visibility_timeout_seconds == 30
    assert config.queues.message_encoding == "none"


def test_host_json_defaults_and_errors(tmp_path: Path) -> None:
    defaults = load_host_config(tmp_path)
    assert (defaults.route_prefix, defaults.hub_name) == ("api", "TestHubName")
    assert defaults.queues.max_dequeue_count == 5
    assert load_host_config(FIXTURES / "triggers_app").queues.max_dequeue_count == 3
    (tmp_path / "host.json").write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_host_config(tmp_path)


def test_local_settings_do_not_override_the_environment() -> None:
    environ = {"FIXTURE_GREETING": "Hi"}
    applied = load_local_settings(DURABLE_APP, environ)
    assert environ["FIXTURE_GREETING"] == "Hi"
    assert environ["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert applied == ["FUNCTIONS_WORKER_RUNTIME"]


@pytest.mark.parametrize(("template", "path", "expected"), [
    ("orders/{id}", "orders/7", {"id": "7"}),
    ("orders/{id}", "orders", None),
    ("orders/{id?}", "orders", {}),
    ("orders/{id:int}", "orders/x", None),
    ("orders/{id:guid}", "orders/0f8fad5b-d9cb-469f-a165-70867728950e",
     {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"}),
    ("flags/{on:bool}", "flags/TRUE", {"on": "TRUE"}),
    ("flags/{on:bool}", "flags/yes", None),
    ("static/{*rest}", "static/a/b%20c", {"rest": "a/b c"}),
    ("Report.{format:alpha}", "report.csv", {"format": "csv"}),
])
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_route_template_errors() -> None:
    with pytest.raises(RouteError, match="catch-all"):
        RouteTemplate("{*rest}/more")
    with pytest.raises(RouteError, match="unsupported constraint"):
        RouteTemplate("x/{id:decimal}")


def test_more_specific_routes_sort_first() -> None:
    templates = ["items/{*rest}", "items/{id}", "items/special"]
    ordered = sorted((RouteTemplate(t) for t in templates), key=lambda r: r.sort_key)
    assert [r.template for r in ordered] == ["items/special", "items/{id}", "items/{*rest}"]


def test_client_binding_is_what_the_sdk_client_expects() -> None:
    binding = client_binding_json(webhook_base="http://127.0.0.1:7071/runtime/webhooks/durabletask",
                                  rpc_base="http://127.0.0.1:17071/durabletask/", hub="Hub")
    client = DurableOrchestrationClient(binding)
    links = client.get_client_response_links(None, "abc")
    assert links["id"] == "abc"
    assert links["statusQueryGetUri"].startswith(
        "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/abc?taskHub=Hub")
    assert json.loads(binding)["rpcBaseUrl"] == "http://127.0.0.1:17071/durabletask/"


def test_ncrontab_has_seconds_first() -> None:
    after = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert next_occurrence("*/10 * * * * *", after) == datetime(2026, 1, 1, 12, 0, 10,
                                                                 tzinfo=UTC)
    assert next_occurrence("0 30 9 * * 1-5", after) == datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="6 fields"):
        next_occurrence("*/5 * * * *", after)


def test_setting_expressions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_QUEUE", "orders-1")
    assert resolve_setting_expression("%ORDERS_QUEUE%") == "orders-1"
    assert resolve_setting_expression("plain") == "plain"
    with pytest.raises(RuntimeError, match="MISSING_SETTING"):
        resolve_setting_expression("%MISSING_SETTING%")
