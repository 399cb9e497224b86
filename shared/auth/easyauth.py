"""App Service Authentication ("Easy Auth"): the ``X-MS-CLIENT-PRINCIPAL`` header.

App Service strips these headers from incoming requests and sets them itself, so they are trustworthy
only when Authentication is on (``WEBSITE_AUTH_ENABLED``); anywhere else anyone could forge them, so we
fail closed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from shared.auth.claims import principal_from_claims
from shared.config import Settings
from shared.domain import Principal
from shared.errors import Unauthenticated

__all__ = ["CLIENT_PRINCIPAL_HEADER", "principal_from_easyauth"]

CLIENT_PRINCIPAL_HEADER = "x-ms-client-principal"
_CLAIMS_NS = "http://schemas.microsoft.com/identity/claims/"
_WS_CLAIMS_NS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
# Default claim mapping turns some short claim names into URIs; map them back.
_LONG_TO_SHORT = {
    _CLAIMS_NS + "objectidentifier": "oid",
    _CLAIMS_NS + "tenantid": "tid",
    _CLAIMS_NS + "scope": "scp",
    _WS_CLAIMS_NS + "role": "roles",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "upn",
}
_MULTI_VALUED = {"roles"}


def _decode(header: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(header + "=" * (-len(header) % 4), validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Unauthenticated("the client principal header is malformed") from exc
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise Unauthenticated("the client principal header is malformed")
    return data


def principal_from_easyauth(headers: Mapping[str, str], settings: Settings) -> Principal:
    """Read the caller from Easy Auth's ``X-MS-CLIENT-PRINCIPAL`` header.

    Args:
        headers: request headers (any case).
        settings: ``website_auth_enabled``, ``audiences`` and ``issuer_tenants`` are used.

    Returns:
        The caller.

    Raises:
        Unauthenticated: Easy Auth is off, the header is absent or malformed, or the claims do not fit
            our audience or tenant allow-list.
    """
    if not settings.website_auth_enabled:
        raise Unauthenticated("App Service Authentication is not enabled")
    lowered = {k.lower(): v for k, v in headers.items()}
    header = lowered.get(CLIENT_PRINCIPAL_HEADER)
    if not header:
        raise Unauthenticated("no authenticated principal")
    data = _decode(header)
    role_typ = str(data.get("role_typ") or "")
    claims: dict[str, Any] = {}
    for claim in data["claims"]:
        if not isinstance(claim, dict) or "typ" not in claim or "val" not in claim:
            raise Unauthenticated("the client principal header is malformed")
        typ = str(claim["typ"])
        name = "roles" if typ == role_typ and role_typ else _LONG_TO_SHORT.get(typ, typ)
        if name in _MULTI_VALUED:
            claims.setdefault(name, []).append(str(claim["val"]))
        else:
            claims.setdefault(name, str(claim["val"]))
    aud = claims.get("aud")
    if aud is not None and aud not in settings.audiences:
        raise Unauthenticated("the token was issued for another audience")
    allowed = settings.issuer_tenants
    if allowed and str(claims.get("tid", "")).lower() not in {t.lower() for t in allowed}:
        raise Unauthenticated("callers from this tenant are not accepted")
    return principal_from_claims(claims)
