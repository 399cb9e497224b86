"""The ``/_sim`` control API: tenants, app registrations, caller tokens, faults, throttling, logs."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from localdev.graphsim.catalog import COLLECTIONS, TYPE_KEYS
from localdev.graphsim.graph import clone
from localdev.graphsim.odata import new_id, now_iso
from localdev.graphsim.seed import build_tenant
from localdev.graphsim.state import AppRegistration

if TYPE_CHECKING:
    from localdev.graphsim.server import Simulator

__all__ = ["add_control_routes"]


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)


async def _json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text='{"error":{"message":"malformed JSON"}}',
                                 content_type="application/json") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error":{"message":"expected a JSON object"}}',
                                 content_type="application/json")
    return data


def add_control_routes(app: web.Application, sim: Simulator) -> None:
    """Register every ``/_sim`` route on ``app``."""

    @web.middleware
    async def loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_sim/") and request.remote not in ("127.0.0.1", "::1"):
            return _bad("The control API is only served on loopback.", 403)
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(loopback_only)
    routes = web.RouteTableDef()

    @routes.get("/_sim/health")
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.post("/_sim/reset")
    async def reset(_: web.Request) -> web.Response:
        sim.reset()
        return web.json_response({"status": "ok"})

    @routes.get("/_sim/tenants")
    async def list_tenants(_: web.Request) -> web.Response:
        return web.json_response({"value": [
            {"tenantId": t.id, "displayName": t.display_name, "counts": t.counts()}
            for t in sim.state.tenants.values()]})

    @routes.post("/_sim/tenants")
    async def create_tenant(request: web.Request) -> web.Response:
        body = await _json(request)
        preset = body.get("preset", "demo")
        if preset not in ("demo", "generated", "empty"):
            return _bad("preset must be demo, generated or empty")
        tenant_id = str(body.get("tenantId") or uuid.uuid4())
        try:
            tenant_id = str(uuid.UUID(tenant_id))
        except ValueError:
            return _bad("tenantId must be a GUID")
        if tenant_id in sim.state.tenants:
            return _bad(f"tenant {tenant_id} already exists", 409)
        policies = int(body.get("policies") or 0)
        tenant = build_tenant(preset, tenant_id=tenant_id, seed=int(body.get("seed") or 0),
                              display_name=body.get("displayName"), policies=policies)
        sim.state.tenants[tenant.id] = tenant
        sim.state.mark_dirty()
        return web.json_response({"tenantId": tenant.id, "displayName": tenant.display_name,
                                  "counts": tenant.counts()}, status=201)

    @routes.post("/_sim/tenants/{tid}/apps")
    async def create_app(request: web.Request) -> web.Response:
        tenant = sim.state.tenants.get(request.match_info["tid"])
        if tenant is None:
            return _bad("unknown tenant", 404)
        body = await _json(request)
        roles = body.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            return _bad("roles must be a list of permission names")
        client_id = str(body.get("clientId") or uuid.uuid4())
        cert = body.get("certificatePem")
        secret = body.get("secret")
        if secret is None and not cert:
            secret = "sim~" + secrets.token_urlsafe(30)
        tenant.apps[client_id] = AppRegistration(
            client_id=client_id, roles=list(roles), secret=secret, certificate_pem=cert,
            consented=bool(body.get("consented", True)))
        sim.state.mark_dirty()
        answer: dict[str, Any] = {"clientId": client_id}
        if secret is not None:
            answer["secret"] = secret
        return web.json_response(answer, status=201)

    @routes.post("/_sim/tokens")
    async def mint_token(request: web.Request) -> web.Response:
        body = await _json(request)
        tid, audience = body.get("tenantId"), body.get("audience")
        if not tid or not audience:
            return _bad("tenantId and audience are required")
        now = int(time.time())
        expires_in = int(body.get("expiresIn", 3600))
        exp = now + expires_in
        issued = min(now, exp - 60)
        appid = body.get("appid") or str(uuid.uuid4())
        claims: dict[str, Any] = {
            "aud": audience, "iss": body.get("issuer") or f"{sim.base_url}/{tid}/v2.0",
            "iat": issued, "nbf": issued, "exp": exp, "tid": tid,
            "oid": body.get("oid") or str(uuid.uuid4()), "roles": list(body.get("roles") or []),
            "idtyp": body.get("idtyp", "user"), "azp": appid, "ver": "2.0",
        }
        claims["sub"] = claims["oid"]
        if body.get("name"):
            claims["name"] = body["name"]
        if body.get("appid"):
            claims["appid"] = body["appid"]
        return web.json_response({"access_token": sim.key.sign(claims)})

    @routes.put("/_sim/faults")
    async def set_faults(request: web.Request) -> web.Response:
        body = await _json(request)
        rules = body.get("rules", [])
        if not isinstance(rules, list):
            return _bad("rules must be a list")
        try:
            sim.faults.set(rules, body.get("seed"))
        except (ValueError, TypeError) as exc:
            return _bad(str(exc))
        return web.json_response({"rules": [r.describe() for r in sim.faults.rules]})

    @routes.get("/_sim/faults")
    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response({"seed": sim.faults.seed,
                                  "rules": [r.describe() for r in sim.faults.rules]})

    @routes.delete("/_sim/faults")
    async def clear_faults(_: web.Request) -> web.Response:
        sim.faults.clear()
        return web.json_response({"rules": []})

    @routes.put("/_sim/throttling")
    async def set_throttling(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            sim.throttle.configure(enabled=bool(body.get("enabled", False)),
                                   scale=float(body.get("scale", 1.0)),
                                   retry_after=str(body.get("retryAfter", "int")))
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response({"enabled": sim.throttle.enabled, "scale": sim.throttle.scale,
                                  "retryAfter": sim.throttle.retry_after_mode})

    @routes.put("/_sim/settings")
    async def set_settings(request: web.Request) -> web.Response:
        body = await _json(request)
        if "strict" in body:
            sim.state.strict = bool(body["strict"])
        return web.json_response({"strict": sim.state.strict})

    @routes.get("/_sim/requests")
    async def requests_log(request: web.Request) -> web.Response:
        q = request.query
        since = float(q["since"]) if q.get("since") else None
        entries = [e for e in sim.log
                   if (not q.get("tenant") or e["tenant"] == q["tenant"])
                   and (not q.get("app") or e["app"] == q["app"])
                   and (since is None or e["time"] >= since)]
        if q.get("limit"):
            entries = entries[-int(q["limit"]):]
        return web.json_response({"value": entries})

    @routes.get("/_sim/counters")
    async def counters(_: web.Request) -> web.Response:
        per_app: dict[str, dict[str, int]] = {}
        per_tenant: dict[str, dict[str, int]] = {}
        for e in sim.log:
            if not e["tenant"]:
                continue
            kind = "reads" if e["method"] == "GET" else "writes"
            for key, table in ((f"{e['app']}/{e['tenant']}", per_app),
                               (e["tenant"], per_tenant)):
                row = table.setdefault(key, {"reads": 0, "writes": 0, "throttled": 0})
                row[kind] += 1
                row["throttled"] += int(e["throttled"])
        return web.json_response({"appTenant": per_app, "tenant": per_tenant,
                                  "buckets": sim.throttle.counters()})

    @routes.get("/_sim/tenants/{tid}/objects/{type_key}")
    async def objects(request: web.Request) -> web.Response:
        tenant = sim.state.tenants.get(request.match_info["tid"])
        key = request.match_info["type_key"]
        if tenant is None:
            return _bad("unknown tenant", 404)
        if key not in TYPE_KEYS and key not in COLLECTIONS:
            return _bad(f"unknown type key {key!r}", 404)
        items = tenant.objects_of_type(key) if key in TYPE_KEYS else tenant.items(key)
        return web.json_response({"value": [clone(o) for o in items]})

    @routes.post("/_sim/tenants/{tid}/mutations")
    async def mutate(request: web.Request) -> web.Response:
        tenant = sim.state.tenants.get(request.match_info["tid"])
        if tenant is None:
            return _bad("unknown tenant", 404)
        body = await _json(request)
        op, key = body.get("op"), body.get("type")
        if key not in TYPE_KEYS:
            return _bad(f"unknown type key {key!r}")
        type_spec = TYPE_KEYS[key]
        if op == "add":
            obj = dict(body.get("object") or {})
            coll_name = type_spec.collections[0]
            if len(type_spec.collections) > 1 and obj.get("@odata.type"):
                coll_name = obj["@odata.type"].removeprefix("#microsoft.graph.") + "s"
            spec = COLLECTIONS[coll_name]
            stamp = now_iso()
            obj.setdefault("@odata.type", spec.base_type)
            if spec.name == "roleScopeTags":
                obj.setdefault("id", str(tenant.next_scope_tag))
                tenant.next_scope_tag += 1
            obj.setdefault("id", new_id())
            obj.setdefault("createdDateTime", stamp)
            obj.setdefault("lastModifiedDateTime", stamp)
            if spec.version_kind == "int":
                obj.setdefault("version", 1)
            for nav in spec.nav:
                obj.setdefault(nav, [])
            if spec.name == "configurationPolicies":
                obj["settingCount"] = len(obj["settings"])
            tenant.coll(coll_name)[obj["id"]] = obj
            sim.state.mark_dirty()
            return web.json_response(clone(obj), status=201)
        found = next((o for o in tenant.objects_of_type(key) if o["id"] == body.get("id")), None)
        if found is None:
            return _bad("object not found", 404)
        # By identity: a singleton is stored under a fixed key, not under its id.
        coll_name = next(c for c in type_spec.collections
                         if any(o is found for o in tenant.coll(c).values()))
        if op == "delete":
            key = next(k for k, o in tenant.coll(coll_name).items() if o is found)
            del tenant.coll(coll_name)[key]
            sim.state.mark_dirty()
            return web.json_response(clone(found))
        if op == "edit":
            found.update(body.get("patch") or {})
            if "settings" in (body.get("patch") or {}):
                found["settingCount"] = len(found["settings"])
            sim.router.touch(COLLECTIONS[coll_name], found)
            return web.json_response(clone(found))
        return _bad("op must be edit, delete or add")

    app.router.add_routes(routes)
