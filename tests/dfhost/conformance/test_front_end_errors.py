"""Errors the host itself answers: problem+json, 405 with ``Allow``, and never an echo of the request.

A client sees these before any function runs (unknown route, method not allowed, a request the HTTP
parser rejects), so they must look like the API's own errors and must not copy header values (a bearer
token) or other request text into the body or the host log.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import httpx
import pytest

from tests.dfhost.conformance.conftest import HostClient

PROBLEM = "application/problem+json"
EVERY_METHOD = {"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}


def _marker() -> str:
    return "SECRETMARK" + uuid.uuid4().hex


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert (body["status"], body["code"]) == (status, code)
    return dict(body)


def _allow(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",")}


def _raw(host: HostClient, data: bytes) -> bytes:
    """Send raw bytes and read the whole answer (the host closes the connection after an error)."""
    port = int(host.host.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


def _split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _log_after_flush(host: HostClient, marker: str) -> str:
    # The log is written by another process; give it a moment before searching it.
    time.sleep(0.3)
    return host.host.log_tail(400_000)


def test_unknown_route_is_a_404_problem(real_host: HostClient) -> None:
    body = _problem(real_host.http.get("/api/does/not/exist"), 404, "route-not-found")
    assert body["title"] == "Not Found"
    _problem(real_host.http.get("/elsewhere"), 404, "route-not-found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/api/greet", {"GET", "POST"}),
    ("GET", "/api/echo", {"POST"}),
    ("TRACE", "/api/greet/ada", {"GET", "POST"}),
    ("PROPFIND", "/api/items/42", {"GET"}),
    # A function that lists no methods takes the usual ones, never TRACE.
    ("TRACE", "/api/files/a.txt", EVERY_METHOD),
])
def test_a_method_the_route_does_not_take_is_a_405_with_allow(
        real_host: HostClient, method: str, path: str, allowed: set[str]) -> None:
    response = real_host.http.request(method, path)
    _problem(response, 405, "method-not-allowed")
    assert _allow(response) == allowed


def test_trace_on_host_endpoints_is_refused(real_host: HostClient) -> None:
    response = real_host.http.request("TRACE", "/admin/host/status")
    assert response.status_code == 405
    assert "GET" in _allow(response)


@pytest.mark.parametrize("where", ["value", "name"])
def test_an_oversized_header_is_refused_without_echo(real_host: HostClient, where: str) -> None:
    marker = _marker()
    token = f"Bearer {marker}" + "x" * 16_384
    headers = {"Authorization": token} if where == "value" else {f"X-{marker}" + "y" * 16_384: "1"}
    with httpx.Client(base_url=real_host.host.base_url, timeout=30.0) as client:
        response = client.get("/api/greet", headers=headers)
    _problem(response, 431, "request-header-too-large")
    assert marker not in response.text
    assert "x" * 32 not in response.text
    assert "y" * 32 not in response.text
    assert marker not in _log_after_flush(real_host, marker)
    # The host keeps serving.
    assert real_host.http.get("/api/greet").status_code == 200


@pytest.mark.parametrize("request_head", [
    b"GET /api/greet\x00%s HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G\x01T /api/%s HTTP/1.1\r\nHost: x\r\n\r\n",
    b"%s\r\n\r\n",
    b"GET /api/greet HTTP/1.1\r\nHost: x\r\nAuthorization Bearer %s\r\n\r\n",
    b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1%s\r\n\r\n",
    b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ%s\r\n\r\n",
])
def test_a_malformed_request_is_a_400_problem_without_echo(
        real_host: HostClient, request_head: bytes) -> None:
    marker = _marker()
    status, headers, body = _split(_raw(real_host, request_head % marker.encode()))
    assert status == 400
    assert headers["content-type"].split(";")[0] == PROBLEM
    assert marker.encode() not in body
    assert json.loads(body)["code"] == "malformed-request"
    assert marker not in _log_after_flush(real_host, marker)


def test_a_failing_function_is_a_500_problem(real_host: HostClient) -> None:
    body = _problem(real_host.http.get("/api/boom"), 500, "function-failed")
    assert "user code failed on purpose" not in str(body)
