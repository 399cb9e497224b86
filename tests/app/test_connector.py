"""The Power Platform custom connector: generated from our OpenAPI document, committed up to date, and valid
by the rules a connector import enforces that can be checked offline."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator.validation.validators import OpenAPIV2SpecValidator

from scripts import generate_connector as gen
from shared.openapi import openapi_document

# The OpenAPI extensions custom connectors document; an unknown x-ms-* fails the import.
KNOWN_EXTENSIONS = {
    "x-ms-summary", "x-ms-visibility", "x-ms-trigger", "x-ms-trigger-hint", "x-ms-notification-content",
    "x-ms-notification-url", "x-ms-dynamic-values", "x-ms-dynamic-schema", "x-ms-dynamic-list",
    "x-ms-url-encoding", "x-ms-api-annotation", "x-ms-no-generic-test", "x-ms-pageable", "x-ms-test-value",
    "x-ms-enum-values", "x-ms-connector-metadata",
}
VISIBILITIES = {"important", "advanced", "internal"}
# JSON Schema keywords OpenAPI 3.1 has and Swagger 2.0 does not: a connector import rejects or misreads them.
OAS3_ONLY = {"oneOf", "anyOf", "const", "nullable", "$defs", "prefixItems", "unevaluatedProperties",
             "examples", "contentMediaType"}
OPERATION_ID = re.compile(r"^[A-Z][A-Za-z0-9]*$")
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in definition["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _walk(node: Any, trail: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield trail, key, value
            yield from _walk(value, f"{trail}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{trail}/{index}")


def check_connector(definition: dict[str, Any], properties: dict[str, Any], api: dict[str, Any]) -> None:
    """Assert every offline-checkable rule of a custom connector; ``api`` is our OpenAPI document."""
    errors = [str(e) for e in OpenAPIV2SpecValidator(definition).iter_errors()]
    assert not errors, errors[:5]
    assert definition["swagger"] == "2.0"
    assert re.fullmatch(r"[^{}/ :\\]+(?::\d+)?", definition["host"])
    assert definition["basePath"] == gen.API_PREFIX
    assert definition["schemes"] == ["https"]
    info = definition["info"]
    # Connector titles: at most 30 characters and not the words API or Connector.
    assert len(info["title"]) <= 30
    assert not re.search(r"\b(api|connector)\b", info["title"], re.I)
    assert 30 <= len(info["description"]) <= 500
    assert info["description"] != info["title"]

    for trail, key, value in _walk(definition):
        assert key not in OAS3_ONLY, f"{trail}/{key}"
        if key == "type" and "properties" not in trail.rsplit("/", 1)[-1]:
            assert isinstance(value, str), f"{trail}/{key}: {value}"
        if key.startswith("x-ms-"):
            assert key in KNOWN_EXTENSIONS, f"{trail}/{key}"
        if key == "x-ms-visibility":
            assert value in VISIBILITIES, f"{trail}: {value}"
        if isinstance(value, dict) and "$ref" in value:
            assert set(value) == {"$ref"}, f"{trail}/{key}: siblings of $ref are ignored"
        if key == "$ref" and isinstance(value, str):
            assert value.startswith("#/definitions/"), f"{trail}: {value}"
            assert value.removeprefix("#/definitions/") in definition["definitions"], value

    ids = [op["operationId"] for _, _, op in _operations(definition)]
    assert len(ids) == len(set(ids)), ids
    for path, method, op in _operations(definition):
        label = f"{method.upper()} {path}"
        assert OPERATION_ID.fullmatch(op["operationId"]), label
        assert 0 < len(op["summary"]) <= 80, label
        assert not op["summary"].endswith("."), label
        assert op["description"], label
        # Every route the connector calls is one our API documents, with that method.
        assert method in api["paths"].get(definition["basePath"] + path, {}), label
        bodies = [p for p in op["parameters"] if p["in"] == "body"]
        assert len(bodies) <= 1, label
        template = set(re.findall(r"{([^}]+)}", path))
        assert {p["name"] for p in op["parameters"] if p["in"] == "path"} == template, label
        for param in op["parameters"]:
            if param["in"] == "body":
                assert "schema" in param, label
                continue
            assert "schema" not in param, (label, param["name"])
            assert isinstance(param["type"], str), (label, param["name"])
            assert param["x-ms-summary"], (label, param["name"])
            assert param["description"], (label, param["name"])
            if param["in"] == "path":
                assert param["required"] is True, (label, param["name"])
            if "x-ms-dynamic-values" in param:
                assert param["x-ms-dynamic-values"]["operationId"] in ids, (label, param["name"])
        assert any(status.startswith("2") for status in op["responses"]), label

    security = definition["securityDefinitions"]
    assert [name for entry in definition["security"] for name in entry] == list(security)
    assert all(s["type"] == "oauth2" and s["flow"] == "accessCode" for s in security.values())
    props = properties["properties"]
    token = props["connectionParameters"]["token"]
    assert token["type"] == "oauthSetting"
    assert token["oAuthSettings"]["identityProvider"] == "aad"
    assert token["oAuthSettings"]["redirectUrl"].startswith("https://")
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", props["iconBrandColor"])
    assert props["iconBrandColor"].lower() != "#ffffff"
    assert isinstance(props["capabilities"], list)


def check_trigger(definition: dict[str, Any]) -> None:
    """The webhook trigger: registered with the flow's callback URL, unregistered at its Location."""
    path = gen.SUBSCRIPTION_PATH.removeprefix(gen.API_PREFIX)
    item = definition["paths"][path]
    trigger = item[gen.TRIGGER.method]
    assert trigger["x-ms-trigger"] == "single"
    assert trigger["summary"] == "When a run finishes"
    # The payload schema sits at the path level, beside the operations.
    assert item["x-ms-notification-content"]["schema"]
    body = next(p for p in trigger["parameters"] if p["in"] == "body")
    assert body["required"] is True
    schema = body["schema"]
    callback = [name for name, prop in schema["properties"].items() if prop.get("x-ms-notification-url")]
    assert callback == ["url"]
    assert schema["properties"]["url"]["x-ms-visibility"] == "internal"
    assert "url" in schema["required"]
    # The platform deletes the subscription at the Location of the 201 when the flow is deleted.
    assert trigger["responses"]["201"]["headers"]["Location"]["type"] == "string"
    assert item["delete"]["x-ms-visibility"] == "internal"


