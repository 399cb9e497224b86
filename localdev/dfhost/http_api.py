"""The host's HTTP front: HTTP-triggered functions, admin endpoints and the durable webhooks.

Two aiohttp applications are built here: the main one (``/api/...``, ``/admin/...`` and
``/runtime/webhooks/durabletask/...``) and the internal RPC listener (``/durabletask/...``) that
the Python durable client calls through ``rpcBaseUrl``.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import azure.functions as func
from aiohttp import web

from localdev.dfhost.engine import Engine
from localdev.dfhost.http_durable import DurableApi, client_binding_json
from localdev.dfhost.http_routes import RouteTemplate
from localdev.dfhost.registry import HTTP, FunctionSpec, Registry
from shared.redaction import redact

__all__ = ["HttpRoute", "build_main_app", "build_rpc_app", "compile_routes"]

logger = logging.getLogger(__name__)

WEBHOOK_PREFIX = "/runtime/webhooks/durabletask"
RPC_PREFIX = "/durabletask"


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

    def accepts(self, method: str) -> bool:
        """Whether the function accepts the HTTP method."""
        return self.methods is None or method.upper() in self.methods


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
    """Shared state of the two HTTP applications."""

    def __init__(self, *, registry: Registry, engine: Engine, hub: str, route_prefix: str,
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
            return web.json_response({"state": "Running", "functions": len(
                self.registry.functions)})
        if path == "/admin/dfhost/clock/advance":
            return await self._advance_clock(request)
        if path == WEBHOOK_PREFIX or path.startswith(WEBHOOK_PREFIX + "/"):
            return await self.durable.handle(request, path[len(WEBHOOK_PREFIX):])
        prefix = "/" + self.route_prefix if self.route_prefix else ""
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return web.Response(status=404, text="Not found")
        return await self._run_http_function(request, path[len(prefix):])

    async def dispatch_rpc(self, request: web.Request) -> web.StreamResponse:
        """Route a request on the RPC port."""
        path = request.path
        if path == RPC_PREFIX or path.startswith(RPC_PREFIX + "/"):
            return await self.durable.handle(request, path[len(RPC_PREFIX):])
        return web.Response(status=404, text="Not found")

    async def _advance_clock(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
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
        path_matched = False
        for route in self.routes:
            params = route.template.match(rel_path)
            if params is None:
                continue
            path_matched = True
            if route.accepts(request.method):
                return await self._invoke(route.spec, request, params)
        # The host answers an unmatched method like an unknown route.
        return web.Response(status=404, text="Not found" if not path_matched
                            else f"Method {request.method} not allowed on this route")

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
            return web.Response(status=500, text=f"Function {spec.name} failed: "
                                                 f"{type(exc).__name__}")
        try:
            return _to_web_response(result)
        except Exception as exc:  # noqa: BLE001 - a bad return value is also the function's fault
            logger.error("Function %s returned an unusable response: %s", spec.name,
                         redact(repr(exc)))
            return web.Response(status=500, text=f"Function {spec.name} returned an "
                                                 "unusable response")


@web.middleware
async def _never_crash(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn an unexpected host error into a 500 with a short body; the traceback goes to the log."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad request must not take the host down
        logger.error("Request %s %s failed:\n%s", request.method, request.path,
                     redact("".join(traceback.format_exception(exc)), limit=None))
        return web.json_response({"Message": "Something went wrong while processing your "
                                             "request", "ExceptionMessage": redact(str(exc))},
                                 status=500)
    return response


def _app(handler: Any) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[_never_crash])
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def build_main_app(host: HostHttp) -> web.Application:
    """The application on the main port."""
    return _app(host.dispatch_main)


def build_rpc_app(host: HostHttp) -> web.Application:
    """The application on the internal RPC port."""
    return _app(host.dispatch_rpc)
