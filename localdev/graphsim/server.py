"""The aiohttp application: Graph pipeline (auth, faults, throttling, roles), STS and control API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from localdev.graphsim.catalog import CollectionSpec
from localdev.graphsim.faults import FaultRule, Faults
from localdev.graphsim.graph import GraphRequest, GraphResponse, GraphRouter, Resolved, resolve
from localdev.graphsim.odata import JSON_CONTENT_TYPE, GraphError, error_body
from localdev.graphsim.state import SimState
from localdev.graphsim.throttle import Throttle
from localdev.graphsim.tokens import SigningKey, TokenError

__all__ = ["Outcome", "Simulator"]

logger = logging.getLogger(__name__)

VERSIONS = ("v1.0", "beta")
DIAGNOSTIC = ('{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"5","ScaleUnit":"000",'
              '"RoleInstance":"GRAPHSIM"}}')
DEFAULT_SLOW_SECONDS = 5.0
_UNSET: Any = object()
PERSIST_TASK = web.AppKey("persist_task", asyncio.Task[None])


@dataclass
class Outcome:
    """A processed Graph call: the response plus a transport fault to apply, if any."""

    response: GraphResponse
    transport_fault: FaultRule | None = None


class Simulator:
    """Everything one running simulator holds; ``app()`` builds its aiohttp application."""

    def __init__(self, base_url: str, state: SimState | None = None,
                 key: SigningKey | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.state = state or SimState()
        self.key = key or SigningKey.generate()
        self.router = GraphRouter(self.state)
        self.throttle = Throttle()
        self.faults = Faults()
        self.log: deque[dict[str, Any]] = deque(maxlen=200_000)
        self._claims: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        """Empty state, no faults, no throttling, an empty request log."""
        self.state.reset()
        self.faults.clear()
        self.throttle.configure(enabled=False)
        self.log.clear()
        self._claims.clear()

    # ------------------------------------------------------------------ authentication
    def authenticate(self, header: str | None) -> dict[str, Any]:
        """Claims of a valid Graph bearer token.

        Raises:
            GraphError: 401 ``InvalidAuthenticationToken`` for a missing, bad or expired token,
                or one for a tenant the simulator does not know.
        """
        if not header or not header.lower().startswith("bearer "):
            raise self.unauthorized("Access token is empty.")
        token = header[7:].strip()
        claims = self._claims.get(token)
        if claims is None:
            try:
                claims = self.key.verify_graph_token(token)
            except TokenError as exc:
                raise self.unauthorized("Access token has expired or is not yet valid." if
                                        exc.expired else f"Access token validation failure. "
                                        f"{exc}") from exc
            if len(self._claims) > 10_000:
                self._claims.clear()
            self._claims[token] = claims
        elif claims["exp"] <= time.time():
            raise self.unauthorized("Access token has expired or is not yet valid.")
        if claims.get("tid") not in self.state.tenants:
            raise self.unauthorized("Access token validation failure. Invalid tenant.")
        return claims

    @staticmethod
    def unauthorized(message: str) -> GraphError:
        """Graph's 401 with its ``WWW-Authenticate`` challenge."""
        return GraphError(401, "InvalidAuthenticationToken", message, headers={
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline'
                                '.com/common/oauth2/authorize", client_id="00000003-0000-0000-'
                                'c000-000000000000"'})

    @staticmethod
    def forbidden(spec: CollectionSpec, request_id: str) -> GraphError:
        """Graph's 403 for a missing application permission (Intune or Entra wording)."""
        if spec.name == "groups":
            return GraphError(403, "Authorization_RequestDenied",
                              "Insufficient privileges to complete the operation.")
        if not spec.intune:
            # Conditional Access and authentication strength routes answer in Entra's words.
            return GraphError(403, "AccessDenied", "You cannot perform the requested operation, "
                              "required scopes are missing in the token.")
        return GraphError(403, "Forbidden", "Application is not authorized to perform this "
                          "operation - Operation ID (for customer support): 00000000-0000-0000-"
                          f"0000-000000000000 - Activity ID: {request_id} - Url: "
                          f"https://fef.msub03.manage.microsoft.com/{spec.path}")

    # ------------------------------------------------------------------ the Graph pipeline
    async def process(self, *, method: str, version: str, path: str, query: Mapping[str, str],
                      raw_query: str, raw_body: bytes | None, auth: str | None, request_id: str,
                      body: Any = _UNSET, in_batch: bool = False) -> Outcome:
        """Authenticate, fault, throttle, authorize and route one Graph call (also batch items)."""
        entry: dict[str, Any] = {
            "method": method, "path": f"/{version}/{path.lstrip('/')}", "query": raw_query,
            "tenant": None, "app": None, "status": 0, "time": time.time(), "bucket": None,
            "throttled": False, "batch": in_batch, "requestId": request_id}
        transport: FaultRule | None = None
        try:
            if version not in VERSIONS:
                raise GraphError(400, "BadRequest", f"Invalid version: {version}")
            claims = self.authenticate(auth)
            tenant_id, app_id = claims["tid"], claims.get("appid") or claims.get("azp")
            entry.update(tenant=tenant_id, app=app_id)
            resolved = resolve(method, version, path)
            entry["bucket"] = resolved.spec.family
            fault = self.faults.match(method=method, path=entry["path"], tenant=tenant_id,
                                      app=app_id, in_batch=in_batch)
            short_page = False
            if fault is not None:
                if fault.kind == "slow":
                    await asyncio.sleep(fault.delay_seconds if fault.delay_seconds is not None
                                        else DEFAULT_SLOW_SECONDS)
                elif fault.kind == "short-page":
                    short_page = True
                elif fault.kind in ("reset", "truncated"):
                    transport = fault
                else:
                    raise self.fault_error(fault, resolved, request_id)
            decision = self.throttle.check(family=resolved.spec.family, tenant=tenant_id,
                                           app=app_id or "", write=resolved.write)
            if decision.retry_after is not None:
                entry["throttled"] = True
                headers = {"x-ms-throttle-scope": decision.scope,
                           "x-ms-throttle-information": decision.information}
                retry = self.throttle.retry_after_header(decision.retry_after)
                if retry is not None:
                    headers["Retry-After"] = retry
                raise GraphError(429, "TooManyRequests", "Please retry again later.",
                                 headers=headers)
            roles = set(claims.get("roles") or [])
            allowed = resolved.spec.roles.write if resolved.write else resolved.spec.roles.read
            if not roles & allowed:
                raise self.forbidden(resolved.spec, request_id)
            if body is _UNSET:
                body = None
                if raw_body and raw_body.strip():
                    try:
                        body = json.loads(raw_body)
                    except ValueError as exc:
                        raise GraphError(400, "BadRequest", "Unable to read JSON request payload."
                                         " Please ensure Content-Type header is set and payload "
                                         "is of valid JSON format.") from exc
            tenant = self.state.tenants[tenant_id]
            response = self.router.dispatch(GraphRequest(
                method=method, version=version, path=path, query=query, body=body, tenant=tenant,
                base_url=self.base_url), resolved)
            if short_page:
                response = self.shorten(response)
        except GraphError as err:
            response = GraphResponse(err.status, error_body(
                err, request_id=request_id, client_request_id=request_id,
                path=entry["path"]), dict(err.headers))
        except Exception:
            logger.exception("graph simulator handler failed path=%s", entry["path"])
            crash = GraphError(500, "InternalServerError", "An internal server error has "
                               "occurred.", nested=True)
            response = GraphResponse(500, error_body(crash, request_id=request_id,
                                                     client_request_id=request_id,
                                                     path=entry["path"]))
        entry["status"] = response.status
        self.log.append(entry)
        return Outcome(response, transport)

    def fault_error(self, fault: FaultRule, resolved: Resolved, request_id: str) -> GraphError:
        """The Graph error an injected status fault produces.

        Each kind answers in Graph's own shape for the route; ``fault.message``, when set, replaces only the
        free text (tests plant credentials there to prove nothing Graph says is kept).
        """
        kind = fault.kind
        spec = resolved.spec
        headers: dict[str, str] = {}
        if kind in ("429", "503"):
            value = fault.retry_after if fault.retry_after is not None else 1
            # Numbers are sent as given ("10", "2.128"); strings (an HTTP date) verbatim.
            headers["Retry-After"] = (value if isinstance(value, str)
                                      else f"{float(value):g}")
        def message(default: str) -> str:
            return fault.message if fault.message is not None else default

        if kind == "400":
            return GraphError(400, "BadRequest", message("The request is invalid."), nested=True)
        if kind in ("429", "429-no-retry-after"):
            return GraphError(429, "TooManyRequests", message("Please retry again later."), headers=headers)
        if kind in ("503", "503-no-retry-after"):
            return GraphError(503, "serviceNotAvailable", message("The service is temporarily "
                              "unavailable. Retry the request after a delay."), nested=True,
                              headers=headers)
        if kind == "500":
            return GraphError(500, "InternalServerError", message("An internal server error has "
                              "occurred."), nested=True)
        if kind == "502":
            return GraphError(502, "BadGateway", message("The gateway received an invalid response."))
        if kind == "504":
            return GraphError(504, "GatewayTimeout", message("The gateway did not receive a response in "
                              "time."))
        if kind == "401-expired":
            return self.unauthorized(message("Access token has expired or is not yet valid."))
        if kind == "404":
            error = GraphRouter.not_found(spec, resolved.rest[0] if resolved.rest else "")
        elif kind == "409":
            # Entra answers flat; Intune wraps its record in the message like its other 4xx.
            error = GraphError(409, "Conflict", "The request conflicts with the current state of the "
                               "resource.", nested=spec.name != "groups")
        else:
            error = self.forbidden(spec, request_id)
        error.message = message(error.message)
        return error

    @staticmethod
    def shorten(response: GraphResponse) -> GraphResponse:
        """A page with fewer items than promised and no nextLink (a premature end)."""
        body = response.body
        if response.status != 200 or not isinstance(body, dict) or "value" not in body:
            return response
        value = body["value"]
        trimmed = dict(body, value=value[: max(len(value) // 2, len(value) - 1, 0)]
                       if len(value) > 1 else [])
        trimmed.pop("@odata.nextLink", None)
        return GraphResponse(response.status, trimmed, response.headers)

    # ------------------------------------------------------------------ HTTP glue
    @staticmethod
    def headers_for(response: GraphResponse, request_id: str,
                    client_request_id: str) -> dict[str, str]:
        """Graph's response headers."""
        headers = {"request-id": request_id, "client-request-id": client_request_id,
                   "x-ms-ags-diagnostic": DIAGNOSTIC, "Cache-Control": "no-cache"}
        if response.body is not None:
            headers["Content-Type"] = JSON_CONTENT_TYPE
            headers["OData-Version"] = "4.0"
        headers.update(response.headers)
        return headers

    @staticmethod
    def encode(response: GraphResponse, client_request_id: str) -> bytes:
        """The JSON body bytes (``client-request-id`` echoed inside error bodies)."""
        if response.body is None:
            return b""
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            inner = body["error"].get("innerError")
            if isinstance(inner, dict):
                inner["client-request-id"] = client_request_id
        return json.dumps(body, separators=(",", ":")).encode()

    async def graph_handler(self, request: web.Request) -> web.StreamResponse:
        """Entry point of every ``/{version}/...`` Graph request."""
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or request_id
        version = request.match_info["version"]
        path = request.match_info["tail"]
        raw = await request.read()
        if path == "$batch" and request.method == "POST":
            from localdev.graphsim.batch import run_batch  # local: batch imports this module

            outcome = Outcome(await run_batch(self, version, raw, request.headers, request_id))
        else:
            outcome = await self.process(
                method=request.method, version=version, path=path, query=request.query,
                raw_query=request.query_string, raw_body=raw,
                auth=request.headers.get("Authorization"), request_id=request_id)
        response = outcome.response
        payload = self.encode(response, client_request_id)
        headers = self.headers_for(response, request_id, client_request_id)
        if outcome.transport_fault is not None:
            return await self.break_connection(request, response.status, headers, payload,
                                               outcome.transport_fault)
        return web.Response(status=response.status, body=payload or None, headers=headers)

    @staticmethod
    async def break_connection(request: web.Request, status: int, headers: dict[str, str],
                               payload: bytes, fault: FaultRule) -> web.StreamResponse:
        """Send part of a response, then drop the connection (reset) or close it (truncated)."""
        payload = payload or b'{"value":[]}'
        resp = web.StreamResponse(status=status, headers=headers)
        if fault.kind == "truncated" and fault.chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: max(len(payload) // 2, 1)])
        transport = request.transport
        if transport is not None:
            if fault.kind == "reset":
                transport.abort()
            else:
                transport.close()
        return resp

    async def sts_fault(self, request: web.Request, fault: FaultRule) -> web.StreamResponse | None:
        """Apply a fault to a token request (MSAL only parses integer Retry-After)."""
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay_seconds if fault.delay_seconds is not None
                                else DEFAULT_SLOW_SECONDS)
            return None
        if fault.kind in ("reset", "truncated"):
            body = json.dumps({"token_type": "Bearer", "access_token": "x" * 64}).encode()
            return await self.break_connection(request, 200, {"Content-Type": "application/json"},
                                               body, fault)
        status = {"429": 429, "429-no-retry-after": 429, "500": 500, "502": 502, "503": 503,
                  "503-no-retry-after": 503,
                  "504": 504, "401-expired": 401, "403": 403, "404": 404,
                  "409": 409}.get(fault.kind, 503)
        headers = {}
        if fault.kind in ("429", "503"):
            headers["Retry-After"] = str(int(float(fault.retry_after or 1)))
        error: dict[str, Any] = {
                "error": "temporarily_unavailable" if status >= 429 else "invalid_client",
                "error_description": f"AADSTS50196: The server is unable to serve the request "
                                     f"now (injected {fault.kind}).", "error_codes": [50196]}
        return web.json_response(error, status=status, headers=headers)

    async def not_found(self, _request: web.Request) -> web.Response:
        """Anything outside the STS, Graph and control routes."""
        err = GraphError(404, "UnknownError", "")
        rid = str(uuid.uuid4())
        return web.json_response(error_body(err, request_id=rid, client_request_id=rid),
                                 status=404)

    async def persist_loop(self) -> None:
        """Write the state file shortly after changes (cheap: at most twice a second)."""
        while True:
            await asyncio.sleep(0.5)
            if self.state.dirty and self.state.state_file is not None:
                self.state.save()

    def app(self) -> web.Application:
        """The aiohttp application (control API, STS, Graph)."""
        from localdev.graphsim.control_api import add_control_routes
        from localdev.graphsim.sts import add_sts_routes

        app = web.Application(client_max_size=64 * 1024 * 1024)
        add_control_routes(app, self)
        add_sts_routes(app, self)
        app.router.add_route("*", "/{version}/{tail:.*}", self.graph_handler)
        app.router.add_route("*", "/{tail:.*}", self.not_found)

        async def start_persist(_: web.Application) -> None:
            app[PERSIST_TASK] = asyncio.create_task(self.persist_loop())

        async def stop_persist(_: web.Application) -> None:
            task = app.get(PERSIST_TASK)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.state.dirty:
                self.state.save()

        app.on_startup.append(start_persist)
        app.on_cleanup.append(stop_persist)
        return app
