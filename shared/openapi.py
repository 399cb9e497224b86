"""The OpenAPI document of the HTTP contract, generated from the same models the API renders.

Each route is one :class:`Operation` in :func:`_operations`: its success answers, its parameters, its body
and the errors it can answer besides those every route of its kind shares (see :meth:`Operation.statuses`), so
a new route or a new error is one line. The document must stay truthful: the fuzz test in ``tests/e2e`` sends
generated requests to every operation and fails on any status, header, content type or body it does not
declare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

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
from shared.domain.audit import AuditEvent
from shared.domain.backupsets import MAX_SELECTED_POLICIES, BackupSetChange
from shared.domain.restore import INTERNAL_PLAN_FIELDS, RestorePlan, RestoreRequest
from shared.domain.runs import RunRecord
from shared.domain.schedules import MAX_CRON_LENGTH, BackupSchedule
from shared.domain.webhooks import (
    SUBSCRIBABLE_EVENTS,
    SUBSCRIPTION_NAME_PATTERN,
    DeliveryState,
    EventType,
    WebhookDelivery,
    WebhookFormat,
    WebhookSubscription,
    build_event,
)
from shared.graph.catalog import CATALOG
from shared.version import VERSION

__all__ = ["GUID_PATTERN", "INTERNAL_RUN_FIELDS", "Operation", "openapi_document"]

# Bookkeeping that stays server-side: the derived key, recovery timestamps and the planned item count.
INTERNAL_RUN_FIELDS = frozenset({"derivedKey", "launchAttemptedAt", "launchedAt", "expectedItems", "scope"})
GUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_REF = "#/components/schemas/"

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


def _schema(model: type[BaseModel], defs: dict[str, Any], *,
            drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template=_REF + "{model}", mode="serialization")
    defs.update(schema.pop("$defs", {}))
    for name in drop:
        schema.get("properties", {}).pop(name, None)
        if name in schema.get("required", []):
            schema["required"].remove(name)
    return schema


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _json(description: str, schema_name: str | None = None, **extra: Any) -> dict[str, Any]:
    """A JSON answer; ``schema_name`` names a component schema."""
    content = {"content": {JSON: {"schema": _ref(schema_name)}}} if schema_name else {}
    return {"description": description, **content, **extra}


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


def _path(name: str, schema: dict[str, Any] | None = None, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": schema or {"type": "string", "minLength": 1}, "description": description}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _top(default: int, maximum: int) -> dict[str, Any]:
    return _query("top", {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
                  "page size")


# Graph ids are GUIDs, small integers (scope tags) or GUID-based compounds (enrollment defaults).
_GRAPH_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$"
_CONTINUATION = _query("continuation", {"type": "string"}, "opaque token from the previous page")
_TENANT = _path("tenantId", {"type": "string", "pattern": GUID_PATTERN}, "managed (customer) tenant id")
_RUN = _path("runId")
_BACKUP_SET = _path("backupSetId")


@dataclass(frozen=True)
class Operation:
    """One route and method of the API, as the document describes it."""

    method: str
    path: str
    summary: str
    ok: dict[str, dict[str, Any]]
    params: tuple[dict[str, Any], ...] = ()
    body: str | None = None  # component schema of the JSON request body
    errors: frozenset[int] = frozenset()  # beyond the ones every route of its kind answers
    public: bool = False  # no token needed, and no storage behind it
    extra: dict[str, Any] = field(default_factory=dict)

    def statuses(self) -> frozenset[int]:
        """Error statuses this operation can answer.

        Every authenticated route can answer 401 and, because it reads storage, 503; a route under a tenant
        answers 404 to callers without a grant; any parameter or body can be invalid (400); a body can be too
        large (413) or not JSON (415).
        """
        statuses = set(self.errors)
        if not self.public:
            statuses |= {401, 503}
        if "{tenantId}" in self.path:
            statuses.add(404)
        if self.params or self.body:
            statuses.add(400)
        if self.body:
            statuses |= {413, 415}
        return frozenset(statuses)

    def render(self) -> dict[str, Any]:
        """The OpenAPI operation object."""
        responses: dict[str, Any] = dict(self.ok)
        responses.update({str(status): _problem(status) for status in sorted(self.statuses())})
        op: dict[str, Any] = {"summary": self.summary, "parameters": list(self.params),
                              "responses": responses, "security": [] if self.public else [{"entra": []}],
                              **self.extra}
        if self.body:
            op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(self.body)}}}
        return op


_IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}}


def _operations() -> list[Operation]:
    accepted = _json("Run accepted (or the active run reused)", "Run", headers={
        "Location": {"schema": {"type": "string"}, "required": True, "description": "monitor URL"},
        "Retry-After": {**_INT_HEADER, "required": True, "description": "seconds between polls"}})
    principal = _path("principalId", {"type": "string", "pattern": GUID_PATTERN}, "Entra object id")
    principal_tenant = _query("principalTenantId", {"type": "string", "pattern": GUID_PATTERN},
                              "home tenant of the principal; by default the caller's")
    return [
        Operation("get", "/api/health", "Liveness", {"200": _json("ok", "Health")}, public=True),
        Operation("get", "/api/openapi.json", "This document",
                  {"200": _json("OpenAPI document", "OpenApiDocument")}, public=True),
        Operation("get", "/api/tenants", "Tenants the caller has a grant on, with its role",
                  {"200": _json("tenants", "TenantList")}),
        Operation("put", "/api/tenants/{tenantId}", "Register or update a managed tenant (Platform.Admin)",
                  {"200": _json("updated", "Tenant"), "201": _json("registered", "Tenant")},
                  params=(_TENANT,), body="RegisterTenant", errors=frozenset({403})),
        Operation("get", "/api/tenants/{tenantId}/grants", "Every grant on the tenant (admin)",
                  {"200": _json("grants", "GrantList")}, params=(_TENANT,), errors=frozenset({403})),
        # 403 also when the principal is the caller (nobody changes their own role); 409 when the grant kept
        # changing under a concurrent change.
        Operation("put", "/api/tenants/{tenantId}/grants/{principalId}", "Grant a role (admin); audited",
                  {"200": _json("granted", "Grant")}, params=(_TENANT, principal, principal_tenant),
                  body="GrantRequest", errors=frozenset({403, 409})),
        Operation("delete", "/api/tenants/{tenantId}/grants/{principalId}",
                  "Revoke a role (admin); 204 whether or not it existed; audited",
                  {"204": {"description": "revoked"}}, params=(_TENANT, principal, principal_tenant),
                  errors=frozenset({403, 409})),
        Operation("get", "/api/tenants/{tenantId}/audit", "Audit events, newest first (reader)",
                  {"200": _json("audit events", "AuditPage")},
                  params=(_TENANT, _query("runId", {"type": "string"}, "only events linked to this run"),
                          _top(50, 200), _CONTINUATION)),
        Operation("get", "/api/tenants/{tenantId}/policies",
                  "Live list of the tenant's policies (reader); without type, every type and per-type errors",
                  {"200": _json("policies", "PolicyList")},
                  params=(_TENANT, _query("type", {"enum": sorted(CATALOG)}, "catalog policy type")),
                  # Graph refusing the app (403 naming the permission), failing (502) or throttling (503).
                  errors=frozenset({403, 502})),
        Operation("post", "/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots",
                  "Start a snapshot of one policy (operator)", {"202": accepted},
                  params=(_TENANT, _path("policyType", {"enum": sorted(CATALOG)}),
                          _path("policyId", {"type": "string", "pattern": _GRAPH_ID_PATTERN}),
                          {"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255}}),
                  errors=frozenset({403, 413, 422})),
        Operation("get", "/api/tenants/{tenantId}/runs", "Runs, newest first (reader)",
                  {"200": _json("runs", "RunPage")},
                  params=(_TENANT, _query("kind", {"enum": [k.value for k in RunKind]}),
                          _query("status", {"enum": [s.value for s in RunStatus]}), _top(50, 200),
                          _CONTINUATION)),
        Operation("get", "/api/tenants/{tenantId}/runs/{runId}", "One run (reader)",
                  {"200": _json("run", "Run")}, params=(_TENANT, _RUN)),
        Operation("get", "/api/tenants/{tenantId}/runs/{runId}/monitor",
                  "Poll until terminal: 202 while active, 200 when done (reader)",
                  {"200": _json("terminal run", "Run"), "202": {**accepted, "description": "still active"}},
                  params=(_TENANT, _RUN)),
        Operation("get", "/api/tenants/{tenantId}/runs/{runId}/items", "Per-item outcomes (reader)",
                  {"200": _json("items", "ItemPage")},
                  params=(_TENANT, _RUN, _query("status", {"enum": ["succeeded", "failed", "skipped"]}),
                          _top(100, 1000), _CONTINUATION)),
        # Role as for the run's kind (operator; admin for restore.execute). 409 run-not-active once it ended
        # otherwise; a second cancel answers the cancelled run again.
        Operation("post", "/api/tenants/{tenantId}/runs/{runId}/cancel",
                  "Cancel an active run: its orchestration stopped, unsettled items skipped",
                  {"200": _json("the run, cancelled", "Run")}, params=(_TENANT, _RUN),
                  errors=frozenset({403, 409, 413})),
        # 409 run-still-active, nothing-to-rerun (a set run with no failed or skipped item),
        # rerun-not-supported, backup-set-busy.
        Operation("post", "/api/tenants/{tenantId}/runs/{runId}/rerun",
                  "Run an ended run again: a policy capture as it was, a backup set run for the items it "
                  "failed or skipped (as for the kind)",
                  {"202": accepted}, params=(_TENANT, _RUN), errors=frozenset({403, 409, 413})),
        Operation("post", "/api/tenants/{tenantId}/backup-sets",
                  "Start a backup set capture of a selection (operator); the body also returns the set",
                  {"202": {**accepted, "content": {JSON: {"schema": _ref("BackupSetRun")}}}},
                  params=(_TENANT, {"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}}),
                  body="BackupSetRequest", errors=frozenset({403, 422})),
        # 409 backup-set-busy while the set's own capture runs; 404 backup-set-not-found.
        Operation("post", "/api/tenants/{tenantId}/backup-sets/{backupSetId}/items",
                  "Capture policies into an existing set, again for those it holds (operator)",
                  {"202": {**accepted, "content": {JSON: {"schema": _ref("BackupSetRun")}}}},
                  params=(_TENANT, _BACKUP_SET, {"name": "Idempotency-Key", "in": "header", "required": False,
                                                 "schema": {"type": "string", "minLength": 1,
                                                            "maxLength": 255}}),
                  body="AddItemsRequest", errors=frozenset({403, 409, 422})),
        # 404 backup-set-not-found (also for a source tenant the caller cannot read); 409 backup-set-not-ready
        # while the set is being captured.
        Operation("post", "/api/tenants/{tenantId}/restores/previews",
                  "Start a read-only preview of restoring a backup set (or some of its items) into the "
                  "tenant (operator); its plan is served by GET .../runs/{runId}/preview",
                  {"202": accepted}, params=(_TENANT, _IDEMPOTENCY_KEY), body="RestoreRequest",
                  errors=frozenset({403, 409, 422})),
        # 409 restore-already-active naming the active restore, backup-set-not-ready, preview-not-usable.
        Operation("post", "/api/tenants/{tenantId}/restores",
                  "Start a restore of a backup set (or some of its items) into the tenant (admin); with "
                  "previewRunId exactly the previewed plan, items whose target changed since become "
                  "conflicts",
                  {"202": accepted}, params=(_TENANT, _IDEMPOTENCY_KEY), body="RestoreRequest",
                  errors=frozenset({403, 409, 422})),
        # 409 not-a-restore-run, plan-not-ready (the run has not planned yet).
        Operation("get", "/api/tenants/{tenantId}/runs/{runId}/preview",
                  "The persisted plan of a restore preview (or restore) run (reader)",
                  {"200": _json("plan", "RestorePlan")}, params=(_TENANT, _RUN), errors=frozenset({409})),
        Operation("get", "/api/tenants/{tenantId}/backup-sets", "Backup sets, newest first (reader)",
                  {"200": _json("backup sets", "BackupSetPage")},
                  params=(_TENANT, _top(50, 200), _CONTINUATION)),
        Operation("get", "/api/tenants/{tenantId}/backup-sets/{backupSetId}",
                  "One backup set with a page of its items (reader)",
                  {"200": _json("backup set", "BackupSetWithItems")},
                  params=(_TENANT, _BACKUP_SET, _top(100, 1000), _CONTINUATION)),
        Operation("get", "/api/tenants/{tenantId}/backup-sets/{backupSetId}/items/{itemId}",
                  "The captured JSON of one item of a set, as Graph returned it (reader)",
                  {"200": _json("captured policy", "CapturedPolicy")},
                  params=(_TENANT, _BACKUP_SET, _path("itemId", description="policyType:policyId")),
                  # 409 item-not-captured: the item is pending or failed, so there is no body.
                  errors=frozenset({409})),
        Operation("get", "/api/tenants/{tenantId}/backup-sets/{backupSetId}/changes",
                  "Each item of a set new, changed or unchanged, and the policies gone since, against the "
                  "newest earlier complete set that selects at least as much (reader); empty until it "
                  "finishes",
                  {"200": _json("changes", "BackupSetChangePage")},
                  params=(_TENANT, _BACKUP_SET, _top(100, 1000), _CONTINUATION)),
        Operation("put", "/api/tenants/{tenantId}/schedule",
                  "Create or replace the tenant's backup schedule and retention (admin); only slots after "
                  "this call are due",
                  {"200": _json("schedule", "Schedule")}, params=(_TENANT,), body="ScheduleRequest",
                  errors=frozenset({403})),
        Operation("get", "/api/tenants/{tenantId}/schedule", "The tenant's backup schedule (reader)",
                  {"200": _json("schedule", "Schedule")}, params=(_TENANT,)),
        Operation("delete", "/api/tenants/{tenantId}/schedule",
                  "Remove the tenant's backup schedule (admin); 204 whether or not it existed",
                  {"204": {"description": "removed"}}, params=(_TENANT,), errors=frozenset({403})),
        *_subscription_operations(),
        Operation("get", "/api/policy-types",
                  "The policy type catalog: Graph route, permissions and what a restore can do with each",
                  {"200": _json("policy types, sorted by key", "PolicyTypeList")}),
        Operation("get", "/api/progress", "Active and recent runs across the caller's tenants",
                  {"200": _json("progress", "Progress")}),
        # A static page for browsers: no data and no credentials in it, so no token on the navigation (its
        # script then reads /api/progress as the caller). In Azure, App Service Authentication is in front.
        Operation("get", "/api/progress/page", "The live progress page (HTML; it polls /api/progress)",
                  {"200": {"description": "the page",
                           "content": {"text/html": {"schema": {"type": "string"}}}}}, public=True),
        Operation("get", "/api/notifications", "The caller's notifications, newest first",
                  {"200": _json("notifications", "NotificationPage")},
                  params=(_query("unread", {"type": "boolean"}, "leave out those already read"),
                          _top(50, 200), _CONTINUATION)),
        Operation("post", "/api/notifications/{notificationId}/read", "Mark one of my notifications read",
                  {"200": _json("read", "NotificationRead")}, params=(_path("notificationId"),),
                  errors=frozenset({404, 413})),
    ]


def _subscription_operations() -> list[Operation]:
    """Webhook subscriptions (admin): 403 for a lower role, 404 without a grant or for an unknown name."""
    subs = "/api/tenants/{tenantId}/subscriptions"
    one = subs + "/{name}"
    name = _path("name", {"type": "string", "pattern": SUBSCRIPTION_NAME_PATTERN}, "subscription name")
    admin = frozenset({403})
    # Where the subscription lives: a Power Automate webhook trigger deletes it there when its flow goes.
    location = {"Location": {"schema": {"type": "string"}, "required": True,
                             "description": "URL of the subscription"}}
    return [
        # 400 invalid-subscription-name, invalid-webhook-url, webhook-url-not-https, webhook-url-not-allowed,
        # webhook-host-unresolved, invalid-webhook-format, invalid-webhook-events, invalid-webhook-filters,
        # too-many-subscriptions; 503 webhooks-not-configured without an encryption key.
        Operation("put", one, "Create or replace a webhook subscription (admin); the answer holds a new "
                              "signing secret, shown this once",
                  {"200": _json("replaced", "SubscriptionCreated", headers=location),
                   "201": _json("created", "SubscriptionCreated", headers=location)},
                  params=(_TENANT, name), body="SubscriptionRequest", errors=admin),
        Operation("get", subs, "The tenant's webhook subscriptions (admin); URLs masked",
                  {"200": _json("subscriptions", "SubscriptionList")}, params=(_TENANT,), errors=admin),
        Operation("get", one, "One webhook subscription (admin); URL masked",
                  {"200": _json("subscription", "Subscription")}, params=(_TENANT, name), errors=admin),
        Operation("delete", one, "Delete a webhook subscription and its deliveries (admin); 204 whether or "
                                 "not it existed",
                  {"204": {"description": "deleted"}}, params=(_TENANT, name), errors=admin),
        Operation("post", one + "/test", "Send one signed test delivery now and report the answer (admin)",
                  {"200": _json("the receiver's answer", "TestDelivery")}, params=(_TENANT, name),
                  errors=frozenset({403, 413})),
        Operation("get", one + "/deliveries",
                  "A subscription's deliveries by run and event (admin); status=parked lists those given up",
                  {"200": _json("deliveries", "DeliveryPage")},
                  params=(_TENANT, name, _query("status", {"enum": [s.value for s in DeliveryState]}),
                          _top(50, 200), _CONTINUATION), errors=admin),
        # 409 concurrent-update when the delivery changed meanwhile (a repeat is safe).
        Operation("post", one + "/deliveries/{eventId}/replay",
                  "Send a delivery again from its first attempt, in the background (admin)",
                  {"202": _json("the delivery, pending again", "Delivery")},
                  params=(_TENANT, name, _path("eventId", description="<runId>:<status>")),
                  errors=frozenset({403, 409, 413})),
    ]


def _subscription_schemas(defs: dict[str, Any]) -> dict[str, Any]:
    """The bodies of the subscription routes."""
    subscription = _schema(WebhookSubscription, defs, drop=frozenset({"tenantId"}))
    created = {**subscription, "properties": {**subscription["properties"], "secret": {
        **_STRING, "description": "the signing secret (HMAC-SHA256 key of X-Signature); shown only here"}},
        "required": sorted({*subscription.get("required", []), "secret"})}
    request = {**_object(["url", "events"], {
        "url": {"type": "string", "minLength": 1, "maxLength": 2048,
                "description": "https URL of a public host (a secret: never returned)"},
        "format": {"enum": [f.value for f in WebhookFormat], "default": WebhookFormat.EVENT.value},
        "events": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": sorted(str(e) for e in SUBSCRIBABLE_EVENTS)}},
        "filters": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "kinds": {"type": ["array", "null"], "items": {"enum": [k.value for k in RunKind]}},
            "statuses": {"type": ["array", "null"], "items": {"enum": [s.value for s in RunStatus]}}}}}),
        "additionalProperties": False}
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
        "SubscriptionRequest": request, "Subscription": subscription, "SubscriptionCreated": created,
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
                                         "id": {"type": "string", "pattern": _GRAPH_ID_PATTERN}})}
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


def _schemas() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    run = _schema(RunRecord, defs, drop=INTERNAL_RUN_FIELDS)
    run["properties"].update({"reused": {"type": "boolean"}, "links": _LINKS})
    run["required"] = sorted({*run.get("required", []), "reused", "links"})
    notification = _schema(Notification, defs, drop=frozenset({"principalId"}))
    notification["properties"]["links"] = _LINKS
    tenant = _object(["tenantId", "displayName", "graph"], {
        "tenantId": _STRING, "displayName": _STRING,
        "graph": _object(["clientId", "credential"], {
            "clientId": _STRING, "credential": _object(["type"], {"type": _STRING})}),
        "role": {"enum": [r.value for r in Role]}})
    policy = _object(["id", "policyType"], {
        "id": _STRING, "displayName": {"type": ["string", "null"]}, "policyType": _STRING,
        "odataType": {"type": ["string", "null"]}, "lastModifiedDateTime": {"type": ["string", "null"]}})
    progress_entry = _object(["tenantId", "runId", "kind", "status", "counts", "createdAt", "links"], {
        "tenantId": _STRING, "runId": _STRING, "kind": _STRING, "status": _STRING,
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
        "BackupSetRequest": _backup_set_request(),
        "AddItemsRequest": _add_items_request(),
        "RestoreRequest": _schema(RestoreRequest, defs),
        "RestorePlan": _schema(RestorePlan, defs, drop=INTERNAL_PLAN_FIELDS),
        "BackupSetRun": set_run, "BackupSet": backup_set, "BackupSetPage": _page(_ref("BackupSet")),
        "BackupSetItem": set_item, "BackupSetWithItems": with_items,
        "BackupSetChange": _schema(BackupSetChange, defs, drop=frozenset({"tenantId", "backupSetId"})),
        "BackupSetChangePage": change_page,
        "ScheduleRequest": _schedule_request(), "Schedule": _schema(BackupSchedule, defs),
        **_subscription_schemas(defs),
        "CapturedPolicy": {"type": "object", "description": "the policy as Graph returned it, with its "
                                                            "sub-collections and assignments merged in"},
        "ItemOutcome": _schema(ItemOutcome, defs), "ItemPage": _page(_ref("ItemOutcome")),
        "Notification": notification, "NotificationPage": _page(_ref("Notification")),
        "NotificationRead": _object(["id", "read"], {"id": _STRING, "read": {"type": "boolean"}}),
        "GraphConnection": _schema(GraphConnection, defs),
        "RegisterTenant": {**_object(["displayName", "graph"], {
            "displayName": {"type": "string", "minLength": 1, "maxLength": 256},
            "graph": _ref("GraphConnection")}), "additionalProperties": False},
        "Tenant": tenant,
        "TenantList": _object(["items"], {"items": {"type": "array", "items": _ref("Tenant")}}),
        "GrantRequest": {**_object(["role"], {
            "role": {"enum": [r.value for r in Role]},
            "principalTenantId": {"type": ["string", "null"], "pattern": GUID_PATTERN,
                                  "description": "home tenant of the principal; by default the caller's"}}),
            "additionalProperties": False},
        "Grant": _schema(Grant, defs),
        "GrantList": _object(["items"], {"items": {"type": "array", "items": _ref("Grant")}}),
        "AuditEvent": _schema(AuditEvent, defs), "AuditPage": _page(_ref("AuditEvent")),
        "Policy": policy,
        "PolicyList": _object(["items"], {
            "items": {"type": "array", "items": _ref("Policy")},
            "errors": {"type": "array", "items": _object(["policyType", "code"], {
                "policyType": _STRING, "code": _STRING, "message": _STRING})}}),
        "PolicyType": _policy_type(),
        "PolicyTypeList": _object(["items"], {"items": {"type": "array", "items": _ref("PolicyType")}}),
        "Progress": _object(["items"], {"items": {"type": "array", "items": progress_entry}}),
        "Health": _object(["status", "version"], {"status": {"const": "ok"}, "version": _STRING}),
        "OpenApiDocument": _object(["openapi", "info", "paths"], {}),
        "Problem": _object(["type", "title", "status", "code"], {
            "type": _STRING, "title": _STRING, "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": _STRING, "code": _STRING, "instance": _STRING,
            "errors": {"type": "array", "items": {"type": "object"}}}),
        **defs,
    }


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the implemented routes."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in _operations():
        paths.setdefault(operation.path, {})[operation.method] = operation.render()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Intune backup and restore API", "version": VERSION},
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": {"entra": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "Entra ID access token for the API's app registration"}}},
    }