def _committed(name: str) -> str:
    return (gen.CONNECTOR_DIR / name).read_text(encoding="utf-8")


def test_the_committed_connector_is_what_the_generator_makes_from_our_openapi() -> None:
    for name, text in gen.generated_files().items():
        assert _committed(name) == text, f"connector/{name} is stale: python -m scripts.generate_connector"
    assert gen.main(["--check"]) == 0


def test_the_committed_connector_passes_the_connector_rules() -> None:
    definition = json.loads(_committed(gen.DEFINITION_FILE))
    check_connector(definition, json.loads(_committed(gen.PROPERTIES_FILE)), openapi_document())


def test_every_start_our_api_serves_is_an_async_action_and_the_trigger_follows_the_subscription_api() -> None:
    api = openapi_document()
    definition = gen.connector_definition()
    by_id = {op["operationId"]: (path, method, op) for path, method, op in _operations(definition)}
    for spec in gen.ACTIONS:
        served = spec.method in api["paths"].get(spec.path, {})
        # An action is there exactly when our API serves its route (restores may not be served yet).
        assert (spec.operation_id in by_id) == served, spec.operation_id
        if served and spec.method == "post":
            accepted = by_id[spec.operation_id][2]["responses"]["202"]
            assert set(accepted["headers"]) >= {"Location", "Retry-After"}, spec.operation_id
            assert accepted["schema"]["$ref"].endswith("Run"), spec.operation_id
    assert "StartBackupSet" in by_id
    has_trigger = any("x-ms-trigger" in op for _, _, op in _operations(definition))
    # The trigger is there exactly when the subscription API can back it (PUT answering 201 + Location,
    # DELETE at that Location).
    assert has_trigger == (not gen.trigger_blockers(api))
    if has_trigger:
        check_trigger(definition)


