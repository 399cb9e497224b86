"""The durable client HTTP API (``HttpApiHandler`` of the extension), served over the engine.

The same handler serves the RPC listener (``/durabletask/...``, the only base the Python SDK
client calls) and the public webhook base (``/runtime/webhooks/durabletask/...``). Status codes
and error bodies follow the extension so the unmodified ``DurableOrchestrationClient`` behaves
as it does in Azure.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from localdev.dfhost.engine import (
    InstanceGone,
    InstanceNotFound,
    InvalidInstanceId,
    OrchestrationAlreadyExists,
    UnknownOrchestrator,
)
from localdev.dfhost.engine_client import EngineClient
from shared.redaction import redact

__all__ = ["DurableApi", "client_binding_json"]

logger = logging.getLogger(__name__)

RUNNING_STATES = {"Running", "Pending", "ContinuedAsNew", "Suspended"}
LOCAL_KEY = "local"  # Core Tools ignores function keys; a fixed placeholder keeps URL shapes real.
ARGUMENT_MESSAGE = "One or more of the arguments submitted is incorrect"
FAILURE_MESSAGE = "Something went wrong while processing your request"


class BadRequest(Exception):
    """A malformed management request (bad query value or body).

    Its text names the parameter at fault but never quotes what the caller sent.
    """


def management_urls(webhook_base: str, hub: str) -> dict[str, str]:
    """The ``managementUrls`` block of the client binding, with the ``INSTANCEID`` placeholder."""
    qs = f"taskHub={hub}&connection=Storage&code={LOCAL_KEY}"
    instance = f"{webhook_base}/instances/INSTANCEID"
    return {
        "id": "INSTANCEID",
        "purgeHistoryDeleteUri": f"{instance}?{qs}",
        "restartPostUri": f"{instance}/restart?{qs}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{qs}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{qs}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{qs}",
        "statusQueryGetUri": f"{instance}?{qs}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{qs}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{qs}",
    }


def client_binding_json(*, webhook_base: str, rpc_base: str, hub: str) -> str:
    """Build the ``durableClient`` binding string as the extension's ``BindingHelper`` does.

    Args:
        webhook_base: ``http://127.0.0.1:<port>/runtime/webhooks/durabletask``.
        rpc_base: ``http://127.0.0.1:<rpc>/durabletask/``.
        hub: Task hub name.

    Returns:
        The JSON string the worker passes to a ``durable_client_input`` parameter.
    """
    create = f"{webhook_base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    return json.dumps({
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?code={LOCAL_KEY}",
            "createAndWaitOnNewInstancePostUri":
                f"{create}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}"
                f"&code={LOCAL_KEY}",
        },
        "managementUrls": management_urls(webhook_base, hub),
        "baseUrl": webhook_base,
        "requiredQueryStringParameters": f"code={LOCAL_KEY}",
        "rpcBaseUrl": rpc_base,
    })


def _error(status: int, message: str, exc: BaseException, exception_type: str) -> web.Response:
    body = {"Message": message, "ExceptionMessage": str(exc),
            "ExceptionType": exception_type, "StackTrace": ""}
    return web.json_response(body, status=status)


def _bad_request(text: str) -> web.Response:
    return web.json_response({"Message": ARGUMENT_MESSAGE, "ExceptionMessage": text,
                              "ExceptionType": "System.ArgumentException", "StackTrace": ""},
                             status=400)


def _flag(query: Any, name: str, default: bool = False) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return default
    lowered = str(value).lower()
    if lowered not in {"true", "false"}:
        raise BadRequest(f"Query parameter {name} must be true or false")
    return lowered == "true"


def _time(query: Any, name: str) -> datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"Query parameter {name} is not an ISO-8601 time") from None
    # The extension reads times without an offset as UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _statuses(query: Any) -> list[str] | None:
    value = query.get("runtimeStatus")
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


class DurableApi:
    """Request handling for the durable HTTP API, independent of the URL prefix."""

    def __init__(self, *, engine: EngineClient, hub: str, webhook_base: str) -> None:
        self.engine = engine
        self.hub = hub
        self.webhook_base = webhook_base

    def _urls_for(self, instance_id: str) -> dict[str, str]:
        urls = management_urls(self.webhook_base, self.hub)
        quoted = quote(instance_id, safe="")
        return {k: v.replace("INSTANCEID", quoted) for k, v in urls.items()}

    async def handle(self, request: web.Request, rest: str) -> web.Response:
        """Serve one request whose path below the durable prefix is ``rest``."""
        parts = [p for p in rest.split("/") if p]
        try:
            return await self._route(request, parts)
        except BadRequest as exc:
            return _bad_request(str(exc))
        except InstanceNotFound:
            return web.Response(status=404)
        except InstanceGone as exc:
            return web.json_response({"Message": f"Instance is gone: {exc}"}, status=410)

    async def _route(self, request: web.Request, parts: list[str]) -> web.Response:
        method = request.method
        if parts and parts[0] == "orchestrators" and 2 <= len(parts) <= 3 and method == "POST":
            return await self._start(request, parts[1], parts[2] if len(parts) == 3 else None)
        if parts and parts[0] == "instances":
            if len(parts) == 1:
                if method == "GET":
                    return await self._query(request)
                if method == "DELETE":
                    return await self._purge_by(request)
            elif len(parts) == 2:
                if method == "GET":
                    return await self._status(request, parts[1])
                if method == "DELETE":
                    deleted = await self.engine.purge(parts[1])
                    return self._purged(deleted)
            elif len(parts) == 4 and parts[2] == "raiseEvent" and method == "POST":
                return await self._raise_event(request, parts[1], parts[3])
            elif len(parts) == 3 and method == "POST":
                return await self._operation(request, parts[1], parts[2])
        if parts and parts[0] == "entities":
            return web.json_response({"Message": "Durable entities are not supported by the "
                                                 "local host"}, status=501)
        return web.json_response({"Message": "No durable API route matches the method and path"},
                                 status=404)

    async def _start(self, request: web.Request, name: str,
                     instance_id: str | None) -> web.Response:
        text = (await request.read()).decode("utf-8", errors="replace")
        if text.strip():
            try:
                json.loads(text)
            except ValueError:
                raise BadRequest("The request body is not valid JSON") from None
        try:
            new_id = await self.engine.start_instance(
                name, instance_id, text if text.strip() else None,
                version=request.query.get("version") or None)
        except (UnknownOrchestrator, InvalidInstanceId) as exc:
            return _error(400, ARGUMENT_MESSAGE, exc, "System.ArgumentException")
        except OrchestrationAlreadyExists as exc:
            return _error(500, FAILURE_MESSAGE, exc,
                          "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        return self._check_status_response(new_id)

    async def _status(self, request: web.Request, instance_id: str) -> web.Response:
        query = request.query
        status = await self.engine.get_status(
            instance_id, show_history=_flag(query, "showHistory"),
            show_history_output=_flag(query, "showHistoryOutput"),
            show_input=_flag(query, "showInput", default=True))
        if status is None:
            return web.Response(status=404)
        runtime = status.get("runtimeStatus")
        if runtime in RUNNING_STATES:
            return web.json_response(status, status=202, headers={
                "Location": self._urls_for(instance_id)["statusQueryGetUri"],
                "Retry-After": "5"})
        if runtime == "Failed" and _flag(query, "returnInternalServerErrorOnFailure"):
            return web.json_response(status, status=500)
        return web.json_response(status, status=200)

    async def _query(self, request: web.Request) -> web.Response:
        query = request.query
        found = await self.engine.query(
            created_from=_time(query, "createdTimeFrom"), created_to=_time(query, "createdTimeTo"),
            runtime_status=_statuses(query), instance_id_prefix=query.get("instanceIdPrefix") or None,
            show_input=_flag(query, "showInput", default=True))
        return web.json_response(found, status=200)

    def _purged(self, deleted: int) -> web.Response:
        if deleted == 0:
            return web.Response(status=404)
        return web.json_response({"instancesDeleted": deleted}, status=200)

    async def _purge_by(self, request: web.Request) -> web.Response:
        query = request.query
        deleted = await self.engine.purge_by(
            created_from=_time(query, "createdTimeFrom"), created_to=_time(query, "createdTimeTo"),
            runtime_status=_statuses(query))
        return self._purged(deleted)

    async def _raise_event(self, request: web.Request, instance_id: str,
                           event_name: str) -> web.Response:
        body = await request.read()
        if body and "json" not in (request.content_type or ""):
            return _bad_request("Only application/json request content is supported")
        text = body.decode("utf-8", errors="replace") if body else None
        if text:
            try:
                json.loads(text)
            except ValueError:
                return _bad_request("The request body is not valid JSON")
        await self.engine.raise_event(instance_id, event_name, text)
        return web.Response(status=202)

    def _check_status_response(self, instance_id: str) -> web.Response:
        urls = self._urls_for(instance_id)
        body = {"id": instance_id, **{k: v for k, v in urls.items() if k != "id"}}
        return web.json_response(body, status=202, headers={
            "Location": urls["statusQueryGetUri"], "Retry-After": "10"})

    async def _restart(self, request: web.Request, instance_id: str) -> web.Response:
        """Start the instance's orchestrator again with its original input (``RestartAsync``)."""
        status = await self.engine.get_status(instance_id, show_input=True)
        if status is None:
            return web.Response(status=404)
        with_new_id = _flag(request.query, "restartWithNewInstanceId", default=True)
        target = uuid.uuid4().hex if with_new_id else instance_id
        # The status shows the stored input token; re-serialising it gives the body the
        # instance was started with (double-encoded for SDK clients), so it round-trips.
        stored = status.get("input")
        body = None if stored is None else json.dumps(stored)
        try:
            new_id = await self.engine.start_instance(str(status["name"]), target, body)
        except OrchestrationAlreadyExists as exc:
            return _error(500, FAILURE_MESSAGE, exc,
                          "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        return self._check_status_response(new_id)

    async def _operation(self, request: web.Request, instance_id: str,
                         operation: str) -> web.Response:
        reason = request.query.get("reason") or None
        if operation == "terminate":
            await self.engine.terminate(instance_id, reason)
        elif operation == "suspend":
            await self.engine.suspend(instance_id, reason)
        elif operation == "resume":
            await self.engine.resume(instance_id, reason)
        elif operation == "restart":
            return await self._restart(request, instance_id)
        elif operation == "rewind":
            return web.json_response(
                {"Message": "The local host does not implement rewind; restart the instance "
                            "or start a new one instead"}, status=501)
        else:
            return web.json_response({"Message": "Unknown instance operation"}, status=404)
        logger.info("%s instance_id=%s reason=%s", operation, instance_id,
                    redact(reason or ""))
        return web.Response(status=202)
