"""HTTP triggers: route templates, methods, request and response conversion, failures."""

from __future__ import annotations

from tests.dfhost.conformance.conftest import HostClient


def test_host_status_reports_running(real_host: HostClient) -> None:
    response = real_host.http.get("/admin/host/status")
    assert response.status_code == 200
    assert response.json() == {"state": "Running", "functions": 32}


def test_route_constraints_pick_the_matching_function(real_host: HostClient) -> None:
    assert real_host.http.get("/api/items/42").json() == {"id": 42, "kind": "int"}
    assert real_host.http.get("/api/items/-7").json() == {"id": -7, "kind": "int"}
    assert real_host.http.get("/api/items/abc").json() == {"name": "abc", "kind": "alpha"}
    assert real_host.http.get("/api/items/a1").status_code == 404


def test_catch_all_and_optional_parameters(real_host: HostClient) -> None:
    nested = real_host.http.get("/api/files/a/b/c.txt").json()
    assert nested == {"path": "a/b/c.txt", "method": "GET"}
    # No methods listed means every method is accepted.
    assert real_host.http.delete("/api/files").json() == {"path": None, "method": "DELETE"}
    assert real_host.http.get("/api/greet").text == "Hello, world!"
    assert real_host.http.get("/api/greet/ada").text == "Hello, ada!"
    assert real_host.http.get("/api/greet", params={"name": "bob"}).text == "Hello, bob!"


def test_routes_are_case_insensitive_and_accept_a_trailing_slash(real_host: HostClient) -> None:
    assert real_host.http.get("/api/GREET/ada/").text == "Hello, ada!"


def test_response_headers_status_and_mimetype(real_host: HostClient) -> None:
    greet = real_host.http.get("/api/greet")
    assert greet.headers["x-fixture"] == "greet"
    assert greet.headers["content-type"] == "text/plain; charset=utf-8"
    echo = real_host.http.post("/api/echo", params={"q": "1"}, json={"k": [1, 2]},
                               headers={"X-Test": "yes"})
    assert echo.status_code == 201
    assert echo.headers["content-type"].startswith("application/json")
    body = echo.json()
    assert body["body"] == {"k": [1, 2]}
    assert body["header"] == "yes"
    assert body["query"] == {"q": "1"}
    assert body["url"] == f"{real_host.host.base_url}/api/echo?q=1"


def test_method_not_listed_is_405_and_unknown_routes_are_404(real_host: HostClient) -> None:
    assert real_host.http.put("/api/greet").status_code == 405
    assert real_host.http.get("/api/echo").status_code == 405
    assert real_host.http.get("/api/does/not/exist").status_code == 404
    assert real_host.http.get("/elsewhere").status_code == 404


def test_default_route_is_the_function_name(real_host: HostClient) -> None:
    response = real_host.http.get("/api/default_route")
    assert response.status_code == 200
    assert response.text == "default route"


def test_exception_in_user_code_is_a_500_with_the_traceback_in_the_log(
        real_host: HostClient) -> None:
    response = real_host.http.get("/api/boom")
    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert len(response.text) < 200
    log = real_host.host.log_tail(20000)
    assert "Traceback" in log
    assert "RuntimeError: user code failed on purpose" in log
    # The host keeps serving.
    assert real_host.http.get("/api/greet").status_code == 200
