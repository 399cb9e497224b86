"""Table Storage adapters for managed tenants and grants."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from shared.domain import Grant, ManagedTenant, Role
from shared.storage.keys import validate_key
from shared.storage.table_common import body_json, get_entity, pack_body

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


def _forward(tenant_id: str) -> str:
    return "tenant|" + validate_key(tenant_id, what="tenant id")


def _reverse(principal_id: str) -> str:
    return "principal|" + validate_key(principal_id, what="principal id")


def _grant_from(entity: TableEntity) -> Grant:
    return Grant(tenant_id=str(entity["TenantId"]), principal_id=str(entity["PrincipalId"]),
                 role=Role(str(entity["Role"])), granted_by=str(entity["GrantedBy"]),
                 granted_at=entity["GrantedAt"])


class TableGrantRepository:
    """Grants, written twice: under the tenant (authorization) and under the principal ("my tenants").

    The tenant-side row is the truth used for authorization; the principal-side row is an index for
    listings. Writes go truth-first and deletes index-first, so a crash in between leaves at worst a
    listing that is missing a tenant, never an index that grants more than the truth.
    """

    def __init__(self, table: TableClient) -> None:
        self._table = table

    def put(self, grant: Grant) -> None:
        """Create or replace a grant."""
        props = {"TenantId": grant.tenant_id, "PrincipalId": grant.principal_id,
                 "Role": str(grant.role), "GrantedBy": grant.granted_by,
                 "GrantedAt": grant.granted_at}
        self._table.upsert_entity({"PartitionKey": _forward(grant.tenant_id),
                                   "RowKey": grant.principal_id, **props},
                                  mode=UpdateMode.REPLACE)
        self._table.upsert_entity({"PartitionKey": _reverse(grant.principal_id),
                                   "RowKey": grant.tenant_id, **props},
                                  mode=UpdateMode.REPLACE)

    def get(self, *, tenant_id: str, principal_id: str) -> Grant | None:
        """Return a grant, or ``None``."""
        entity = get_entity(self._table, _forward(tenant_id),
                            validate_key(principal_id, what="principal id"))
        return _grant_from(entity) if entity is not None else None

    def delete(self, *, tenant_id: str, principal_id: str) -> bool:
        """Delete a grant; return whether it existed."""
        existed = self.get(tenant_id=tenant_id, principal_id=principal_id) is not None
        for pk, rk in ((_reverse(principal_id), tenant_id), (_forward(tenant_id), principal_id)):
            # The SDK already treats a missing entity as deleted; deleting is idempotent.
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(partition_key=pk, row_key=rk)
        return existed

    def list_for_tenant(self, tenant_id: str) -> builtins.list[Grant]:
        """Return a tenant's grants ordered by principal id."""
        rows = self._table.query_entities("PartitionKey eq @pk",
                                          parameters={"pk": _forward(tenant_id)})
        return [_grant_from(e) for e in rows]

    def list_for_principal(self, principal_id: str) -> builtins.list[Grant]:
        """Return a principal's grants ordered by tenant id."""
        rows = self._table.query_entities("PartitionKey eq @pk",
                                          parameters={"pk": _reverse(principal_id)})
        return [_grant_from(e) for e in rows]
