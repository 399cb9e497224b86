"""A typed client of the simulator's ``/_sim`` control API."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

__all__ = ["SimControl"]


class SimControl:
    """Drive a running simulator: tenants, app registrations, tokens, faults, throttling, logs."""

    def __init__(self, base_url: str, ca_file: Path | str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                  verify=ssl.create_default_context(cafile=str(ca_file)))

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def health(self) -> dict[str, Any]:
        """``GET /_sim/health``."""
        result: dict[str, Any] = self._call("GET", "/_sim/health")
        return result

    def reset(self) -> None:
        """Everything back to empty, faults and throttling off."""
        self._call("POST", "/_sim/reset")

    def create_tenant(self, preset: str = "demo", *, tenant_id: str | None = None,
                      display_name: str | None = None, policies: int | None = None,
                      seed: int | None = None) -> dict[str, Any]:
        """Create a tenant; returns ``{"tenantId", "displayName", "counts"}``."""
        body: dict[str, Any] = {"preset": preset}
        for key, value in (("tenantId", tenant_id), ("displayName", display_name),
                           ("policies", policies), ("seed", seed)):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = self._call("POST", "/_sim/tenants", json=body)
        return result

    def tenants(self) -> list[dict[str, Any]]:
        """Every tenant with its counts."""
        result: list[dict[str, Any]] = self._call("GET", "/_sim/tenants")["value"]
        return result

    def create_app(self, tenant_id: str, *, roles: list[str], client_id: str | None = None,
                   secret: str | None = None, certificate_pem: str | None = None,
                   consented: bool = True) -> dict[str, Any]:
        """Register an app with application permissions; returns ``{"clientId", "secret"?}``."""
        body: dict[str, Any] = {"roles": roles, "consented": consented}
        for key, value in (("clientId", client_id), ("secret", secret),
                           ("certificatePem", certificate_pem)):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = self._call("POST", f"/_sim/tenants/{tenant_id}/apps", json=body)
        return result

    def mint_token(self, tenant_id: str, audience: str, *, oid: str | None = None,
                   name: str | None = None, roles: list[str] | None = None,
                   idtyp: str | None = None, appid: str | None = None,
                   expires_in: int | None = None, issuer: str | None = None) -> str:
        """A caller token signed with the simulator's JWKS key (for our own API)."""
        body: dict[str, Any] = {"tenantId": tenant_id, "audience": audience}
        for key, value in (("oid", oid), ("name", name), ("roles", roles), ("idtyp", idtyp),
                           ("appid", appid), ("expiresIn", expires_in), ("issuer", issuer)):
            if value is not None:
                body[key] = value
        token: str = self._call("POST", "/_sim/tokens", json=body)["access_token"]
        return token

    def set_faults(self, rules: list[dict[str, Any]], *, seed: int | None = None) -> None:
        """Replace the fault rules (see the contract for rule fields)."""
        body: dict[str, Any] = {"rules": rules}
        if seed is not None:
            body["seed"] = seed
        self._call("PUT", "/_sim/faults", json=body)

    def faults(self) -> list[dict[str, Any]]:
        """Active rules with their ``matched`` / ``fired`` counters."""
        result: list[dict[str, Any]] = self._call("GET", "/_sim/faults")["rules"]
        return result

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._call("DELETE", "/_sim/faults")

    def set_throttling(self, enabled: bool, *, scale: float = 1.0,
                       retry_after: str = "int") -> None:
        """Switch throttling; ``retry_after`` is ``int``, ``float``, ``absent`` or ``http-date``."""
        self._call("PUT", "/_sim/throttling",
                   json={"enabled": enabled, "scale": scale, "retryAfter": retry_after})

    def set_strict(self, strict: bool) -> None:
        """Switch strict mode (read-only properties in writes rejected)."""
        self._call("PUT", "/_sim/settings", json={"strict": strict})

    def requests(self, *, tenant: str | None = None, app: str | None = None,
                 since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """The request log (oldest first)."""
        params = {k: str(v) for k, v in (("tenant", tenant), ("app", app), ("since", since),
                                         ("limit", limit)) if v is not None}
        result: list[dict[str, Any]] = self._call("GET", "/_sim/requests",
                                                  params=params)["value"]
        return result

    def counters(self) -> dict[str, Any]:
        """Reads/writes per app+tenant and per tenant, and the throttle buckets."""
        result: dict[str, Any] = self._call("GET", "/_sim/counters")
        return result

    def mutate(self, tenant_id: str, op: str, type_key: str, *, obj_id: str | None = None,
               patch: dict[str, Any] | None = None,
               obj: dict[str, Any] | None = None) -> dict[str, Any]:
        """Change a tenant as an admin would (``edit``, ``delete`` or ``add``)."""
        body: dict[str, Any] = {"op": op, "type": type_key}
        if obj_id is not None:
            body["id"] = obj_id
        if patch is not None:
            body["patch"] = patch
        if obj is not None:
            body["object"] = obj
        result: dict[str, Any] = self._call("POST", f"/_sim/tenants/{tenant_id}/mutations",
                                            json=body)
        return result

    def objects(self, tenant_id: str, type_key: str) -> list[dict[str, Any]]:
        """Full server-side objects of a type (navigation properties included)."""
        result: list[dict[str, Any]] = self._call(
            "GET", f"/_sim/tenants/{tenant_id}/objects/{type_key}")["value"]
        return result
