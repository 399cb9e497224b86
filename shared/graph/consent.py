"""Which catalog types a tenant's consent covers, read from the app-only token before a run starts.

An app-only token lists the application permissions the tenant granted in its ``roles`` claim. Comparing them
with each type's permission tells, before any Graph call, which types a backup (read) or a restore (write)
would fail on with 403, so a run can report them up front instead of failing half-way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.graph.auth import TokenProvider
from shared.graph.catalog import CATALOG, PolicyType

__all__ = ["ConsentReport", "check_consent", "consent_of_token", "token_roles"]


def token_roles(access_token: str) -> frozenset[str]:
    """The ``roles`` claim of an access token (its application permissions).

    The token is only read, not validated: it comes from the identity platform through our own client and
    Graph validates it on every call. Nothing else of the token is kept.

    Raises:
        ValueError: the text is not a JWT with a JSON payload.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("the token payload is not JSON") from exc
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()


def _has(granted: frozenset[str], permission: str) -> bool:
    # A .ReadWrite.All permission includes reading, as in Entra's permission model.
    return permission in granted or (
        permission.endswith(".Read.All") and permission.replace(".Read.All", ".ReadWrite.All") in granted
    )


@dataclass(frozen=True)
class ConsentReport:
    """What a tenant's consent allows, per catalog type.

    Attributes:
        granted: the application permissions in the token.
        missing_read: type key -> the permission a backup of it lacks.
        missing_write: type key -> the permission a restore of it lacks (restorable types only).
    """

    granted: frozenset[str]
    missing_read: Mapping[str, str]
    missing_write: Mapping[str, str]

    def can_back_up(self, type_key: str) -> bool:
        """Whether the consent covers reading ``type_key``."""
        return type_key not in self.missing_read

    def can_restore(self, type_key: str) -> bool:
        """Whether the consent covers reading and writing ``type_key``."""
        return type_key not in self.missing_read and type_key not in self.missing_write

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (permission names and type keys only)."""
        return {"granted": sorted(self.granted), "missingRead": dict(sorted(self.missing_read.items())),
                "missingWrite": dict(sorted(self.missing_write.items()))}


def consent_of_token(
    roles: Iterable[str], *, type_keys: Iterable[str] | None = None,
    catalog: Mapping[str, PolicyType] = CATALOG,
) -> ConsentReport:
    """Compare granted permissions with what the chosen types (all by default) need."""
    granted = frozenset(roles)
    chosen = [catalog[k] for k in type_keys] if type_keys is not None else list(catalog.values())
    # A type's write permission lets it be read too (Policy.ReadWrite.ConditionalAccess reads CA policies).
    missing_read = {t.key: t.read_permission for t in chosen
                    if not _has(granted, t.read_permission) and t.write_permission not in granted}
    missing_write = {t.key: t.write_permission for t in chosen
                     if t.backup_only is None and not _has(granted, t.write_permission)}
    return ConsentReport(granted=granted, missing_read=missing_read, missing_write=missing_write)


async def check_consent(
    tokens: TokenProvider, *, type_keys: Iterable[str] | None = None,
    catalog: Mapping[str, PolicyType] = CATALOG,
) -> ConsentReport:
    """The consent report of the tenant a token provider signs in to (one token request, no Graph call)."""
    return consent_of_token(token_roles(await tokens.get_token()), type_keys=type_keys, catalog=catalog)
