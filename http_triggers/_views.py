"""How domain records look on the wire (camelCase, links, no internal bookkeeping)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.domain import (
    BackupSet,
    BackupSetItem,
    ItemOutcome,
    ManagedTenant,
    Notification,
    Page,
    Role,
    RunRecord,
)
from shared.domain.backupsets import BackupSetChange
from shared.graph.catalog import PolicyType
from shared.graph.reader import PolicySummary
from shared.openapi import INTERNAL_RUN_FIELDS
from shared.services.runs import ProgressEntry

__all__ = ["render_backup_set", "render_backup_set_changes", "render_backup_set_item",
           "render_backup_set_page", "render_item_page", "render_notification_page", "render_policy",
           "render_policy_types", "render_progress", "render_run", "render_run_page", "render_tenant",
           "run_links"]



def run_links(api_base: str, run: RunRecord) -> dict[str, str]:
    """Absolute links of a run."""
    base = f"{api_base}/tenants/{run.tenant_id}/runs/{run.id}"
    return {"self": base, "monitor": f"{base}/monitor", "items": f"{base}/items"}


def render_run(run: RunRecord, api_base: str, *, reused: bool = False) -> dict[str, Any]:
    """A run as the API returns it."""
    body = {k: v for k, v in run.model_dump(mode="json", by_alias=True).items()
            if k not in INTERNAL_RUN_FIELDS}
    body["reused"] = reused
    body["links"] = run_links(api_base, run)
    return body


def _continuation(token: str | None) -> dict[str, Any]:
    return {"continuation": token}


def render_run_page(page: Page[RunRecord], api_base: str) -> dict[str, Any]:
    """A page of runs."""
    return {"items": [render_run(r, api_base) for r in page.items], **_continuation(page.continuation)}


def render_item_page(page: Page[ItemOutcome]) -> dict[str, Any]:
    """A page of per-item outcomes."""
    return {"items": [i.model_dump(mode="json", by_alias=True) for i in page.items],
            **_continuation(page.continuation)}


def render_notification_page(page: Page[Notification], api_base: str) -> dict[str, Any]:
    """A page of the caller's notifications."""
    items = []
    for note in page.items:
        body = note.model_dump(mode="json", by_alias=True)
        body.pop("principalId", None)
        body["links"] = {"run": f"{api_base}/tenants/{note.tenant_id}/runs/{note.run_id}"}
        items.append(body)
    return {"items": items, **_continuation(page.continuation)}


def render_progress(entries: list[ProgressEntry], api_base: str) -> dict[str, Any]:
    """The global progress view."""
    items = []
    for entry in entries:
        run = entry.run
        items.append({
            "tenantId": run.tenant_id, "runId": run.id, "kind": str(run.kind), "status": str(run.status),
            "counts": run.counts.model_dump(mode="json", by_alias=True), "percent": entry.percent,
            "createdAt": run.created_at.isoformat().replace("+00:00", "Z"),
            "finishedAt": run.finished_at.isoformat().replace("+00:00", "Z") if run.finished_at else None,
            "links": run_links(api_base, run),
        })
    return {"items": items}


def render_policy(policy: PolicySummary) -> dict[str, Any]:
    """A policy as the live listing shows it."""
    return {"id": policy.id, "displayName": policy.name, "policyType": policy.type_key,
            "odataType": policy.odata_type, "lastModifiedDateTime": policy.last_modified}


# The capabilities the contract names (a backup-only type's reason is its own ``backupOnly`` field).
_CONTRACT_CAPABILITIES = ("capture", "create", "update", "assignments")


def render_policy_types(types: Iterable[PolicyType]) -> dict[str, Any]:
    """The policy type catalog, sorted by key.

    Each type says where it lives in Graph, the application permissions the app needs to read and to write
    it, and what a restore can do with it; ``backupOnly`` (the reason) is there only for types that are
    captured but never written back.
    """
    items = []
    for policy_type in sorted(types, key=lambda t: t.key):
        capabilities = policy_type.capabilities
        item: dict[str, Any] = {
            "key": policy_type.key, "displayName": policy_type.display_name,
            "graphRoute": policy_type.list_url(),
            "permission": {"read": policy_type.read_permission, "write": policy_type.write_permission},
            "capabilities": {name: capabilities[name] for name in _CONTRACT_CAPABILITIES},
        }
        if policy_type.backup_only is not None:
            item["backupOnly"] = policy_type.backup_only
        items.append(item)
    return {"items": items}


def render_tenant(tenant: ManagedTenant, role: Role | None = None) -> dict[str, Any]:
    """A managed tenant, with the caller's role when known (the credential's name is not shown)."""
    body: dict[str, Any] = {
        "tenantId": tenant.tenant_id, "displayName": tenant.display_name,
        "graph": {"clientId": tenant.graph.client_id, "credential": {"type": tenant.graph.credential.type}},
    }
    if role is not None:
        body["role"] = str(role)
    return body


def render_backup_set(backup_set: BackupSet, api_base: str) -> dict[str, Any]:
    """A backup set as the API returns it, with links to itself and the run that made it."""
    body = backup_set.model_dump(mode="json", by_alias=True)
    base = f"{api_base}/tenants/{backup_set.tenant_id}"
    body["links"] = {"self": f"{base}/backup-sets/{backup_set.id}", "run": f"{base}/runs/{backup_set.run_id}"}
    return body


def render_backup_set_item(item: BackupSetItem) -> dict[str, Any]:
    """One item of a set: where its body is and whether it is whole (ids of the set and tenant left out)."""
    body = item.model_dump(mode="json", by_alias=True,
                           exclude={"tenant_id", "backup_set_id", "batch", "normalised_hash"})
    return body


def render_backup_set_changes(backup_set: BackupSet, page: Page[BackupSetChange]) -> dict[str, Any]:
    """A page of a set's changes, with the set they were computed against (``null``: none)."""
    return {"items": [c.model_dump(mode="json", by_alias=True, exclude={"tenant_id", "backup_set_id"})
                      for c in page.items],
            "comparedWith": backup_set.compared_with, **_continuation(page.continuation)}


def render_backup_set_page(page: Page[BackupSet], api_base: str) -> dict[str, Any]:
    """A page of backup sets."""
    return {"items": [render_backup_set(s, api_base) for s in page.items], **_continuation(page.continuation)}
