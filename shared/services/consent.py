"""The permission check of a managed tenant: which catalog types its consent covers, before a run starts.

The app-only token our app gets for the tenant lists the application permissions the tenant granted (its
``roles`` claim). Comparing them with each type's permission tells which types a backup (read) or a restore
(write) would fail on with 403, without any Graph call: one token request, usually answered from the cache.
A token stays valid for about an hour, so a consent granted meanwhile shows once the cached token is renewed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain import ErrorInfo
from shared.graph.catalog import CATALOG, PolicyType
from shared.graph.consent import ConsentReport, check_consent
from shared.graph.errors import GraphAuthError
from shared.graph.tenants import GraphPort

__all__ = ["ConsentService", "ReadableTypes", "permission_missing_error", "render_consent"]

PERMISSION_MISSING = "graph-permission-missing"
# Every permission the catalog names: only these are echoed back, never other text from the token.
_KNOWN_PERMISSIONS = frozenset(p for t in CATALOG.values() for p in (t.read_permission, t.write_permission))


@dataclass(frozen=True)
class ReadableTypes:
    """The types a capture can list, and those it must leave out with the read permission they lack."""

    readable: tuple[str, ...]
    unreadable: Mapping[str, str]

    def errors(self) -> dict[str, ErrorInfo]:
        """Per type left out, why (our own text: the type key and the catalog's permission name)."""
        return {key: permission_missing_error(key, permission)
                for key, permission in sorted(self.unreadable.items())}


def permission_missing_error(type_key: str, permission: str) -> ErrorInfo:
    """Why a type was not captured: the tenant's consent lacks the permission listing it needs."""
    return ErrorInfo(code=PERMISSION_MISSING,
                     message=f"The tenant has not granted {permission}, which reading {type_key} needs.")


class ConsentService:
    """Reports a managed tenant's consent per catalog type, from the token our app gets for it."""

    def __init__(self, *, graph: GraphPort, catalog: Mapping[str, PolicyType] = CATALOG) -> None:
        self._graph = graph
        self._catalog = catalog

    async def report(self, tenant_id: str, *, type_keys: Iterable[str] | None = None) -> ConsentReport:
        """What the tenant's consent covers, for ``type_keys`` (every type by default).

        Raises:
            TenantNotFound: the tenant is not registered.
            CredentialUnavailable: its credential cannot be resolved.
            GraphAuthError: Entra refused the token, or answered one that is not a JWT.
            GraphServerError: Entra failed.
        """
        client = await self._graph.client(tenant_id)
        try:
            return await check_consent(client.token_provider, type_keys=type_keys, catalog=self._catalog)
        except ValueError:
            raise GraphAuthError(f"the token for tenant {tenant_id} is not a JWT") from None

    async def readable(self, tenant_id: str, type_keys: Sequence[str]) -> ReadableTypes:
        """Split ``type_keys`` into those the consent lets a capture list and those it does not."""
        report = await self.report(tenant_id, type_keys=type_keys)
        missing = report.missing_read
        return ReadableTypes(readable=tuple(k for k in type_keys if k not in missing),
                             unreadable={k: missing[k] for k in type_keys if k in missing})


def render_consent(tenant_id: str, report: ConsentReport,
                   catalog: Mapping[str, PolicyType] = CATALOG) -> dict[str, Any]:
    """The API answer: per type whether capture and restore are covered, and the uncovered types first.

    ``restore`` is ``null`` for backup-only types (nothing is written back); a restore needs the read and
    the write permission. Only permission names the catalog knows are echoed from the token.
    """
    items: list[dict[str, Any]] = []
    for policy_type in sorted(catalog.values(), key=lambda t: t.key):
        key = policy_type.key
        restore = None
        if policy_type.backup_only is None:
            restore = {"permission": policy_type.write_permission, "covered": report.can_restore(key)}
        capture = {"permission": policy_type.read_permission, "covered": report.can_back_up(key)}
        items.append({"policyType": key, "displayName": policy_type.display_name, "capture": capture,
                      "restore": restore})
    return {
        "tenantId": tenant_id,
        "granted": sorted(report.granted & _KNOWN_PERMISSIONS),
        "uncovered": {
            "capture": [i["policyType"] for i in items if not i["capture"]["covered"]],
            "restore": [i["policyType"] for i in items
                        if i["restore"] is not None and not i["restore"]["covered"]],
        },
        "items": items,
    }
