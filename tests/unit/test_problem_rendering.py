"""Every error a trigger raises is answered as problem+json, even when rendering the error itself fails."""

from __future__ import annotations

import json

import azure.functions as func

from http_triggers._support import problem_responses
from shared.errors import InvalidJson, UnsupportedMediaType

REQUEST = func.HttpRequest(method="PUT", url="http://localhost/api/tenants/x", headers={}, body=b"")


def _answer(exc: Exception) -> func.HttpResponse:
    @problem_responses
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise exc

    return handler(REQUEST)


def test_parser_errors_keep_their_status_and_code() -> None:
    too_deep = _answer(InvalidJson("too deep", code="json-too-deep"))
    assert too_deep.status_code == 400
    assert too_deep.mimetype == "application/problem+json"
    assert json.loads(too_deep.get_body())["code"] == "json-too-deep"
    unsupported = _answer(UnsupportedMediaType("not json"))
    assert unsupported.status_code == 415
    assert json.loads(unsupported.get_body())["code"] == "unsupported-media-type"


def test_an_error_that_cannot_be_rendered_is_still_a_problem_500() -> None:
    unrenderable = InvalidJson("x", when=object())  # an extra member that is not JSON
    response = _answer(unrenderable)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_body())["code"] == "internal-error"
