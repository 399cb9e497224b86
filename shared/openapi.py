"""The OpenAPI document of the HTTP contract, assembled from the routes and the models they parse and render.

Nothing here lists operations. Each HTTP trigger documents itself where it is declared
(``@documented(...)`` above ``@bp.route``, see :mod:`shared.openapi_registry`): the path, the method and
whether it is anonymous come from the route's registration, its path parameters from the route template and
the patterns the server checks ids with (:data:`PATH_PARAMETERS`), its request body from the model the
handler parses, and its error answers from the rules in
:meth:`~shared.openapi_registry.DocumentedRoute.statuses` plus what its service can answer. Component
schemas come from the pydantic models the API renders; request bodies whose checks pydantic cannot express
(a selection is exactly one of three forms, enums of the catalog) are written out here and compared with
their models by the tests. The document must stay truthful: the fuzz test in ``tests/e2e`` sends generated
requests to every operation and fails on any status, header, content type or body it does not declare.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel

from shared.domain import (
    BackupSet,
    BackupSetItem,
    BackupSetRequest,
    CreatedBy,
    Grant,
    GraphConnection,
    ItemOutcome,
    Notification,
    Role,
    RunKind,
    RunStatus,
)
from shared.domain.access import CREDENTIAL_NAME, CredentialType
from shared.domain.audit import AuditEvent
from shared.domain.backupsets import BACKUP_SET_ID, GRAPH_ID, MAX_SELECTED_POLICIES, BackupSetChange
from shared.domain.restore import INTERNAL_PLAN_FIELDS, ITEM_ID, RUN_ID, RestorePlan, RestoreRequest
from shared.domain.runs import RunRecord
from shared.domain.schedules import MAX_CRON_LENGTH, BackupSchedule
from shared.domain.webhooks import (
    SUBSCRIBABLE_EVENTS,
    SUBSCRIPTION_NAME_PATTERN,
    EventType,
    WebhookDelivery,
    WebhookFormat,
    WebhookSubscription,
    build_event,
)
from shared.graph.catalog import CATALOG
from shared.openapi_registry import JSON, REF_PREFIX, REGISTRY, DocumentedRoute
from shared.services.tenants import _GUID
from shared.version import VERSION

__all__ = [
    "CREDENTIAL_NAME_PATTERN", "GUID_PATTERN", "INTERNAL_RUN_FIELDS", "PATH_PARAMETERS", "build_document",
    "openapi_document",
]

# Bookkeeping that stays server-side: the derived key, recovery timestamps and the planned item count.
INTERNAL_RUN_FIELDS = frozenset({"derivedKey", "launchAttemptedAt", "launchedAt", "expectedItems", "scope"})
# The patterns the server checks ids with; the tests hold the document to these same objects.
GUID_PATTERN: Final = _GUID.pattern
CREDENTIAL_NAME_PATTERN: Final = CREDENTIAL_NAME.pattern
# The package whose modules declare (and so document) the HTTP routes.
ROUTES_PACKAGE: Final = "http_triggers"
PROBLEM_JSON = "application/problem+json"
_REF = REF_PREFIX


def _within(pattern: re.Pattern[str]) -> str:
    """A pattern's body without its anchors, to build a compound id of it."""
    return pattern.pattern.removeprefix("^").removesuffix("$")


# Notification and event ids are a run id and one of its statuses: ``<runId>.<status>``, ``<runId>:<status>``.
_STATUSES = "|".join(s.value for s in RunStatus)
_NOTIFICATION_ID_PATTERN = rf"^{_within(RUN_ID)}\.(?:{_STATUSES})$"
_EVENT_ID_PATTERN = rf"^{_within(RUN_ID)}:(?:{_STATUSES})$"

