"""Entra token issuer endpoints: discovery, JWKS and client-credentials tokens for Graph."""

from __future__ import annotations

import base64
import hmac
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
from aiohttp import web
from cryptography import x509

if TYPE_CHECKING:
    from localdev.graphsim.server import Simulator

__all__ = ["add_sts_routes"]

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def entra_error(base_url: str, status: int, error: str, code: int, message: str) -> web.Response:
    """An Entra (AADSTS) error response in the shape MSAL parses."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": (f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {corr} "
                              f"Timestamp: {stamp}"),
        "error_codes": [code], "timestamp": stamp, "trace_id": trace, "correlation_id": corr,
        "error_uri": f"{base_url}/error?code={code}",
    }
    return web.json_response(body, status=status)


def openid_configuration(base_url: str, tenant: str) -> dict[str, Any]:
    """The v2.0 discovery document of a tenant; every URL is on the simulator's https base."""
    root = f"{base_url}/{tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                  "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "localhost",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


def add_sts_routes(app: web.Application, sim: Simulator) -> None:
    """Register the STS routes on ``app``."""

    async def discovery(request: web.Request) -> web.Response:
        return web.json_response(openid_configuration(sim.base_url, request.match_info["tenant"]))

    async def keys(_request: web.Request) -> web.Response:
        return web.json_response(sim.key.jwks())

    async def instance(_request: web.Request) -> web.Response:
        host = sim.base_url.removeprefix("https://")
        return web.json_response({
            "tenant_discovery_endpoint": f"{sim.base_url}/common/v2.0/.well-known/"
                                         "openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    async def token(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        tenant_id = request.match_info["tenant"]
        client_id = str(form.get("client_id") or "")
        secret = form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            decoded = base64.b64decode(auth[6:]).decode(errors="replace")
            client_id, _, basic_secret = decoded.partition(":")
            secret = secret or basic_secret
        fault = sim.faults.match(method="POST", path=request.path, tenant=tenant_id,
                                 app=client_id or None)
        if fault is not None and fault.message is not None and fault.kind[:3].isdigit():
            # A planted description: tests prove that nothing Entra says reaches our errors or logs.
            status = int(fault.kind[:3])
            return entra_error(sim.base_url, status, "invalid_client" if status < 500 else
                               "temporarily_unavailable", 7000215 if status < 500 else 50196, fault.message)
        if fault is not None:
            early = await sim.sts_fault(request, fault)
            if early is not None:
                return early
        base = sim.base_url
        tenant = sim.state.tenants.get(tenant_id)
        if tenant is None:
            return entra_error(base, 400, "invalid_request", 90002,
                               f"Tenant '{tenant_id}' not found. Check to make sure you have the "
                               "correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return entra_error(base, 400, "unsupported_grant_type", 70003,
                               "The app requested an unsupported grant type.")
        app_reg = tenant.apps.get(client_id)
        if app_reg is None:
            return entra_error(base, 400, "unauthorized_client", 700016,
                               f"Application with identifier '{client_id}' was not found in the "
                               f"directory '{tenant.display_name}'.")
        if secret is not None:
            if not app_reg.secret or not hmac.compare_digest(str(secret), app_reg.secret):
                return entra_error(base, 401, "invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being sent "
                                   "in the request is the client secret value, not the client "
                                   f"secret ID, for a secret added to app '{client_id}'.")
        elif form.get("client_assertion_type") == JWT_BEARER and form.get("client_assertion"):
            problem = verify_assertion(str(form["client_assertion"]), app_reg.certificate_pem,
                                       client_id, f"{base}/{tenant_id}")
            if problem:
                return entra_error(base, 401, "invalid_client", 700027, problem)
        else:
            return entra_error(base, 401, "invalid_client", 7000218,
                               "The request body must contain the following parameter: "
                               "'client_assertion' or 'client_secret'.")
        if str(form.get("scope", "")).strip() != GRAPH_DEFAULT_SCOPE:
            return entra_error(base, 400, "invalid_scope", 1002012,
                               f"The provided value for scope {form.get('scope')!s} is not valid. "
                               "Client credential flows must have a scope value with /.default "
                               "suffixed to the resource identifier (application ID URI).")
        if not app_reg.consented:
            return entra_error(base, 400, "invalid_grant", 65001,
                               "The user or administrator has not consented to use the "
                               f"application with ID '{client_id}'. Send an interactive "
                               "authorization request for this user and resource.")
        access_token = sim.key.graph_app_token(tenant_id=tenant_id, client_id=client_id,
                                               roles=list(app_reg.roles))
        return web.json_response({"token_type": "Bearer", "expires_in": 3599,
                                  "ext_expires_in": 3599, "access_token": access_token})

    app.router.add_get("/common/discovery/instance", instance)
    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", discovery)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys)
    app.router.add_get("/{tenant}/discovery/keys", keys)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)


def verify_assertion(assertion: str, certificate_pem: str | None, client_id: str,
                     authority: str) -> str | None:
    """Check a certificate client assertion; returns the Entra message when it is invalid."""
    if not certificate_pem:
        return "Client assertion failed signature validation: no certificate is registered."
    try:
        cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        claims = jwt.decode(assertion, cert.public_key(),  # type: ignore[arg-type]
                            algorithms=["RS256", "PS256"], options={"verify_aud": False})
    except (ValueError, jwt.PyJWTError) as exc:
        return f"Client assertion failed signature validation. ({type(exc).__name__})"
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a.startswith(authority) for a in audiences):
        return "Client assertion audience claim does not match Realm issuer."
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return "Client assertion contains an invalid issuer or subject."
    return None
