"""Generate the Power Platform custom connector from our OpenAPI document.

    .venv/bin/python -m scripts.generate_connector [--host HOST] [--client-id ID] [--audience URI] [--check]

Writes ``connector/apiDefinition.swagger.json`` (OpenAPI 2.0, as connectors require) and
``connector/apiProperties.json``. Only the operations a flow needs are in the connector: start a backup set,
a restore preview and a restore (each answers ``202`` with ``Location`` and ``Retry-After``, which the
connector runtime follows until the run has ended), read a run, list tenants (the tenant picker), and the
webhook trigger "When a run finishes" backed by the subscription API. An operation whose route is not in our
OpenAPI document yet is left out, so the connector never promises a route the app does not serve.

``--check`` writes nothing and exits 1 when the committed files differ from what would be generated.
The defaults of ``--host``, ``--client-id`` and ``--audience`` are placeholders: generate with your
deployment's values before importing (see docs/integrations.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.openapi import openapi_document

ROOT = Path(__file__).resolve().parents[1]
CONNECTOR_DIR = ROOT / "connector"
DEFINITION_FILE = "apiDefinition.swagger.json"
PROPERTIES_FILE = "apiProperties.json"
API_PREFIX = "/api"
DEFAULT_HOST = "your-function-app.azurewebsites.net"
DEFAULT_CLIENT_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_AUDIENCE = "api://00000000-0000-0000-0000-000000000000"
_OAS3_REF = "#/components/schemas/"
_SWAGGER_REF = "#/definitions/"


@dataclass(frozen=True)
class ConnectorOperation:
    """One operation of our API as the connector shows it."""

    method: str
    path: str  # as in our OpenAPI document, with the /api prefix
    operation_id: str
    summary: str
    description: str
    visibility: str = "important"


# The starts are the actions flows run; each one answers 202 + Location + Retry-After, which the connector
# runtime polls (GET the Location until it stops answering 202), so the action's output is the ended run.
ACTIONS = (
    ConnectorOperation(
        "post", "/api/tenants/{tenantId}/backup-sets", "StartBackupSet", "Start a backup set",
        "Captures the selected Intune policies of a tenant into a new backup set and waits until the run "
        "has ended; the output is the ended run."),
    ConnectorOperation(
        "post", "/api/tenants/{tenantId}/restores/previews", "StartRestorePreview", "Preview a restore",
        "Plans a restore of a backup set without writing anything to the tenant and waits until the plan is "
        "ready; the output is the ended run (its plan is at the run's preview link)."),
    ConnectorOperation(
        "post", "/api/tenants/{tenantId}/restores", "StartRestore", "Restore a backup set",
        "Restores items of a backup set into a tenant (admin role) and waits until the run has ended; the "
        "output is the ended run."),
    ConnectorOperation(
        "get", "/api/tenants/{tenantId}/runs/{runId}", "GetRun", "Get a run",
        "Reads one run: its status, counts and links.", visibility="advanced"),
    ConnectorOperation(
        "get", "/api/tenants", "ListTenants", "List tenants",
        "The managed tenants the signed-in user has a grant on, with the user's role.",
        visibility="internal"),
)
SUBSCRIPTION_PATH = "/api/tenants/{tenantId}/subscriptions/{name}"
TRIGGER = ConnectorOperation(
    "put", SUBSCRIPTION_PATH, "WhenARunFinishes", "When a run finishes",
    "Fires once for every run of the tenant that ends (succeeded, partial, failed or cancelled). The flow "
    "registers a webhook subscription under the given name when it is saved and removes it when deleted.")
UNSUBSCRIBE = ConnectorOperation(
    "delete", SUBSCRIPTION_PATH, "DeleteSubscription", "Delete a webhook subscription",
    "Removes the webhook subscription the trigger registered.", visibility="internal")
# Which events the trigger subscribes to, in the subscription API's terms.
TRIGGER_EVENTS = ["run.completed"]


def _words(name: str) -> str:
    """``tenantId`` -> ``Tenant ID``: the label the flow designer shows."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    special = {"id": "ID", "ids": "IDs", "url": "URL", "urls": "URLs"}
    words = [special.get(w.lower(), w[:1].upper() + w[1:]) for w in spaced.split()]
    return " ".join(words)


