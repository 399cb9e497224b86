"""The host's HTTP front: HTTP-triggered functions, admin endpoints and the durable webhooks.

Two aiohttp applications are built here: the main one (``/api/...``, ``/admin/...`` and
``/runtime/webhooks/durabletask/...``) and the internal RPC listener (``/durabletask/...``) that
the Python durable client calls through ``rpcBaseUrl``.

Errors the host answers itself (unknown route, method not allowed, a request aiohttp's parser
rejects, a failing function) are RFC 9457 problem+json, like the API's own errors, and never quote
the request: aiohttp's parser messages copy the offending bytes (a bearer token in an over-long
``Authorization`` line), so neither its text nor the exception message reaches a response or the
log.
"""

from __future__ import annotations

import json
import logging
import traceback
import warnings
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import azure.functions as func
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from localdev.dfhost.engine_client import EngineClient
from localdev.dfhost.http_durable import FAILURE_MESSAGE, DurableApi, client_binding_json
from localdev.dfhost.http_routes import RouteTemplate
from localdev.dfhost.registry import HTTP, FunctionSpec, Registry
from shared.redaction import redact

__all__ = ["HttpRoute", "build_main_app", "build_rpc_app", "compile_routes", "problem_response"]

logger = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RPC_PREFIX = "/durabletask"
PROBLEM_CONTENT_TYPE = "application/problem+json"
# What a function that lists no methods accepts (``func.HttpMethod``); TRACE and CONNECT never.
EVERY_METHOD = frozenset(str(m.value) for m in func.HttpMethod)