def _with_subscription_and_restore_routes(document: dict[str, Any]) -> dict[str, Any]:
    """Our document plus the routes other parts of the contract add, in the shape API.md gives them."""
    doc = copy.deepcopy(document)
    schemas = doc["components"]["schemas"]
    schemas["SubscriptionRequest"] = {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "format": "uri"}, "format": {"enum": ["event", "teams"]},
        "events": {"type": "array", "items": {"enum": ["run.queued", "run.running", "run.completed"]}}}}
    schemas["Subscription"] = {"type": "object", "properties": {"name": {"type": "string"}}}
    schemas["WebhookEvent"] = {"type": "object", "properties": {
        "id": {"type": "string"}, "runId": {"type": "string"}, "status": {"type": "string"},
        "itemsTotal": {"type": "integer"}}}
    tenant = {"name": "tenantId", "in": "path", "required": True, "schema": {"type": "string"}}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    problem = {"description": "problem", "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    created = {"description": "created", "headers": {"Location": {"schema": {"type": "string"}}},
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Subscription"}}}}
    doc["paths"]["/api/tenants/{tenantId}/subscriptions/{name}"] = {
        "put": {"parameters": [tenant, name], "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SubscriptionRequest"}}}},
                "responses": {"201": created, "404": problem}},
        "delete": {"parameters": [tenant, name], "responses": {"204": {"description": "deleted"}}}}
    start = doc["paths"]["/api/tenants/{tenantId}/backup-sets"]["post"]
    for route in ("/api/tenants/{tenantId}/restores/previews", "/api/tenants/{tenantId}/restores"):
        doc["paths"][route] = {"post": copy.deepcopy(start)}
    return doc


def test_a_subscription_api_gives_the_connector_a_valid_webhook_trigger_and_restores_become_actions(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    document = _with_subscription_and_restore_routes(openapi_document())
    monkeypatch.setattr(gen, "openapi_document", lambda: document)

    assert gen.main(["--out", str(tmp_path)]) == 0
    definition = json.loads((tmp_path / gen.DEFINITION_FILE).read_text(encoding="utf-8"))

    check_connector(definition, json.loads((tmp_path / gen.PROPERTIES_FILE).read_text(encoding="utf-8")),
                    document)
    check_trigger(definition)
    ids = {op["operationId"] for _, _, op in _operations(definition)}
    assert {"StartBackupSet", "StartRestorePreview", "StartRestore", "WhenARunFinishes",
            "DeleteSubscription"} <= ids
    trigger_body = definition["paths"]["/tenants/{tenantId}/subscriptions/{name}"]["put"]["parameters"][-1]
    # The flow always asks for our event format and only for finished runs; makers never see either.
    assert trigger_body["schema"]["properties"]["format"]["default"] == "event"
    assert trigger_body["schema"]["properties"]["events"]["default"] == ["run.completed"]


def test_an_action_whose_route_is_gone_leaves_the_connector(monkeypatch: pytest.MonkeyPatch) -> None:
    document = copy.deepcopy(openapi_document())
    del document["paths"]["/api/tenants/{tenantId}/runs/{runId}"]
    monkeypatch.setattr(gen, "openapi_document", lambda: document)

    definition = gen.connector_definition()

    assert "GetRun" not in {op["operationId"] for _, _, op in _operations(definition)}
    check_connector(definition, gen.connector_properties(), document)


def test_check_mode_reports_a_stale_connector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--out", str(tmp_path)]) == 0
    (tmp_path / gen.DEFINITION_FILE).write_text("{}\n", encoding="utf-8")

    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    assert "not up to date" in capsys.readouterr().out
