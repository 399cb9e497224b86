"""The OpenAPI document matches what the API renders."""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from http_triggers._views import render_run
from shared.domain import CreatedBy, Role, RunKind, RunRecord, RunStatus, RunTarget
from shared.openapi import openapi_document


def test_document_describes_every_contract_route_we_serve() -> None:
    doc = openapi_document()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots",
                 "/api/tenants/{tenantId}/runs/{runId}/monitor", "/api/progress", "/api/notifications"):
        assert path in doc["paths"]
    post = doc["paths"]["/api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots"]["post"]
    assert set(post["responses"]["202"]["headers"]) == {"Location", "Retry-After"}


def test_run_schema_lists_exactly_the_fields_a_rendered_run_has() -> None:
    run = RunRecord(id="run_1", tenant_id="t", kind=RunKind.POLICY_CAPTURE,
                    target=RunTarget(policy_type="settingsCatalog", policy_id="p"),
                    created_by=CreatedBy(id="o", name="n"), created_at=datetime(2026, 1, 1, tzinfo=UTC),
                    derived_key="k" * 64)
    rendered = render_run(run, "https://app/api")
    schema = openapi_document()["components"]["schemas"]["Run"]
    assert set(schema["properties"]) == set(rendered)
    assert "derivedKey" not in rendered


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = openapi_document()["paths"]
    return [(path, method, op) for path, item in paths.items() for method, op in item.items()]


@functools.cache
def _app_functions() -> list[Any]:
    """The app's functions; indexing them twice in one process fails on the names seen the first time."""
    from function_app import app

    return list(app.get_functions())


def test_document_has_exactly_the_http_routes_the_app_registers() -> None:
    served = set()
    for function in _app_functions():
        trigger = function.get_trigger()
        if trigger is not None and trigger.type == "httpTrigger":
            served |= {(f"/api/{trigger.route}", str(m.value if hasattr(m, "value") else m).lower())
                       for m in trigger.methods}

    assert {(path, method) for path, method, _ in _operations()} == served