def problem_response(status: int, code: str, detail: str, *,
                     headers: dict[str, str] | None = None) -> web.Response:
    """An RFC 9457 problem the host answers itself.

    Args:
        status: HTTP status.
        code: Stable machine code (``route-not-found``...).
        detail: Our own sentence; never text taken from the request.
        headers: Extra response headers (``Allow``).

    Returns:
        The ``application/problem+json`` response.
    """
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "code": code}
    return web.Response(status=status, body=json.dumps(body).encode(),
                        content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def route_not_found() -> web.Response:
    """404 for a path no function or host endpoint serves."""
    return problem_response(404, "route-not-found", "No function or host endpoint serves this "
                                                    "path.")


def method_not_allowed(allowed: Iterable[str]) -> web.Response:
    """405 with the ``Allow`` header listing what the route accepts."""
    return problem_response(405, "method-not-allowed", "The route does not accept this HTTP "
                                                       "method; see the Allow header.",
                            headers={"Allow": ", ".join(sorted(allowed))})


def _exception_summary(exc: BaseException) -> str:
    """The exception type and the frames that raised it, not its message (may quote the request)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"{type(exc).__module__}.{type(exc).__qualname__}\n{frames}".rstrip()


class HttpRoute:
    """An HTTP-triggered function with its compiled route and accepted methods."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        trigger = spec.trigger
        route = trigger.route if trigger.route is not None else spec.name
        self.template = RouteTemplate(route)
        methods = trigger.methods
        # None means every method, as in the host.
        self.methods = None if not methods else {str(getattr(m, "value", m)).upper()
                                                 for m in methods}
        self.allowed = frozenset(self.methods) if self.methods else EVERY_METHOD

    def accepts(self, method: str) -> bool:
        """Whether the function accepts the HTTP method."""
        return method.upper() in self.allowed


def compile_routes(registry: Registry) -> list[HttpRoute]:
    """Compile the HTTP functions' routes, most specific first."""
    routes = [HttpRoute(spec) for spec in registry.of_type(HTTP)]
    return sorted(routes, key=lambda r: r.template.sort_key)


def _to_func_request(request: web.Request, body: bytes, route_params: dict[str, str]) -> Any:
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return func.HttpRequest(method=request.method, url=str(request.url), headers=headers,
                            params=dict(request.query), route_params=route_params, body=body)


def _to_web_response(result: Any) -> web.Response:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            content_type = result.mimetype or "text/plain"
            if result.charset:
                content_type += f"; charset={result.charset}"
            headers["Content-Type"] = content_type
        return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
    if result is None:
        return web.Response(status=204)
    if isinstance(result, bytes | bytearray):
        return web.Response(status=200, body=bytes(result))
    return web.Response(status=200, text=str(result), content_type="text/plain")


class HostHttp:
    """Shared state of the two HTTP applications.

    Requests are served on the worker loop; every engine call goes through ``engine``, which
    runs it in the engine process (or on the engine's own thread and loop).
    """

    def __init__(self, *, registry: Registry, engine: EngineClient, hub: str, route_prefix: str,
                 port: int, rpc_port: int) -> None:
        self.registry = registry
        self.engine = engine
        self.route_prefix = route_prefix.strip("/")
        self.routes = compile_routes(registry)
        webhook_base = f"http://127.0.0.1:{port}{WEBHOOK_PREFIX}"
        self.durable = DurableApi(engine=engine, hub=hub, webhook_base=webhook_base)
        self.client_json = client_binding_json(
            webhook_base=webhook_base, rpc_base=f"http://127.0.0.1:{rpc_port}{RPC_PREFIX}/",
            hub=hub)

    async def dispatch_main(self, request: web.Request) -> web.StreamResponse:
        """Route a request on the main port."""
        path = request.path
        if path == "/admin/host/status":
            if request.method not in ("GET", "HEAD"):
                return method_not_allowed(("GET", "HEAD"))
            return web.json_response({"state": "Running", "functions": len(
                self.registry.functions)})
        if path == "/admin/dfhost/engine":
            if request.method not in ("GET", "HEAD"):
                return method_not_allowed(("GET", "HEAD"))
            return web.json_response(await self.engine.describe())
        if path == "/admin/dfhost/clock/advance":
            return await self._advance_clock(request)
        if path == WEBHOOK_PREFIX or path.startswith(WEBHOOK_PREFIX + "/"):
            return await self.durable.handle(request, path[len(WEBHOOK_PREFIX):])
        prefix = "/" + self.route_prefix if self.route_prefix else ""
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return route_not_found()
        return await self._run_http_function(request, path[len(prefix):])

    async def dispatch_rpc(self, request: web.Request) -> web.StreamResponse:
        """Route a request on the RPC port."""
        path = request.path
        if path == RPC_PREFIX or path.startswith(RPC_PREFIX + "/"):
            return await self.durable.handle(request, path[len(RPC_PREFIX):])
        return route_not_found()

    async def _advance_clock(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return method_not_allowed(("POST",))
        try:
            seconds = float(request.query.get("seconds", ""))
        except ValueError:
            return web.json_response({"error": "seconds must be a number"}, status=400)
        if seconds < 0:
            return web.json_response({"error": "seconds must not be negative"}, status=400)
        try:
            await self.engine.advance_clock(seconds)
        except (RuntimeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"advanced": seconds})

    async def _run_http_function(self, request: web.Request, rel_path: str) -> web.Response:
        allowed: set[str] = set()
        for route in self.routes:
            params = route.template.match(rel_path)
            if params is None:
                continue
            if route.accepts(request.method):
                return await self._invoke(route.spec, request, params)
            allowed |= route.allowed
        return method_not_allowed(allowed) if allowed else route_not_found()

    async def _invoke(self, spec: FunctionSpec, request: web.Request,
                      params: dict[str, str]) -> web.Response:
        body = await request.read()
        req = _to_func_request(request, body, params)
        kwargs = self.registry.build_kwargs(spec, req, self.client_json)
        try:
            result = await self.registry.call(spec, kwargs)
        except Exception as exc:  # noqa: BLE001 - a user error must become a 500, not a crash
            logger.error("Function %s failed:\n%s", spec.name,
                         redact("".join(traceback.format_exception(exc)), limit=None))
            return problem_response(500, "function-failed", f"The function {spec.name} failed; "
                                                            "the host log has the details.")
        try:
            return _to_web_response(result)
        except Exception as exc:  # noqa: BLE001 - a bad return value is also the function's fault
            logger.error("Function %s returned an unusable response: %s", spec.name,
                         redact(repr(exc)))
            return problem_response(500, "invalid-function-response",
                                    f"The function {spec.name} returned an unusable response.")


def _is_durable_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in (WEBHOOK_PREFIX, RPC_PREFIX))