PATH_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "tenantId": {"schema": {"type": "string", "pattern": GUID_PATTERN},
                 "description": "managed (customer) tenant id"},
    "principalId": {"schema": {"type": "string", "pattern": GUID_PATTERN}, "description": "Entra object id"},
    "runId": {"schema": {"type": "string", "minLength": 1, "pattern": RUN_ID.pattern}, "description": ""},
    "backupSetId": {"schema": {"type": "string", "minLength": 1, "pattern": BACKUP_SET_ID.pattern},
                    "description": ""},
    "itemId": {"schema": {"type": "string", "minLength": 1, "pattern": ITEM_ID.pattern},
               "description": "policyType:policyId"},
    "policyType": {"schema": {"enum": sorted(CATALOG)}, "description": ""},
    "policyId": {"schema": {"type": "string", "pattern": GRAPH_ID.pattern}, "description": ""},
    "name": {"schema": {"type": "string", "pattern": SUBSCRIPTION_NAME_PATTERN},
             "description": "subscription name"},
    "notificationId": {"schema": {"type": "string", "minLength": 1, "pattern": _NOTIFICATION_ID_PATTERN},
                       "description": "<runId>.<status>"},
    "eventId": {"schema": {"type": "string", "minLength": 1, "pattern": _EVENT_ID_PATTERN},
                "description": "<runId>:<status>"},
}
"""Every path parameter a route template may name, with the pattern the server's ids have."""

# What each error status means on this API; an operation lists the statuses it can answer.
_ERROR_MEANINGS = {
    400: "Invalid request: malformed or invalid body, parameter or id",
    401: "Missing, malformed, expired or untrusted token",
    403: "Authenticated, but the role is too low (or the operation is not allowed for this caller)",
    404: "Unknown, or not visible to the caller (no grant on the tenant)",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "Request body is not application/json",
    422: "Well-formed, but cannot be processed as sent",
    502: "Microsoft Graph failed",
    503: "Storage or Graph temporarily unavailable; retry after the given delay",
}
_INT_HEADER = {"schema": {"type": "integer", "minimum": 1}}
_TEMPLATE_PARAMETER = re.compile(r"\{([^}]+)\}")


def _schema(model: type[BaseModel], defs: dict[str, Any], *, drop: frozenset[str] = frozenset(),
            mode: Literal["validation", "serialization"] = "serialization") -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF + "{model}", mode=mode)
    defs.update(schema.pop("$defs", {}))
    for name in drop:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_MEANINGS[status],
                                "content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True,
                                                    "description": "RFC 6750 challenge"}}
    if status == 503:
        response["headers"] = {"Retry-After": {**_INT_HEADER, "required": True,
                                               "description": "seconds to wait before retrying"}}
    return response


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """The path parameters of a route template, in order.

    Raises:
        ValueError: the template names a parameter :data:`PATH_PARAMETERS` does not describe.
    """
    params = []
    for name in _TEMPLATE_PARAMETER.findall(path):
        described = PATH_PARAMETERS.get(name)
        if described is None:
            raise ValueError(f"{path}: describe the path parameter {name} in PATH_PARAMETERS")
        params.append({"name": name, "in": "path", "required": True, "schema": dict(described["schema"]),
                       "description": described["description"]})
    return params


def body_schema_name(model: type[BaseModel]) -> str:
    """The component schema of a request body: its model's name."""
    return model.__name__


def _operation(route: DocumentedRoute) -> dict[str, Any]:
    """The OpenAPI operation object of a documented route."""
    doc = route.doc
    responses: dict[str, Any] = {status: dict(answer) for status, answer in doc.ok.items()}
    responses.update({str(status): _problem(status) for status in sorted(route.statuses())})
    op: dict[str, Any] = {
        "summary": doc.summary,
        "parameters": _path_parameters(route.path) + [p.render() for p in doc.params],
        "responses": responses, "security": [] if route.public else [{"entra": []}]}
    if doc.role is not None:
        op["x-required-role"] = str(doc.role)
    if doc.body is not None:
        op["requestBody"] = {"required": True,
                             "content": {JSON: {"schema": _ref(body_schema_name(doc.body))}}}
    return op