def test_every_error_answer_is_declared_as_problem_json_with_its_headers() -> None:
    for path, method, op in _operations():
        responses = op["responses"]
        secured = op["security"] == [{"entra": []}]
        assert secured == (path not in ("/api/health", "/api/openapi.json", "/api/progress/page")), path
        expected = {"401", "503"} if secured else set()
        if "requestBody" in op:
            expected |= {"400", "413", "415"}
        if "{tenantId}" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert response["content"] == {"application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)
            elif status != "204":
                media = "text/html" if path == "/api/progress/page" else "application/json"
                assert media in response["content"], (method, path, status)
        if secured:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
            assert responses["503"]["headers"]["Retry-After"]["required"] is True
    assert openapi_document()["components"]["securitySchemes"]["entra"]["scheme"] == "bearer"


def test_parameters_carry_the_constraints_the_server_enforces() -> None:
    def param(path: str, name: str) -> dict[str, Any]:
        op = openapi_document()["paths"][path]["get" if "grants/" not in path else "put"]
        return next(p["schema"] for p in op["parameters"] if p["name"] == name)

    runs = "/api/tenants/{tenantId}/runs"
    assert (param(runs, "top")["minimum"], param(runs, "top")["maximum"]) == (1, 200)
    assert param("/api/tenants/{tenantId}/runs/{runId}/items", "top")["maximum"] == 1000
    assert set(param(runs, "status")["enum"]) == {s.value for s in RunStatus}
    guid = re.compile(param(runs, "tenantId")["pattern"])
    assert guid.fullmatch(str(uuid.uuid4()))
    assert not guid.fullmatch("tenant")
    assert param("/api/tenants/{tenantId}/grants/{principalId}", "principalId")["pattern"] == guid.pattern


# The regexes the server checks each id with, by parameter name; a pattern in the document for a name that is
# not here (or a different regex) fails below, so the document cannot drift from the server's checks.
def _server_patterns() -> dict[str, re.Pattern[str]]:
    from http_triggers.snapshots import _POLICY_ID
    from shared.domain.backupsets import BACKUP_SET_ID
    from shared.domain.restore import ITEM_ID, RUN_ID
    from shared.domain.webhooks import _NAME
    from shared.services.tenants import _GUID

    return {"tenantId": _GUID, "principalId": _GUID, "principalTenantId": _GUID, "runId": RUN_ID,
            "backupSetId": BACKUP_SET_ID, "itemId": ITEM_ID, "policyId": _POLICY_ID, "name": _NAME}


def test_every_parameter_pattern_is_the_regex_the_server_validates_with() -> None:
    server = _server_patterns()
    compound = {"notificationId", "eventId"}  # a run id and a status; checked against the ids we make below
    seen = set()
    for path, method, op in _operations():
        for param in op["parameters"]:
            pattern = param["schema"].get("pattern")
            if param["in"] == "path":
                assert pattern or "enum" in param["schema"], (method, path, param["name"])
            if pattern is None:
                continue
            seen.add(param["name"])
            if param["name"] in compound:
                continue
            assert param["name"] in server, (method, path, param["name"], "not a pattern the server checks")
            assert pattern == server[param["name"]].pattern, (method, path, param["name"])
    assert seen == set(server) | compound


def test_compound_id_patterns_match_the_ids_the_server_makes() -> None:
    from shared.domain import notification_id
    from shared.domain.backupsets import backup_set_id_for_run
    from shared.domain.ids import new_run_id
    from shared.domain.webhooks import event_id

    run_id = new_run_id(datetime.now(UTC))
    params = {p["name"]: re.compile(p["schema"]["pattern"])
              for _, _, op in _operations() for p in op["parameters"] if "pattern" in p["schema"]}
    assert params["runId"].fullmatch(run_id)
    assert params["backupSetId"].fullmatch(backup_set_id_for_run(run_id))
    for status in RunStatus:
        assert params["notificationId"].fullmatch(notification_id(run_id, status))
        assert params["eventId"].fullmatch(event_id(run_id, status))
    assert not params["notificationId"].fullmatch(event_id(run_id, RunStatus.QUEUED))
    assert not params["eventId"].fullmatch(run_id)


def test_body_patterns_are_the_regexes_the_server_validates_with() -> None:
    from shared.domain.access import CREDENTIAL_NAME
    from shared.domain.backupsets import BACKUP_SET_ID, GRAPH_ID
    from shared.domain.restore import ITEM_ID, RUN_ID
    from shared.services.tenants import _GUID

    schemas = openapi_document()["components"]["schemas"]
    credential_name = schemas["CredentialRef"]["properties"]["name"]["anyOf"]
    assert credential_name == [{"const": ""}, {"pattern": CREDENTIAL_NAME.pattern}]
    restore = schemas["RestoreRequest"]["properties"]
    assert restore["backupSetId"]["pattern"] == BACKUP_SET_ID.pattern
    assert restore["previewRunId"]["anyOf"][0]["pattern"] == RUN_ID.pattern
    assert restore["itemIds"]["anyOf"][0]["items"]["pattern"] == ITEM_ID.pattern
    assert schemas["GrantRequest"]["properties"]["principalTenantId"]["pattern"] == _GUID.pattern
    policy = schemas["BackupSetRequest"]["properties"]["selection"]["oneOf"][2]["properties"]["policies"]
    assert policy["items"]["properties"]["id"]["pattern"] == GRAPH_ID.pattern


def test_kinds_and_statuses_are_enums_wherever_the_api_returns_them() -> None:
    schemas = openapi_document()["components"]["schemas"]
    progress = schemas["Progress"]["properties"]["items"]["items"]["properties"]
    assert progress["kind"]["enum"] == [k.value for k in RunKind]
    assert progress["status"]["enum"] == [s.value for s in RunStatus]
    for name in ("Run", "Notification"):
        for field in ("kind", "status"):
            ref = schemas[name]["properties"][field]["$ref"].rsplit("/", 1)[1]
            assert "enum" in schemas[ref], (name, field)


# What a handler reads from its request, from its source and that of the module's helpers it calls.
def _handler_reads(route: Any) -> dict[str, Any]:
    import ast
    import inspect
    import sys
    import textwrap

    from http_triggers._support import query_int

    handler = inspect.unwrap(route.handler)
    module = sys.modules[handler.__module__]
    top_defaults = {name: p.default for name, p in inspect.signature(query_int).parameters.items()
                    if p.default is not inspect.Parameter.empty}
    reads: dict[str, Any] = {"query": set(), "headers": set(), "body": set(), "top": None,
                             "refuses_bodies": False, "roles": set(), "checks": set()}
    seen: set[str] = set()

    def constant(node: ast.AST) -> Any:
        return node.value if isinstance(node, ast.Constant) else None

    def visit(function: Any) -> None:
        if function.__name__ in seen:
            return
        seen.add(function.__name__)
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "Role"):
                reads["roles"].add(Role[node.attr])
            if isinstance(node, ast.Attribute) and node.attr.startswith("require_"):
                reads["checks"].add(node.attr)
            if not isinstance(node, ast.Call):
                continue
            callee = node.func
            name = callee.id if isinstance(callee, ast.Name) else None
            # req.params.get("x") and req.headers.get("X"); query_int, query_bool and the modules' _enum_param
            # helpers take the parameter's name second.
            if (isinstance(callee, ast.Attribute) and callee.attr == "get"
                    and isinstance(callee.value, ast.Attribute)):
                where = {"params": "query", "headers": "headers"}.get(callee.value.attr)
                if where and node.args and isinstance(constant(node.args[0]), str):
                    reads[where].add(constant(node.args[0]))
            if name in ("query_int", "query_bool") or (name and name.startswith("_enum")):
                reads["query"].add(constant(node.args[1]))
            if name == "query_int" and constant(node.args[1]) == "top":
                bounds = {**top_defaults, **{str(k.arg): constant(k.value) for k in node.keywords}}
                reads["top"] = (bounds["default"], bounds["minimum"], bounds["maximum"])
            if name == "read_json":
                model = node.args[1]
                assert isinstance(model, ast.Name)
                reads["body"].add(getattr(module, model.id))
                reads["refuses_bodies"] = True
            if name == "reject_body":
                reads["refuses_bodies"] = True
            helper = getattr(module, name, None) if name else None
            if inspect.isfunction(helper) and helper.__module__ == module.__name__:
                visit(helper)

    visit(handler)
    return reads