@web.middleware
async def _host_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn what escapes a handler into a short error: one bad request must not stop the host."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp raises these while reading the body (413 past client_max_size).
        code = "payload-too-large" if exc.status == 413 else "request-rejected"
        return problem_response(exc.status, code, HTTPStatus(exc.status).description + ".")
    except (HttpProcessingError, web.RequestPayloadError) as exc:
        # The body broke the framing (a bad chunk) after the handler started reading it.
        logger.info("Rejected a malformed request body (%s)", type(exc).__name__)
        return problem_response(400, "malformed-request", "The request body is not valid "
                                                          "HTTP/1.1 framing.")
    except Exception as exc:  # noqa: BLE001 - a host bug answers 500 and keeps serving
        logger.error("Request %s failed: %s", request.method, _exception_summary(exc))
        if _is_durable_path(request.path):
            # The durable API keeps the extension's error shape.
            return web.json_response({"Message": FAILURE_MESSAGE,
                                      "ExceptionType": type(exc).__name__}, status=500)
        return problem_response(500, "internal-error", "The host failed to process the request; "
                                                       "the host log has the details.")
    return response


class _ProblemRequestHandler(RequestHandler):
    """A connection whose own error answers (parser errors, timeouts) are problem+json."""

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Answer an error raised before or around the handler, without aiohttp's ``message``.

        aiohttp's text for parser errors quotes the rejected bytes (the request line, a header
        name or value), so it is never used, and only the exception type is logged.
        """
        del message
        if isinstance(exc, HttpProcessingError):
            self.logger.info("Rejected a malformed request from %s (%s)", request.remote,
                             type(exc).__name__)
        elif exc is not None:
            self.logger.error("Request failed: %s", _exception_summary(exc))
        if request.writer.output_size > 0:
            raise ConnectionError("The response has started; no error response can follow")
        if isinstance(exc, LineTooLong):
            response = problem_response(431, "request-header-too-large",
                                        "A header field or the request line is longer than the "
                                        "host accepts.")
        elif isinstance(exc, HttpProcessingError):
            response = problem_response(400, "malformed-request", "The request is not valid "
                                                                  "HTTP/1.1.")
        elif status == 504:
            response = problem_response(504, "timeout", "The request took too long.")
        else:
            response = problem_response(500, "internal-error", "The host failed to process the "
                                        "request; the host log has the details.")
        response.force_close()
        return response


class _ProblemServer(web.Server):
    """Creates :class:`_ProblemRequestHandler` connections (``web.Server`` hard-codes its class)."""

    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


with warnings.catch_warnings():
    # aiohttp discourages subclassing Application; this subclass changes nothing but the class
    # of the server the runner builds, the only place the connection class can be chosen.
    warnings.simplefilter("ignore", DeprecationWarning)

    class _HostApplication(web.Application):
        def _make_handler(self, **kwargs: Any) -> web.Server:
            server = super()._make_handler(**kwargs)
            return _ProblemServer(server.request_handler, request_factory=server.request_factory,
                                  handler_cancellation=server.handler_cancellation,
                                  loop=server._loop, **server._kwargs)


def _app(handler: Any) -> web.Application:
    app = _HostApplication(client_max_size=64 * 1024 * 1024, middlewares=[_host_errors])
    # ``(?s)``: a decoded path may hold a newline, which must still reach our routing (and its 404).
    app.router.add_route("*", "/{tail:(?s:.*)}", handler)
    return app


def build_main_app(host: HostHttp) -> web.Application:
    """The application on the main port."""
    return _app(host.dispatch_main)


def build_rpc_app(host: HostHttp) -> web.Application:
    """The application on the internal RPC port."""
    return _app(host.dispatch_rpc)
