"""``GET /api/openapi.json``: the OpenAPI document of this API (public; it holds no tenant data)."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import documented, json_response, problem_responses
from shared.openapi import openapi_document
from shared.openapi_registry import json_answer


@documented("This document", ok={"200": json_answer("OpenAPI document", "OpenApiDocument")}, role=None)
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:  # noqa: ARG001 - the binding needs it
    """The document, generated from the models the API renders."""
    return json_response(openapi_document())