def _request_schemas(routes: Iterable[DocumentedRoute], defs: dict[str, Any]) -> dict[str, Any]:
    """The request bodies the routes parse: written out where the model's own schema is looser."""
    tightened = _tightened_requests(defs)
    schemas: dict[str, Any] = {}
    for route in routes:
        model = route.doc.body
        if model is not None:
            name = body_schema_name(model)
            schemas[name] = tightened[name] if name in tightened else _schema(model, defs, mode="validation")
    return schemas


def _subscription_schemas(defs: dict[str, Any]) -> dict[str, Any]:
    """The bodies of the subscription routes."""
    subscription = _schema(WebhookSubscription, defs, drop=frozenset({"tenantId"}))
    created = {**subscription, "properties": {**subscription["properties"], "secret": {
        **_STRING, "description": "the signing secret (HMAC-SHA256 key of X-Signature); shown only here"}},
        "required": sorted({*subscription.get("required", []), "secret"})}
    sample = build_event(RunRecord(id="run_sample", tenant_id="t", kind=RunKind.POLICY_CAPTURE,
                                   created_by=CreatedBy(id=""), created_at=datetime(2026, 1, 1, tzinfo=UTC),
                                   derived_key="k"), RunStatus.SUCCEEDED, api_base="https://host/api")
    types = {bool: "boolean", int: "integer", str: "string"}
    fields = {name: {"type": types[type(value)]} for name, value in sample.items()}
    event = {**_object(sorted(sample), fields),
             "description": "the body of an 'event' delivery: CloudEvents attribute names and flat run "
                            "fields, never null; signed in X-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "
                            "'<t>.<body>'>), its id also in X-Event-Id"}
    event["properties"]["type"]["enum"] = sorted(str(e) for e in EventType)
    return {
        "WebhookEvent": event,
        "Subscription": subscription, "SubscriptionCreated": created,
        "SubscriptionList": _object(["items"], {"items": {"type": "array", "items": _ref("Subscription")}}),
        "Delivery": _schema(WebhookDelivery, defs, drop=frozenset({"tenantId"})),
        "DeliveryPage": _page(_ref("Delivery")),
        "TestDelivery": _object(["eventId", "delivered", "statusCode", "error"], {
            "eventId": _STRING, "delivered": {"type": "boolean"}, "statusCode": {"type": ["integer", "null"]},
            "error": {**_STRING, "description": "our code for what went wrong; empty when delivered"}}),
    }


def _page(item_schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "continuation"], "properties": {
        "items": {"type": "array", "items": item_schema},
        "continuation": {"type": ["string", "null"]}}}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_STRING = {"type": "string"}
_LINKS = {"type": "object", "additionalProperties": {"type": "string"}}


def _backup_set_request() -> dict[str, Any]:
    """The body of a backup set start; ``selection`` is exactly one of its three forms."""
    types = {"type": "array", "minItems": 1, "items": {"enum": sorted(CATALOG)}}
    policy = {**_object(["type", "id"], {"type": {"enum": sorted(CATALOG)},
                                         "id": {"type": "string", "pattern": GRAPH_ID.pattern}})}
    selection = {"oneOf": [
        {**_object(["all"], {"all": {"const": True}}), "additionalProperties": False},
        {**_object(["types"], {"types": types}), "additionalProperties": False},
        {**_object(["policies"], {"policies": {"type": "array", "minItems": 1,
                                               "maxItems": MAX_SELECTED_POLICIES, "items": policy}}),
         "additionalProperties": False},
    ]}
    fields = BackupSetRequest.model_fields
    return {**_object(["name", "selection"], {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": ["string", "null"], "maxLength": 2_000},
        "selection": selection,
        "includeAssignments": {"type": "boolean", "default": fields["include_assignments"].default},
        "includeFoundations": {"type": "boolean", "default": fields["include_foundations"].default,
                               "description": "also capture scope tags, assignment filters and notification "
                                              "templates"}}), "additionalProperties": False}


def _add_items_request() -> dict[str, Any]:
    """The body of an addition to a set: policies as in a ``policies`` selection."""
    policies = _backup_set_request()["properties"]["selection"]["oneOf"][2]["properties"]["policies"]
    return {**_object(["policies"], {
        "policies": policies,
        "includeFoundations": {"type": ["boolean", "null"], "default": None,
                               "description": "also capture the foundations again; by default as the set "
                                              "was made"}}), "additionalProperties": False}


