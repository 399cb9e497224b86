"""Table Storage adapters for managed tenants and grants.

The access table holds, per managed tenant, the grants (the truth used for authorization) and the audit
events of their changes in one partition, plus a reverse index per principal::

    PartitionKey tenant|<managed tenant>
        grant|<principal tenant>|<principal oid>   a grant
        audit|<inverted event id>                  an audit event (see shared.storage.table_audit)
    PartitionKey principal|<principal tenant>|<principal oid>
        <managed tenant>                           index row: "my tenants"
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.domain import AuditEvent, Grant, ManagedTenant, Role
from shared.errors import ConcurrentUpdate, InvalidRequest
from shared.ports import Stored
from shared.storage.keys import validate_key
from shared.storage.rows import prefix_range
from shared.storage.table_audit import audit_entity, tenant_partition
from shared.storage.table_batch import submit_transaction
from shared.storage.table_common import body_json, etag_of, get_entity, pack_body

__all__ = ["TableGrantRepository", "TableTenantRepository"]

_TENANT_PARTITION = "tenant"


class TableTenantRepository:
    """Managed tenants in one partition (there are hundreds, not millions)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, tenant: ManagedTenant) -> None:
        """Create or replace a tenant."""
        self._table.upsert_entity({
            "PartitionKey": _TENANT_PARTITION,
            "RowKey": validate_key(tenant.tenant_id, what="tenant id"),
            **pack_body(tenant.model_dump_json()),
        }, mode=UpdateMode.REPLACE)

    def get(self, tenant_id: str) -> ManagedTenant | None:
        """Return a tenant, or ``None``."""
        entity = get_entity(self._table, _TENANT_PARTITION, validate_key(tenant_id, what="tenant id"))
        return ManagedTenant.model_validate(body_json(entity)) if entity is not None else None

    def get_many(self, tenant_ids: Sequence[str]) -> list[ManagedTenant]:
        """Return the registered tenants among ``tenant_ids``, in that order."""
        wanted = set(tenant_ids)
        if not wanted:
            return []
        rows = self._table.query_entities("PartitionKey eq @pk",
                                          parameters={"pk": _TENANT_PARTITION})
        found = {str(e["RowKey"]): ManagedTenant.model_validate(body_json(e))
                 for e in rows if e["RowKey"] in wanted}
        return [found[t] for t in tenant_ids if t in found]

    def list_ids(self) -> list[str]:
        """Return every registered tenant's id (keys only: the bodies stay on the server)."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _TENANT_PARTITION},
                                          select=["RowKey"])
        return [str(e["RowKey"]) for e in rows]


_GRANT_PREFIX = "grant|"
_GRANT_RANGE = prefix_range(_GRANT_PREFIX)
_PRINCIPAL_PARTITION_PREFIX = "principal|"


def _part(value: str, what: str) -> str:
    # "|" separates the parts of a key; refusing it keeps ("a|b", "c") and ("a", "b|c") apart.
    if "|" in validate_key(value, what=what):
        raise InvalidRequest(f"{what} contains a character that is not allowed")
    return value


def _principal(principal_tenant_id: str, principal_id: str) -> str:
    return (_part(principal_tenant_id, "principal tenant id") + "|"
            + _part(principal_id, "principal id"))


def _grant_row(principal_tenant_id: str, principal_id: str) -> str:
    return _GRANT_PREFIX + _principal(principal_tenant_id, principal_id)


def _reverse(principal_tenant_id: str, principal_id: str) -> str:
    return _PRINCIPAL_PARTITION_PREFIX + _principal(principal_tenant_id, principal_id)


def _grant_props(grant: Grant) -> dict[str, Any]:
    return {"TenantId": grant.tenant_id, "PrincipalTenantId": grant.principal_tenant_id,
            "PrincipalId": grant.principal_id, "Role": str(grant.role), "GrantedBy": grant.granted_by,
            "GrantedAt": grant.granted_at}


def _grant_from(entity: TableEntity) -> Grant:
    return Grant(tenant_id=str(entity["TenantId"]), principal_tenant_id=str(entity["PrincipalTenantId"]),
                 principal_id=str(entity["PrincipalId"]), role=Role(str(entity["Role"])),
                 granted_by=str(entity["GrantedBy"]), granted_at=entity["GrantedAt"])


def _same_partition(tenant_id: str, event: AuditEvent) -> None:
    if event.tenant_id != tenant_id:
        raise ValueError("an audit event belongs to the managed tenant of the grant it records")


class TableGrantRepository:
    """Grants, written twice: under the tenant (authorization) and under the principal ("my tenants").

    The tenant-side row is the truth used for authorization and is written in one entity-group transaction
    with its audit event, so a change is never stored without its event or the other way round. The
    principal-side row is an index for listings. Writes go truth-first and deletes index-first, so a crash in
    between leaves at worst a listing that is missing a tenant, never an index that grants more than the
    truth.
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def get(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str) -> Stored[Grant] | None:
        """Return a grant with its ETag, or ``None``."""
        entity = get_entity(self._table, tenant_partition(tenant_id),
                            _grant_row(principal_tenant_id, principal_id))
        return Stored(_grant_from(entity), etag_of(entity)) if entity is not None else None

    def put(self, grant: Grant, *, event: AuditEvent, etag: str | None) -> None:
        """Create or replace a grant together with its audit event (one transaction)."""
        _same_partition(grant.tenant_id, event)
        entity = {"PartitionKey": tenant_partition(grant.tenant_id),
                  "RowKey": _grant_row(grant.principal_tenant_id, grant.principal_id),
                  **_grant_props(grant)}
        write: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]] = (
            ("create", entity) if etag is None else
            ("update", entity, {"mode": UpdateMode.REPLACE, "etag": etag,
                                "match_condition": MatchConditions.IfNotModified}))
        self._submit([write, ("create", audit_entity(event))])
        self._table.upsert_entity({"PartitionKey": _reverse(grant.principal_tenant_id, grant.principal_id),
                                   "RowKey": grant.tenant_id, **_grant_props(grant)},
                                  mode=UpdateMode.REPLACE)

    def delete(self, *, tenant_id: str, principal_tenant_id: str, principal_id: str, event: AuditEvent,
               etag: str) -> None:
        """Delete a grant together with its audit event (one transaction), index row first."""
        _same_partition(tenant_id, event)
        pk, rk = tenant_partition(tenant_id), _grant_row(principal_tenant_id, principal_id)
        # The SDK already treats a missing entity as deleted; deleting the index row is idempotent.
        with contextlib.suppress(ResourceNotFoundError):
            self._table.delete_entity(partition_key=_reverse(principal_tenant_id, principal_id),
                                      row_key=tenant_id)
        self._submit([("delete", {"PartitionKey": pk, "RowKey": rk},
                       {"etag": etag, "match_condition": MatchConditions.IfNotModified}),
                      ("create", audit_entity(event))])

    def _submit(self, ops: builtins.list[Any]) -> None:
        try:
            submit_transaction(self._table, ops)
        except TableTransactionError as exc:
            # 404: deleted meanwhile; 409: created meanwhile (or the event exists); 412: changed meanwhile.
            if exc.status_code in (404, 409, 412):
                raise ConcurrentUpdate("the grant changed meanwhile") from exc
            raise

    def list_for_tenant(self, tenant_id: str) -> builtins.list[Grant]:
        """Return a tenant's grants ordered by principal tenant and object id."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": tenant_partition(tenant_id), **_GRANT_RANGE})
        return [_grant_from(e) for e in rows]

    def list_for_principal(self, *, principal_tenant_id: str, principal_id: str) -> builtins.list[Grant]:
        """Return a principal's grants ordered by managed tenant id."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _reverse(principal_tenant_id, principal_id)})
        return [_grant_from(e) for e in rows]
