"""JSON ``$batch``: up to 20 items, each routed, faulted and throttled on its own."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from localdev.graphsim.graph import GraphResponse
from localdev.graphsim.odata import JSON_CONTENT_TYPE, GraphError, error_body

if TYPE_CHECKING:
    from localdev.graphsim.server import Simulator

__all__ = ["MAX_BATCH", "run_batch"]

MAX_BATCH = 20
_order = random.Random(20)


def _bad(message: str, request_id: str) -> GraphResponse:
    err = GraphError(400, "BadRequest", message)
    return GraphResponse(400, error_body(err, request_id=request_id, client_request_id=request_id))


def validate(payload: Any, request_id: str) -> list[dict[str, Any]] | GraphResponse:
    """The batch items, or the 400 envelope Graph returns for a malformed batch."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        return _bad("Invalid batch payload format.", request_id)
    items: list[dict[str, Any]] = payload["requests"]
    if not items:
        return _bad("The batch must contain at least one request.", request_id)
    if len(items) > MAX_BATCH:
        return _bad(f"Number of requests in a batch must not exceed {MAX_BATCH}.", request_id)
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            return _bad("Each batch request must be an object.", request_id)
        item_id, method, url = item.get("id"), item.get("method"), item.get("url")
        # Graph takes JSON numbers as ids too (clients send 1, 2, 3) and answers with strings.
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = item["id"] = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            return _bad("Each batch request needs an id.", request_id)
        if item_id in seen:
            return _bad(f"Request Id '{item_id}' is duplicated in the batch.", request_id)
        seen.add(item_id)
        if not isinstance(method, str) or not isinstance(url, str) or not url:
            return _bad(f"Request '{item_id}' needs a method and a url.", request_id)
        if urlsplit(url).scheme or url.startswith("//"):
            return _bad(f"Request '{item_id}': the url must be relative.", request_id)
        headers = item.get("headers") or {}
        if "body" in item and item["body"] is not None and not any(
                k.lower() == "content-type" for k in headers):
            return _bad(f"Request '{item_id}': the Content-Type header is required with a body.",
                        request_id)
        depends = item.get("dependsOn") or []
        if isinstance(depends, list):
            depends = item["dependsOn"] = [str(d) if isinstance(d, int) and not isinstance(d, bool)
                                           else d for d in depends]
        if not isinstance(depends, list) or any(d not in seen or d == item_id for d in depends):
            return _bad(f"Request '{item_id}': dependsOn must name earlier requests.", request_id)
    return items


async def run_batch(sim: Simulator, version: str, raw: bytes, headers: Mapping[str, str],
                    request_id: str) -> GraphResponse:
    """Execute a ``$batch`` envelope (200 with per-item responses in any order)."""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    try:
        sim.authenticate(headers.get("Authorization"))
    except GraphError as err:
        return GraphResponse(err.status, error_body(err, request_id=request_id,
                                                    client_request_id=request_id), err.headers)
    items = validate(payload, request_id)
    if isinstance(items, GraphResponse):
        return items
    statuses: dict[str, int] = {}
    responses: list[dict[str, Any]] = []
    for item in items:
        item_id = item["id"]
        failed = [d for d in item.get("dependsOn") or [] if not 200 <= statuses[d] < 300]
        if failed:
            statuses[item_id] = 424
            dependency = GraphError(424, "FailedDependency", "The dependency failed.")
            responses.append({"id": item_id, "status": 424,
                              "headers": {"Content-Type": "application/json"},
                              "body": error_body(dependency, request_id=request_id,
                                                 client_request_id=request_id)})
            continue
        parts = urlsplit(item["url"])
        # Item URLs are relative to the envelope's version: "/beta/..." inside a batch is an
        # unknown "beta" segment, as in Graph.
        path = parts.path.lstrip("/")
        outcome = await sim.process(
            method=item["method"].upper(), version=version, path=path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)), raw_query=parts.query,
            raw_body=None, body=item.get("body"), auth=headers.get("Authorization"),
            request_id=request_id, in_batch=True)
        response = outcome.response
        statuses[item_id] = response.status
        item_headers = dict(response.headers)
        if response.body is not None:
            item_headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
        entry: dict[str, Any] = {"id": item_id, "status": response.status,
                                 "headers": item_headers}
        if response.body is not None:
            entry["body"] = response.body
        responses.append(entry)
    # Graph returns items in any order; clients must match on id.
    _order.shuffle(responses)
    return GraphResponse(200, {"responses": responses})
