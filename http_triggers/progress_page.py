"""``GET /api/progress/page``: the live progress page (static HTML; its script reads ``/api/progress``)."""

from __future__ import annotations

import azure.functions as func

from http_triggers._blueprint import bp
from http_triggers._support import documented, problem_responses
from shared.openapi_registry import html_answer
from shared.web.progress_page import PROGRESS_PAGE_ROUTE, progress_page


# Anonymous at the Functions level: a browser navigation carries neither a bearer token nor a function key,
# and the page holds no data. In Azure, App Service Authentication still stands in front of it.
@documented("The live progress page (HTML; it polls /api/progress)", ok={"200": html_answer("the page")},
            role=None)
@bp.route(route=PROGRESS_PAGE_ROUTE, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@problem_responses
def get_progress_page(req: func.HttpRequest) -> func.HttpResponse:  # noqa: ARG001 - the binding needs it
    """The page, with a Content-Security-Policy that admits only its own inline script and style."""
    page = progress_page()
    return func.HttpResponse(page.html, status_code=200, headers=page.headers, mimetype="text/html",
                             charset="utf-8")