class _Converter:
    """OpenAPI 3.1 schemas to Swagger 2.0 schemas, collecting the definitions they reference."""

    def __init__(self, components: dict[str, Any]) -> None:
        self._components = components
        self.definitions: dict[str, Any] = {}

    def ref(self, name: str) -> dict[str, Any]:
        if name not in self.definitions:
            self.definitions[name] = {}  # a placeholder first, so recursive schemas terminate
            self.definitions[name] = self.schema(self._components[name])
        return {"$ref": _SWAGGER_REF + name}

    def schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            # Swagger 2.0 ignores siblings of a $ref, so none are kept.
            return self.ref(schema["$ref"].removeprefix(_OAS3_REF))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._alternatives(schema, schema[key])
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("title", "examples", "$schema", "additionalProperties") or key.startswith("x-"):
                continue
            if key == "const":
                out["enum"] = [value]
            elif key == "type":
                types = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
                if types:
                    out["type"] = types[0]
            elif key == "properties":
                out["properties"] = {name: self._property(name, prop) for name, prop in value.items()}
            elif key == "items":
                out["items"] = self.schema(value)
            else:
                out[key] = copy.deepcopy(value)
        if isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema:
            out["additionalProperties"] = self.schema(schema["additionalProperties"])
        if "enum" in out and "type" not in out:
            kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
            out["type"] = kinds.get(type(out["enum"][0]), "string")
        if "properties" in out:
            out.setdefault("type", "object")
        return out

    def _property(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        converted = self.schema(schema)
        # A $ref stands alone in Swagger 2.0 (siblings are ignored), so only inline schemas get a label.
        return converted if "$ref" in converted else {**converted, "x-ms-summary": _words(name)}

    def _alternatives(self, schema: dict[str, Any], options: list[dict[str, Any]]) -> dict[str, Any]:
        """Swagger 2.0 has no anyOf/oneOf: a nullable value is its one type; object forms are merged."""
        concrete = [o for o in options if o.get("type") != "null"]
        description = schema.get("description")
        if len(concrete) == 1:
            converted = self.schema(concrete[0])
        else:
            resolved = [self._components[o["$ref"].removeprefix(_OAS3_REF)] if "$ref" in o else o
                        for o in concrete]
            merged: dict[str, Any] = {}
            for option in resolved:
                merged.update(option.get("properties", {}))
            converted = self.schema({"type": "object", "properties": merged})
            description = (description + " " if description else "") + "Exactly one of the properties."
        if description and "$ref" not in converted:
            converted["description"] = description
        return converted


def _parameter(param: dict[str, Any], converter: _Converter, *, tenant_picker: bool) -> dict[str, Any]:
    schema = converter.schema(param.get("schema", {"type": "string"}))
    out: dict[str, Any] = {"name": param["name"], "in": param["in"], "required": bool(param.get("required")),
                           "type": schema.get("type", "string")}
    for key in ("format", "pattern", "enum", "minimum", "maximum", "minLength", "maxLength", "default"):
        if key in schema:
            out[key] = schema[key]
    out["description"] = param.get("description") or _words(param["name"])
    out["x-ms-summary"] = _words(param["name"])
    if param["name"] == "Idempotency-Key":
        out["description"] = ("Replays the original run when the same request is sent again with the same "
                              "key (a Logic App can send @{workflow().run.name}).")
        out["x-ms-visibility"] = "advanced"
    if param["name"] == "tenantId" and tenant_picker:
        out["x-ms-dynamic-values"] = {"operationId": "ListTenants", "value-collection": "items",
                                      "value-path": "tenantId", "value-title": "displayName"}
    return out


def _responses(op: dict[str, Any], converter: _Converter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, response in op["responses"].items():
        converted: dict[str, Any] = {"description": response.get("description") or status}
        content = response.get("content", {})
        media = content.get("application/json") or content.get("application/problem+json")
        if media and "schema" in media:
            converted["schema"] = converter.schema(media["schema"])
        headers = {name: {"type": converter.schema(h.get("schema", {})).get("type", "string"),
                          "description": h.get("description", name)}
                   for name, h in response.get("headers", {}).items()}
        if headers:
            converted["headers"] = headers
        out[status] = converted
    return out


def _operation(spec: ConnectorOperation, source: dict[str, Any], converter: _Converter, *,
               tenant_picker: bool) -> dict[str, Any]:
    parameters = [_parameter(p, converter, tenant_picker=tenant_picker) for p in source.get("parameters", [])]
    body = source.get("requestBody")
    if body:
        schema = converter.schema(body["content"]["application/json"]["schema"])
        parameters.append({"name": "body", "in": "body", "required": bool(body.get("required")),
                           "schema": schema})
    op: dict[str, Any] = {"operationId": spec.operation_id, "summary": spec.summary,
                          "description": spec.description, "x-ms-visibility": spec.visibility,
                          "parameters": parameters, "responses": _responses(source, converter)}
    return op


def _notification_schema(converter: _Converter) -> dict[str, Any]:
    """What the API posts to the flow's callback URL: the ``event`` format of the subscription API.

    Taken from the component the OpenAPI document declares for it when there is one, otherwise derived from
    an event the app builds for a sample run (so it always matches what is sent).
    """
    components = openapi_document()["components"]["schemas"]
    for name in ("WebhookEvent", "RunEvent"):
        if name in components:
            return converter.ref(name)
    from shared.domain import CreatedBy, RunKind, RunRecord, RunStatus, RunTarget
    from shared.domain.webhooks import build_event

    run = RunRecord(id="run_sample", tenant_id="00000000-0000-0000-0000-000000000000",
                    kind=RunKind.BACKUPSET_CAPTURE, status=RunStatus.SUCCEEDED, target=RunTarget(),
                    created_by=CreatedBy(id="", name=""), created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    derived_key="k" * 64)
    sample = build_event(run, RunStatus.SUCCEEDED, api_base="https://host/api")
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string"}
    properties = {name: {"type": kinds.get(type(value), "string"), "x-ms-summary": _words(name)}
                  for name, value in sample.items()}
    return {"type": "object", "properties": properties}


def _trigger(source: dict[str, Any], converter: _Converter) -> dict[str, Any]:
    op = _operation(TRIGGER, source, converter, tenant_picker=True)
    body = next(p for p in op["parameters"] if p["in"] == "body")
    schema = body["schema"]
    if "$ref" in schema:
        schema = copy.deepcopy(converter.definitions[schema["$ref"].removeprefix(_SWAGGER_REF)])
    properties = schema.setdefault("properties", {})
    if "url" not in properties:
        raise SystemExit(f"the subscription body has no 'url' property: {sorted(properties)}")
    # The platform fills the callback URL in; makers never see it (it carries the flow's own signature).
    properties["url"].update({"x-ms-notification-url": True, "x-ms-visibility": "internal"})
    for name, value in (("format", "event"), ("events", TRIGGER_EVENTS)):
        if name in properties:
            properties[name].update({"default": value, "x-ms-visibility": "internal"})
    schema["required"] = sorted({*schema.get("required", []), "url"})
    body["schema"] = schema
    for param in op["parameters"]:
        if param["name"] == "name":
            param["description"] = "A name for this flow's subscription, unique within the tenant."
            param["x-ms-summary"] = "Subscription name"
    op["x-ms-trigger"] = "single"
    op["x-ms-trigger-hint"] = "To see it work, start a backup set of the tenant and wait for it to end."
    return op


def trigger_blockers(document: dict[str, Any]) -> list[str]:
    """Why the subscription API cannot back the webhook trigger yet (empty: it can).

    The platform registers the webhook with the subscription ``PUT`` and, when the flow is deleted or
    changed, unregisters it with a ``DELETE`` of the ``Location`` the ``201`` answered: without that header
    every deleted flow would leave its subscription behind.
    """
    item = document["paths"].get(SUBSCRIPTION_PATH, {})
    if TRIGGER.method not in item or UNSUBSCRIBE.method not in item:
        return [f"{SUBSCRIPTION_PATH} has no {TRIGGER.method.upper()} and {UNSUBSCRIBE.method.upper()}"]
    created = item[TRIGGER.method]["responses"].get("201", {})
    if "Location" not in created.get("headers", {}):
        return [f"{TRIGGER.method.upper()} {SUBSCRIPTION_PATH} does not declare a Location header on its 201"]
    return []


def connector_definition(host: str = DEFAULT_HOST) -> dict[str, Any]:
    """The connector's OpenAPI 2.0 definition, from our OpenAPI document."""
    document = openapi_document()
    converter = _Converter(document["components"]["schemas"])
    paths: dict[str, dict[str, Any]] = {}

    def source(spec: ConnectorOperation) -> dict[str, Any] | None:
        return document["paths"].get(spec.path, {}).get(spec.method)

    for spec in ACTIONS:
        found = source(spec)
        if found is not None:
            path = spec.path.removeprefix(API_PREFIX)
            picker = spec.operation_id != "ListTenants"
            paths.setdefault(path, {})[spec.method] = _operation(spec, found, converter, tenant_picker=picker)
    subscribe, unsubscribe = source(TRIGGER), source(UNSUBSCRIBE)
    if subscribe is not None and unsubscribe is not None and not trigger_blockers(document):
        path = SUBSCRIPTION_PATH.removeprefix(API_PREFIX)
        item = paths.setdefault(path, {})
        item["x-ms-notification-content"] = {"description": "The run that ended",
                                             "schema": _notification_schema(converter)}
        item[TRIGGER.method] = _trigger(subscribe, converter)
        item[UNSUBSCRIBE.method] = _operation(UNSUBSCRIBE, unsubscribe, converter, tenant_picker=False)
    return {
        "swagger": "2.0",
        "info": {"title": "Intune Backup and Restore", "version": document["info"]["version"],
                 "description": "Back up, preview and restore the Microsoft Intune configuration of managed "
                                "tenants, and react when a run finishes."},
        "host": host,
        "basePath": API_PREFIX,
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(converter.definitions.items())),
        "parameters": {},
        "responses": {},
        "securityDefinitions": {"oauth2-auth": {
            "type": "oauth2", "flow": "accessCode",
            "authorizationUrl": "https://login.microsoftonline.com/common/oauth2/authorize",
            "tokenUrl": "https://login.microsoftonline.com/common/oauth2/token", "scopes": {}}},
        "security": [{"oauth2-auth": []}],
        "tags": [],
    }


def connector_properties(client_id: str = DEFAULT_CLIENT_ID,
                         audience: str = DEFAULT_AUDIENCE) -> dict[str, Any]:
    """The connector's properties: an Entra ID (OAuth 2.0) connection to our API's app registration."""
    return {"properties": {
        "connectionParameters": {"token": {
            "type": "oauthSetting",
            "oAuthSettings": {
                "identityProvider": "aad",
                "clientId": client_id,
                "scopes": [],
                "redirectMode": "GlobalPerConnector",
                "redirectUrl": "https://global.consent.azure-apim.net/redirect",
                "properties": {"IsFirstParty": "False", "AzureActiveDirectoryResourceId": audience,
                               "IsOnbehalfofLoginSupported": False},
                "customParameters": {
                    "loginUri": {"value": "https://login.microsoftonline.com"},
                    "tenantId": {"value": "common"},
                    "resourceUri": {"value": audience},
                    "enableOnbehalfOfLogin": {"value": "false"},
                },
            },
        }},
        "iconBrandColor": "#0078d4",
        "capabilities": [],
        "publisher": "Intune Backup and Restore",
        "stackOwner": "Intune Backup and Restore",
    }}


def render(definition: dict[str, Any]) -> str:
    """The committed form of a generated file."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def generated_files(host: str = DEFAULT_HOST, client_id: str = DEFAULT_CLIENT_ID,
                    audience: str = DEFAULT_AUDIENCE) -> dict[str, str]:
    """Every generated file's name and content."""
    return {DEFINITION_FILE: render(connector_definition(host)),
            PROPERTIES_FILE: render(connector_properties(client_id, audience))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST, help="the function app's host name")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID,
                        help="client id of the app registration the connector signs users in with")
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE, help="the API's App ID URI")
    parser.add_argument("--out", type=Path, default=CONNECTOR_DIR, help="where to write the files")
    parser.add_argument("--check", action="store_true", help="only compare with the files in --out")
    args = parser.parse_args(argv)
    files = generated_files(args.host, args.client_id, args.audience)
    for blocker in trigger_blockers(openapi_document()):
        print(f"note: no 'When a run finishes' trigger: {blocker}", file=sys.stderr)
    stale = [name for name, text in files.items()
             if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != text]
    if args.check:
        for name in stale:
            print(f"{args.out / name} is not up to date: run python -m scripts.generate_connector")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
