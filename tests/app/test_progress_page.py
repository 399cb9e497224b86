"""The progress page is served self-contained, with a policy that lets only its own script and style run."""

from __future__ import annotations

import base64
import hashlib
import re

import azure.functions as func

from http_triggers.progress_page import get_progress_page
from shared.openapi import openapi_document


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


def _served() -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url="http://127.0.0.1:7071/api/progress/page", body=b"")
    return get_progress_page(request)


def test_the_page_is_html_whose_only_code_is_its_own_inline_script_and_style() -> None:
    response = _served()
    html = response.get_body().decode("utf-8")
    directives = response.headers["Content-Security-Policy"].split(";")
    policy = dict(part.strip().split(" ", 1) for part in directives)

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    (style,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert policy["script-src"] == _hash(script)
    assert policy["style-src"] == _hash(style)
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    # Nothing is loaded from anywhere else, and no API value is ever parsed as markup.
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html)
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_takes_a_token_only_from_the_fragment_and_sends_it_only_as_a_header() -> None:
    script = re.findall(r"<script>(.*?)</script>", _served().get_body().decode("utf-8"), re.S)[0]

    assert "new URLSearchParams(window.location.hash.slice(1))" in script
    assert "URLSearchParams(window.location.search" not in script
    assert 'result.Authorization = "Bearer " + token' in script
    assert "localStorage" not in script  # the tab's sessionStorage only


def test_the_page_is_in_the_openapi_document_as_public_html() -> None:
    operation = openapi_document()["paths"]["/api/progress/page"]["get"]

    assert operation["security"] == []
    assert set(operation["responses"]["200"]["content"]) == {"text/html"}
