"""Reading policies of a managed tenant from Graph and capturing them into Blob Storage.

The capture of one item is idempotent (activities run at least once): the body is content-addressed, the
index entry and the item outcome are keyed by run and item, so a repeat overwrites with the same values.
Graph faults that may pass (throttling, 5xx, an incomplete read) come back as a request to retry after a
delay, which the orchestrator honours with a durable timer; everything else settles the item as failed with a
stable code and a safe message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from shared.credentials import CredentialUnavailable
from shared.domain import ErrorInfo, ItemOutcome, SnapshotRecord
from shared.domain.batches import SetItemOutcome
from shared.domain.capture import CaptureItemInput, CaptureItemResult, capture_item_id
from shared.domain.normalise import NormalForm, normalised_hash
from shared.errors import AppError, InvalidRequest, TenantNotFound
from shared.graph.catalog import (
    CATALOG,
    COMMON_STRIP_ON_RESTORE,
    ItemGet,
    PerElementSubCollection,
    PolicyType,
    SubCollection,
)
from shared.graph.client import GraphClient
from shared.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphIncompleteRead,
    GraphNotFound,
    GraphPermissionMissing,
    GraphServerError,
    GraphThrottled,
)
from shared.graph.factory import GraphClientFactory
from shared.graph.reader import CapturedPolicy, PolicyReader, PolicySummary
from shared.graph.tenants import TENANT_CACHE_SECONDS, CredentialResolver, TenantGraphClients
from shared.ports import BackupSetRepository, BlobStore, SnapshotIndex, TenantRepository
from shared.services.runs import RunService

__all__ = [
    "POLICY_NORMAL_FORM", "CaptureService", "item_error_of", "policy_normal_form", "require_policy_type",
]

logger = logging.getLogger(__name__)

# Entra refused the credential itself (invalid or expired secret, certificate, assertion): resolve it again
# next time, so a rotated secret is picked up without a restart.
_CREDENTIAL_REFUSED = frozenset({"AADSTS7000215", "AADSTS7000222", "AADSTS700027", "AADSTS700024"})
# Faults worth another attempt after a pause: Graph is busy or briefly broken, or a page came back short.
_TRANSIENT = (GraphThrottled, GraphServerError, GraphIncompleteRead)

# Stamped by the service on every write, at any depth (``version`` too: Graph bumps it on each update).
_SERVICE_STAMPS = frozenset({"createdDateTime", "lastModifiedDateTime", "modifiedDateTime", "version",
                             "lastSyncDateTime"})
# Read-only properties of a policy that the service computes from others or changes on its own (counts,
# Microsoft's display and support dates); the catalog lists them only per type for restores, mixed with
# properties that are written through other calls, so they are named here.
_COMPUTED = frozenset({"settingCount", "deployedAppCount", "highestAvailableVersion", "endOfSupportDate",
                       "deployableContentDisplayName", "releaseDateDisplayName"})
# In ``a($select=x,y;$filter=...),b($expand=c)`` the names are a, b and c: nested options other than
# ``$expand`` name properties of the expanded object, not collections.
_NESTED_OPTION = re.compile(r"\$(?!expand=)\w+=[^;)]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def policy_normal_form(types: Iterable[PolicyType]) -> NormalForm:
    """The normal form of captured policies of ``types``: what a change check ignores and sorts.

    Collections read through their own calls or ``$expand`` (settings, definition and presentation values,
    scheduled actions, localized messages, apps) and assignments come back in no guaranteed order; the
    service-managed properties removed before a restore are dropped, except ``assignments``, which are
    content: retargeting a policy is a change.
    """
    unordered = {"assignments"}
    for policy_type in types:
        for step in policy_type.read_steps:
            if isinstance(step, SubCollection | PerElementSubCollection):
                unordered.add(step.into)
            if isinstance(step, ItemGet):
                expand = _NESTED_OPTION.sub("", step.params.get("$expand", ""))
                unordered |= {name for name in _NAME.findall(expand) if name != "expand"}
    return NormalForm(drop_everywhere=_SERVICE_STAMPS,
                      drop_top_level=(frozenset(COMMON_STRIP_ON_RESTORE) - {"assignments"}) | _COMPUTED,
                      unordered=frozenset(unordered), unordered_scalars=frozenset({"roleScopeTagIds"}))


POLICY_NORMAL_FORM = policy_normal_form(CATALOG.values())


def require_policy_type(policy_type: str) -> str:
    """Validate a policy type key from a route or body.

    Raises:
        InvalidRequest: the key is not in the catalog (``unknown-policy-type``).
    """
    if policy_type not in CATALOG:
        raise InvalidRequest(
            f"Unknown policy type '{policy_type[:64]}'. Known types: {', '.join(sorted(CATALOG))}.",
            code="unknown-policy-type",
        )
    return policy_type


def item_error_of(exc: Exception) -> ErrorInfo:
    """Stable code, our own message and Graph's structured facts for a failure to read a policy.

    Graph errors carry only our text and facts of a strict shape (never Graph's free text), so they can be
    stored on the item and the run and shown to callers as they are.
    """
    facts = exc.facts() if isinstance(exc, GraphError) else {}
    if isinstance(exc, GraphPermissionMissing):
        permission = exc.permission or "an Intune application permission"
        return ErrorInfo(code=exc.instance_code,
                         message=f"Microsoft Graph denied access: the app registration needs the "
                                 f"application permission {permission} (admin consent in the tenant).",
                         **facts)
    if isinstance(exc, GraphNotFound):
        return ErrorInfo(code="policy-not-found", message="The policy does not exist in the tenant.", **facts)
    if isinstance(exc, AppError):
        return ErrorInfo(code=exc.instance_code, message=exc.detail, **facts)
    return ErrorInfo(code="internal-error", message="An unexpected error occurred while capturing.")


class CaptureService:
    """Lists and captures policies of managed tenants."""

    def __init__(self, *, tenants: TenantRepository, runs: RunService, snapshots: SnapshotIndex,
                 blobs: BlobStore, graph: GraphClientFactory, credentials: CredentialResolver,
                 clock: Callable[[], datetime], backup_sets: BackupSetRepository | None = None,
                 tenant_cache_seconds: float = TENANT_CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._graph = TenantGraphClients(tenants=tenants, factory=graph, credentials=credentials,
                                         tenant_cache_seconds=tenant_cache_seconds, monotonic=monotonic)
        self._backup_sets = backup_sets
        self._runs = runs
        self._snapshots = snapshots
        self._blobs = blobs
        self._clock = clock

    @property
    def graph(self) -> TenantGraphClients:
        """The Graph port this service reads through (shared with restores: one tenant cache per process)."""
        return self._graph

    async def _client(self, tenant_id: str) -> GraphClient:
        # Captures only read: a read-only client refuses any write before it leaves the process.
        return await self._graph.client(tenant_id)

    async def list_policies(self, *, tenant_id: str, policy_type: str) -> list[PolicySummary]:
        """The tenant's policies of one type, live from Graph.

        Raises:
            InvalidRequest: unknown policy type.
            GraphError: Graph refused or failed (mapped to a problem response by the caller).
        """
        type_key = require_policy_type(policy_type)
        reader = PolicyReader(await self._client(tenant_id), include_assignments=False)
        return await reader.list_policies(type_key)

    async def capture(self, item: CaptureItemInput) -> CaptureItemResult:
        """Capture one policy: read it in full, store the body, index it and record the item outcome."""
        item_id = capture_item_id(item.policy_type, item.policy_id)
        started = self._clock()
        try:
            reader = PolicyReader(await self._client(item.tenant_id),
                                  include_assignments=item.include_assignments)
            captured = await reader.read_policy(item.policy_type, item.policy_id)
            if not captured.complete:
                raise GraphIncompleteRead("; ".join(captured.problems) or "the read was incomplete")
        except _TRANSIENT as exc:
            if not item.final_attempt:
                retry_after = exc.retry_after if isinstance(exc, GraphThrottled) else None
                logger.warning("capture will retry run_id=%s item=%s attempt=%d error_code=%s", item.run_id,
                               item_id, item.attempt, exc.instance_code)
                return CaptureItemResult(item_id=item_id, status="retry", error=item_error_of(exc),
                                         retry_after_seconds=retry_after)
            return await self._settle_failed(item, item_id, started, item_error_of(exc))
        except GraphAuthError as exc:
            if exc.aadsts in _CREDENTIAL_REFUSED:
                await self._forget_credential(item.tenant_id)
            return await self._settle_failed(item, item_id, started, item_error_of(exc))
        except (GraphError, CredentialUnavailable, TenantNotFound) as exc:
            return await self._settle_failed(item, item_id, started, item_error_of(exc))
        return await self._store(item, item_id, started, captured)

    async def _forget_credential(self, tenant_id: str) -> None:
        await self._graph.forget(tenant_id)

    async def _store(self, item: CaptureItemInput, item_id: str, started: datetime,
                     captured: CapturedPolicy) -> CaptureItemResult:
        body = json.dumps(captured.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        content_hash, blob_name, size = await asyncio.to_thread(self._blobs.put_json, item.tenant_id,
                                                                body.encode("utf-8"))
        now = self._clock()
        if item.backup_set_id is None:
            record = SnapshotRecord(
                tenant_id=item.tenant_id, snapshot_id=f"{item.run_id}:{item_id}",
                policy_type=item.policy_type, source_id=item.policy_id, display_name=captured.name,
                captured_at=now,
                content_hash=content_hash, size_bytes=size, blob_name=blob_name, complete=captured.complete,
                settings_count=captured.settings_count_captured or 0,
                assignments_count=len(captured.assignments or []), run_id=item.run_id,
            )
            await asyncio.to_thread(self._snapshots.put, record)
        outcome = ItemOutcome(item_id=item_id, policy_type=item.policy_type, display_name=captured.name,
                              source_id=item.policy_id, action="captured", status="succeeded",
                              attempts=item.attempt, started_at=started, finished_at=now)
        if item.backup_set_id is None:
            await asyncio.to_thread(self._runs.record_item, tenant_id=item.tenant_id, run_id=item.run_id,
                                    outcome=outcome)
        else:
            # Computed here, while the body is in memory: the set's change check compares these hashes.
            normal = normalised_hash(captured.body, POLICY_NORMAL_FORM)
            await asyncio.to_thread(self._record_set_item, item, item_id, outcome, SetItemOutcome(
                status="captured", display_name=captured.name, captured_at=now, content_hash=content_hash,
                normalised_hash=normal, size_bytes=size, complete=captured.complete, attempts=item.attempt))
        logger.info("policy captured run_id=%s item=%s size=%d hash=%s", item.run_id, item_id, size,
                    content_hash[:12])
        return CaptureItemResult(item_id=item_id, status="succeeded", content_hash=content_hash,
                                 size_bytes=size)

    def _record_set_item(self, item: CaptureItemInput, item_id: str, outcome: ItemOutcome,
                         settled: SetItemOutcome) -> None:
        """Record an item of a backup set on its run and on the set: two writes, no read.

        The run is sealed by ordering (:meth:`RunService.record_batch_item`), and the set's row is settled
        over what the plan wrote; a repeat writes the same.
        """
        if self._backup_sets is None or item.backup_set_id is None:
            raise RuntimeError("capture into a backup set needs the backup set repository")
        self._runs.record_batch_item(tenant_id=item.tenant_id, run_id=item.run_id, outcome=outcome)
        if not self._backup_sets.settle_item(tenant_id=item.tenant_id, backup_set_id=item.backup_set_id,
                                             item_id=item_id, outcome=settled):
            # Not planned (a stray input): nothing of the set to settle.
            logger.warning("backup set item not planned run_id=%s item=%s", item.run_id, item_id)

    async def _settle_failed(self, item: CaptureItemInput, item_id: str, started: datetime,
                             error: ErrorInfo) -> CaptureItemResult:
        outcome = ItemOutcome(item_id=item_id, policy_type=item.policy_type, source_id=item.policy_id,
                              action="failed", status="failed", attempts=item.attempt, error=error,
                              started_at=started, finished_at=self._clock())
        if item.backup_set_id is None:
            await asyncio.to_thread(self._runs.record_item, tenant_id=item.tenant_id, run_id=item.run_id,
                                    outcome=outcome)
        else:
            await asyncio.to_thread(self._record_set_item, item, item_id, outcome,
                                    SetItemOutcome(status="failed", attempts=item.attempt, error=error))
        logger.warning("policy capture failed run_id=%s item=%s error_code=%s", item.run_id, item_id,
                       error.code)
        return CaptureItemResult(item_id=item_id, status="failed", error=error)