def _schedule_request() -> dict[str, Any]:
    """The body of a schedule put: a 5-field cron in UTC, a selection as for a backup set, and retention."""
    return {**_object(["cron", "selection"], {
        "cron": {"type": "string", "minLength": 1, "maxLength": MAX_CRON_LENGTH,
                 "description": "minute hour day-of-month month day-of-week, in UTC"},
        "timeZone": {"const": "UTC", "default": "UTC"},
        "selection": _backup_set_request()["properties"]["selection"],
        "retention": {**_object([], {
            "keepLast": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000,
                         "description": "keep the newest N sets"},
            "keepDays": {"type": ["integer", "null"], "minimum": 1, "maximum": 3650,
                         "description": "keep the sets of the last N days"}}),
            "additionalProperties": False,
            "description": "a set is kept when either rule keeps it; the newest complete set is always "
                           "kept"}}),
        "additionalProperties": False}


def _policy_type() -> dict[str, Any]:
    """One catalog entry; ``permission`` extends the contract's single permission to a read and a write."""
    flag = {"type": "boolean"}
    return _object(["key", "displayName", "graphRoute", "permission", "capabilities"], {
        "key": {"enum": sorted(CATALOG)}, "displayName": _STRING,
        "graphRoute": {**_STRING, "description": "list URL below https://graph.microsoft.com"},
        "permission": {**_object(["read", "write"], {"read": _STRING, "write": _STRING}),
                       "description": "application permissions the app needs in the managed tenant"},
        "capabilities": _object(["capture", "create", "update", "assignments"], {
            "capture": flag, "create": flag, "update": flag, "assignments": flag}),
        "backupOnly": {**_STRING, "description": "present only when the type is captured but never "
                                                 "written back: why"}})


def _tenant_permissions() -> dict[str, Any]:
    """The permission check of a tenant: per type, whether capture and restore are covered."""
    keys = {"type": "array", "items": {"enum": sorted(CATALOG)}}
    covered = _object(["permission", "covered"], {"permission": _STRING, "covered": {"type": "boolean"}})
    item = _object(["policyType", "displayName", "capture", "restore"], {
        "policyType": {"enum": sorted(CATALOG)}, "displayName": _STRING,
        "capture": {**covered, "description": "the read permission and whether the tenant granted it"},
        "restore": {"oneOf": [covered, {"type": "null"}],
                    "description": "the write permission and whether the tenant granted it and the read one; "
                                   "null for backup-only types"}})
    return _object(["tenantId", "granted", "uncovered", "items"], {
        "tenantId": _STRING,
        "granted": {"type": "array", "items": _STRING,
                    "description": "the catalog's permissions the app token carries"},
        "uncovered": {**_object(["capture", "restore"], {"capture": keys, "restore": keys}),
                      "description": "types a backup or a restore would be refused"},
        "items": {"type": "array", "items": item}})