def test_each_operation_documents_what_its_handler_reads_and_the_bounds_it_enforces() -> None:
    from shared.openapi_registry import GRANT_ADMIN, PLATFORM_ADMIN, REGISTRY

    for route in REGISTRY.routes():
        label = f"{route.method.upper()} {route.path}"
        reads = _handler_reads(route)
        params = {p.name: p for p in route.doc.params}
        assert reads["query"] == {p.name for p in route.doc.params if p.location == "query"}, label
        assert reads["headers"] == {p.name for p in route.doc.params if p.location == "header"}, label
        assert reads["body"] == ({route.doc.body} if route.doc.body else set()), label
        if reads["top"] is not None:
            schema = params["top"].schema
            assert (schema["default"], schema["minimum"], schema["maximum"]) == reads["top"], label
        op = openapi_document()["paths"][route.path][route.method]
        assert ("413" in op["responses"]) == reads["refuses_bodies"], label
        # The role the handler asks the access service for is the one documented.
        if isinstance(route.doc.role, Role):
            assert route.doc.role in reads["roles"], label
        if "require_platform_admin" in reads["checks"]:
            assert route.doc.role == PLATFORM_ADMIN, label
        if "require_grant_admin" in reads["checks"]:
            assert route.doc.role == GRANT_ADMIN, label


def test_written_out_request_bodies_have_exactly_their_models_fields() -> None:
    from shared.openapi_registry import REGISTRY

    schemas = openapi_document()["components"]["schemas"]
    for route in REGISTRY.routes():
        model = route.doc.body
        if model is None:
            continue
        schema = schemas[model.__name__]
        fields = model.model_fields
        assert set(schema["properties"]) == {f.alias or n for n, f in fields.items()}, model
        assert set(schema.get("required", [])) == {f.alias or n for n, f in fields.items() if f.is_required()}


def test_the_document_is_generated_from_the_routes_and_an_undocumented_route_is_found() -> None:
    import azure.durable_functions as df
    import azure.functions as func
    import pytest

    from http_triggers._support import documented, undocumented_routes
    from shared.openapi import build_document
    from shared.openapi_registry import OperationRegistry, json_answer, top

    assert undocumented_routes(_app_functions()) == []

    registry = OperationRegistry()
    bp = df.Blueprint()

    @documented("Sample", ok={"200": json_answer("sample", "Run")}, role=Role.ADMIN,
                params=(top(default=5, maximum=10),), registry=registry)
    @bp.route(route="tenants/{tenantId}/runs/{runId}/sample", methods=["GET", "POST"])  # type: ignore[untyped-decorator]
    def documented_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    @bp.route(route="tenants/{tenantId}/forgotten", methods=["DELETE"])  # type: ignore[untyped-decorator]
    def forgotten_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse()

    functions = [f.build() for f in bp._function_builders]
    assert undocumented_routes(functions, registry) == ["DELETE /api/tenants/{tenantId}/forgotten"]
    paths = build_document(registry.routes())["paths"]
    assert set(paths) == {"/api/tenants/{tenantId}/runs/{runId}/sample"}
    op = paths["/api/tenants/{tenantId}/runs/{runId}/sample"]["post"]
    assert [p["name"] for p in op["parameters"]] == ["tenantId", "runId", "top"]
    assert op["parameters"][1]["schema"]["pattern"] == _server_patterns()["runId"].pattern
    assert {"400", "401", "403", "404", "503"} <= set(op["responses"])
    assert op["x-required-role"] == "admin"

    with pytest.raises(TypeError):
        @bp.route(route="misplaced", methods=["GET"])  # type: ignore[untyped-decorator]
        @documented("Misplaced", ok={}, role=None, registry=registry)  # type: ignore[arg-type]
        def misplaced(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse()
