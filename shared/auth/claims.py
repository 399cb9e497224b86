"""Turning token claims into a :class:`Principal` (shared by Easy Auth and in-app JWT validation)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.domain import Principal
from shared.errors import Unauthenticated

__all__ = ["GUID", "principal_from_claims"]

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _roles(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v) for v in value]
    return []


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    """Build the caller from validated claims (short names: ``tid``, ``oid``, ``roles``, ...).

    Authorization uses only the immutable ``tid`` and ``oid``; ``name`` is for display. App-only tokens
    (daemons, managed identities, Logic Apps) are recognised by ``idtyp == "app"`` (an optional claim the
    API's app registration must request) and the absence of ``scp``, which every delegated (user) token
    carries; anything else counts as a user, so app-only privileges such as ``Platform.Admin`` fail closed.

    Raises:
        Unauthenticated: ``tid`` or ``oid`` is missing or not a GUID.
    """
    tid, oid = str(claims.get("tid", "")), str(claims.get("oid", ""))
    if not GUID.fullmatch(tid) or not GUID.fullmatch(oid):
        raise Unauthenticated("the token does not identify a tenant and an object")
    is_app = claims.get("idtyp") == "app" and not claims.get("scp")
    app_id = claims.get("azp") or claims.get("appid")
    name = claims.get("name") or claims.get("preferred_username") or (app_id if is_app else "")
    return Principal(
        tenant_id=tid.lower(), object_id=oid.lower(), name=str(name or ""),
        roles=frozenset(_roles(claims.get("roles"))), is_app=is_app,
        app_id=str(app_id) if app_id else None,
    )