def _schemas(routes: Iterable[DocumentedRoute]) -> dict[str, Any]:
    defs: dict[str, Any] = {}
    run = _schema(RunRecord, defs, drop=INTERNAL_RUN_FIELDS)
    run["properties"].update({"reused": {"type": "boolean"}, "links": _LINKS})
    run["required"] = sorted({*run.get("required", []), "reused", "links"})
    notification = _schema(Notification, defs, drop=frozenset({"principalId"}))
    notification["properties"]["links"] = _LINKS
    tenant = _object(["tenantId", "displayName", "graph"], {
        "tenantId": _STRING, "displayName": _STRING,
        "graph": _object(["clientId", "credential"], {
            "clientId": _STRING,
            "credential": _object(["type"], {"type": {"type": "string",
                                                     "enum": list(get_args(CredentialType))}})}),
        "role": {"enum": [r.value for r in Role]}})
    policy = _object(["id", "policyType"], {
        "id": _STRING, "displayName": {"type": ["string", "null"]},
        "policyType": {"type": "string", "enum": sorted(CATALOG)}, "odataType": {"type": ["string", "null"]},
        "lastModifiedDateTime": {"type": ["string", "null"]}})
    progress_entry = _object(["tenantId", "runId", "kind", "status", "counts", "createdAt", "links"], {
        "tenantId": _STRING, "runId": _STRING, "kind": {"type": "string", "enum": [k.value for k in RunKind]},
        "status": {"type": "string", "enum": [s.value for s in RunStatus]},
        "counts": {"type": "object"}, "percent": {"type": ["number", "null"]}, "createdAt": _STRING,
        "finishedAt": {"type": ["string", "null"]}, "links": _LINKS})
    backup_set = _schema(BackupSet, defs)
    backup_set["properties"]["links"] = _LINKS
    backup_set["required"] = sorted({*backup_set.get("required", []), "links"})
    set_item = _schema(BackupSetItem, defs,
                       drop=frozenset({"tenantId", "backupSetId", "batch", "normalisedHash"}))
    change_page = _page(_ref("BackupSetChange"))
    change_page["properties"]["comparedWith"] = {
        "type": ["string", "null"], "description": "the set these changes are against; null: none, all new"}
    change_page["required"].append("comparedWith")
    with_items = {**backup_set, "properties": {**backup_set["properties"], "items": {
        "type": "array", "items": _ref("BackupSetItem")}, "continuation": {"type": ["string", "null"]}},
        "required": sorted({*backup_set["required"], "items", "continuation"})}
    set_run = {**run, "properties": {**run["properties"], "backupSet": _ref("BackupSet")},
               "required": sorted({*run["required"], "backupSet"})}
    return {
        "Run": run, "RunPage": _page(_ref("Run")),
        "RestorePlan": _schema(RestorePlan, defs, drop=INTERNAL_PLAN_FIELDS),
        "BackupSetRun": set_run, "BackupSet": backup_set, "BackupSetPage": _page(_ref("BackupSet")),
        "BackupSetItem": set_item, "BackupSetWithItems": with_items,
        "BackupSetChange": _schema(BackupSetChange, defs, drop=frozenset({"tenantId", "backupSetId"})),
        "BackupSetChangePage": change_page,
        "Schedule": _schema(BackupSchedule, defs),
        **_subscription_schemas(defs),
        "CapturedPolicy": {"type": "object", "description": "the policy as Graph returned it, with its "
                                                            "sub-collections and assignments merged in"},
        "ItemOutcome": _schema(ItemOutcome, defs), "ItemPage": _page(_ref("ItemOutcome")),
        "Notification": notification, "NotificationPage": _page(_ref("Notification")),
        "NotificationRead": _object(["id", "read"], {"id": _STRING, "read": {"type": "boolean"}}),
        "GraphConnection": _graph_connection(defs),
        "Tenant": tenant,
        "TenantList": _object(["items"], {"items": {"type": "array", "items": _ref("Tenant")}}),
        "Grant": _schema(Grant, defs),
        "GrantList": _object(["items"], {"items": {"type": "array", "items": _ref("Grant")}}),
        "AuditEvent": _schema(AuditEvent, defs), "AuditPage": _page(_ref("AuditEvent")),
        "Policy": policy,
        "PolicyList": _object(["items"], {
            "items": {"type": "array", "items": _ref("Policy")},
            "errors": {"type": "array", "items": _object(["policyType", "code"], {
                "policyType": _STRING, "code": _STRING, "message": _STRING})}}),
        "PolicyType": _policy_type(),
        "TenantPermissions": _tenant_permissions(),
        "PolicyTypeList": _object(["items"], {"items": {"type": "array", "items": _ref("PolicyType")}}),
        "Progress": _object(["items"], {"items": {"type": "array", "items": progress_entry}}),
        "Health": _object(["status", "version"], {"status": {"const": "ok"}, "version": _STRING}),
        "OpenApiDocument": _object(["openapi", "info", "paths"], {}),
        "Problem": _object(["type", "title", "status", "code"], {
            "type": _STRING, "title": _STRING, "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": _STRING, "code": _STRING, "instance": _STRING,
            "errors": {"type": "array", "items": {"type": "object"}}}),
        **_request_schemas(routes, defs),
        **defs,
    }


