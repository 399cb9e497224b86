"""``POST /api/tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots``: start a policy capture."""

from __future__ import annotations

import asyncio
import re

import azure.durable_functions as df
import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._launch import deliver_in_background
from http_triggers._support import (
    api_base_url,
    caller,
    documented,
    json_response,
    problem_responses,
    reject_body,
)
from http_triggers._views import render_run
from shared import container
from shared.auth import cached_caller
from shared.domain import Role, RunKind, RunTarget
from shared.errors import InvalidRequest
from shared.openapi_registry import IDEMPOTENCY_KEY, RUN_ACCEPTED
from shared.services.capture import require_policy_type

# Graph ids are GUIDs, small integers (scope tags) or GUID-based compounds (enrollment defaults).
_POLICY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
RETRY_AFTER_SECONDS = "2"


@documented("Start a snapshot of one policy (operator)", ok={"202": RUN_ACCEPTED}, role=Role.OPERATOR,
            params=(IDEMPOTENCY_KEY,), errors=frozenset({422}), takes_no_body=True)
@bp.route(route="tenants/{tenantId}/policies/{policyType}/{policyId}/snapshots", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problem_responses
async def start_policy_snapshot(req: func.HttpRequest,
                                client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start (or reuse) a snapshot run of one policy; answers 202 with the run and its monitor URL."""
    # A caller seen within the cache windows is answered on this loop; only a miss (a token to validate, a
    # grant to read) goes to a thread. Under load a hand-off to a thread and back costs more than the check.
    principal = cached_caller(dict(req.headers.items()), container.settings())
    if principal is None:
        principal = await asyncio.to_thread(caller, req)
    access = container.access_service()
    tenant_id = req.route_params["tenantId"]
    grant = access.cached_grant(principal, tenant_id, Role.OPERATOR)
    if grant is None:
        grant = await asyncio.to_thread(access.require, principal, tenant_id, Role.OPERATOR)
    reject_body(req)  # only once the caller is known and may start one
    policy_type = require_policy_type(req.route_params["policyType"])
    policy_id = req.route_params["policyId"]
    if not _POLICY_ID.fullmatch(policy_id):
        raise InvalidRequest("The policy id is not a valid Microsoft Graph id.", code="invalid-policy-id")
    result = await container.run_service().start(
        principal=principal, tenant_id=grant.tenant_id, kind=RunKind.POLICY_CAPTURE,
        target=RunTarget(policy_type=policy_type, policy_id=policy_id), scope={},
        idempotency_key=req.headers.get("Idempotency-Key"))
    # The claim is the only write on this path; the orchestration starts from the run's outbox entry.
    deliver_in_background(client, result)
    body = render_run(result.run, api_base_url(req), reused=result.reused)
    return json_response(body, status=202,
                         headers={"Location": body["links"]["monitor"], "Retry-After": RETRY_AFTER_SECONDS})
