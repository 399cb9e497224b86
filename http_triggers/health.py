"""``GET /api/health``: liveness without internals."""

from __future__ import annotations

import json

import azure.functions as func

from http_triggers._blueprint import bp
from shared.version import VERSION


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:  # noqa: ARG001 - the binding needs it
    """Answer ``{status, version}``."""
    return func.HttpResponse(json.dumps({"status": "ok", "version": VERSION}),
                             mimetype="application/json")