def _subscription_request() -> dict[str, Any]:
    """The body of a subscription put; the service checks each value with its own code."""
    return {**_object(["url", "events"], {
        "url": {"type": "string", "minLength": 1, "maxLength": 2048,
                "description": "https URL of a public host (a secret: never returned)"},
        "format": {"enum": [f.value for f in WebhookFormat], "default": WebhookFormat.EVENT.value},
        "events": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": sorted(str(e) for e in SUBSCRIBABLE_EVENTS)}},
        "filters": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "kinds": {"type": ["array", "null"], "items": {"enum": [k.value for k in RunKind]}},
            "statuses": {"type": ["array", "null"], "items": {"enum": [s.value for s in RunStatus]}}}}}),
        "additionalProperties": False}


def _grant_request() -> dict[str, Any]:
    """The body of a grant put."""
    return {**_object(["role"], {
        "role": {"enum": [r.value for r in Role]},
        "principalTenantId": {"type": ["string", "null"], "pattern": GUID_PATTERN,
                              "description": "home tenant of the principal; by default the caller's"}}),
        "additionalProperties": False}


def _register_tenant_request() -> dict[str, Any]:
    """The body of a tenant registration."""
    return {**_object(["displayName", "graph"], {
        "displayName": {"type": "string", "minLength": 1, "maxLength": 256},
        "graph": _ref("GraphConnection")}), "additionalProperties": False}


def _restore_request(defs: dict[str, Any]) -> dict[str, Any]:
    """The body of a preview or restore: the model's schema, with the id shapes the server checks."""
    schema = _schema(RestoreRequest, defs)
    properties = schema["properties"]
    for name, pattern in (("backupSetId", BACKUP_SET_ID), ("previewRunId", RUN_ID)):
        for alternative in properties[name].get("anyOf", [properties[name]]):
            if alternative.get("type") == "string":
                alternative["pattern"] = pattern.pattern
    for alternative in properties["itemIds"]["anyOf"]:
        if alternative.get("type") == "array":
            alternative["items"]["pattern"] = ITEM_ID.pattern
    return schema


def _tightened_requests(defs: dict[str, Any]) -> dict[str, Any]:
    """Request bodies written out, by component name: what the service checks beyond the model's fields."""
    return {
        "BackupSetRequest": _backup_set_request(), "AddItemsRequest": _add_items_request(),
        "ScheduleRequest": _schedule_request(), "SubscriptionRequest": _subscription_request(),
        "GrantRequest": _grant_request(), "RegisterTenantRequest": _register_tenant_request(),
        "RestoreRequest": _restore_request(defs),
    }


def _graph_connection(defs: dict[str, Any]) -> dict[str, Any]:
    """How the app reaches Graph; a credential's name is empty, or a Key Vault object or app setting name."""
    schema = _schema(GraphConnection, defs)
    name = defs["CredentialRef"]["properties"]["name"]
    name["anyOf"] = [{"const": ""}, {"pattern": CREDENTIAL_NAME_PATTERN}]
    name["description"] = ("the name of a Key Vault secret or certificate, or of an app setting; empty for "
                           "a federated managed identity")
    return schema


def build_document(routes: Iterable[DocumentedRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``.

    Raises:
        ValueError: a route template names a path parameter :data:`PATH_PARAMETERS` does not describe.
    """
    routes = tuple(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Intune backup and restore API", "version": VERSION},
        "paths": paths,
        "components": {"schemas": _schemas(routes), "securitySchemes": {"entra": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "Entra ID access token for the API's app registration"}}},
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's routes.

    The routes document themselves when their modules are imported, so the route package is imported first:
    the document is the same whichever module a caller (the app, the connector generator, a test) loaded.
    """
    importlib.import_module(ROUTES_PACKAGE)
    return build_document(REGISTRY.routes())
