"""``GET /api/health``: liveness without internals."""

from __future__ import annotations

import json

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import documented
from shared.openapi_registry import json_answer
from shared.version import VERSION


@documented("Liveness", ok={"200": json_answer("ok", "Health")}, role=None)
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:  # noqa: ARG001 - the binding needs it
    """Answer ``{status, version}``."""
    return func.HttpResponse(json.dumps({"status": "ok", "version": VERSION}),
                             mimetype="application/json")
