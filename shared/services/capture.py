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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.credentials import CredentialUnavailable
from shared.domain import ErrorInfo, ItemOutcome, SnapshotRecord
from shared.domain.batches import CaptureChunkInput, SetItemOutcome
from shared.domain.capture import (
    DEFAULT_RETRY_DELAY_SECONDS,
    CaptureItemInput,
    CaptureItemResult,
    capture_item_id,
)
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
)
from shared.graph.factory import GraphClientFactory
from shared.graph.reader import CapturedPolicy, PolicyReader, PolicySummary
from shared.graph.retry import TRANSIENT_ERRORS, wait_before_retry
from shared.graph.tenants import TENANT_CACHE_SECONDS, CredentialResolver, TenantGraphClients
from shared.ports import BackupSetRepository, BlobStore, SnapshotIndex, TenantRepository
from shared.services.runs import RunService

__all__ = [
    "INTERNAL_ITEM_ERROR", "POLICY_NORMAL_FORM", "CaptureService", "internal_failure", "item_error_of",
    "policy_normal_form", "require_policy_type",
]

logger = logging.getLogger(__name__)

# Entra refused the credential itself (invalid or expired secret, certificate, assertion): resolve it again
# next time, so a rotated secret is picked up without a restart.
_CREDENTIAL_REFUSED = frozenset({"AADSTS7000215", "AADSTS7000222", "AADSTS700027", "AADSTS700024"})
# An item that failed for a reason of our own (never Graph's text).
INTERNAL_ITEM_ERROR = ErrorInfo(code="internal-error",
                                message="The item could not be captured because of an internal error.")
# How long the items of a chunk that settled wait for the chunk's others before their outcomes are recorded
# without them: long enough that a chunk whose reads end close together is recorded in one transaction per
# table, short enough that one slow read (a paged or retried one) does not hold its neighbours' progress back.
RECORD_WITHIN_SECONDS = 5.0
# Faults worth another attempt after a pause: Graph is busy or briefly broken, or a page came back short.

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
                 monotonic: Callable[[], float] = time.monotonic,
                 record_within_seconds: float = RECORD_WITHIN_SECONDS,
                 retry_wait: float = DEFAULT_RETRY_DELAY_SECONDS) -> None:
        self._graph = TenantGraphClients(tenants=tenants, factory=graph, credentials=credentials,
                                         tenant_cache_seconds=tenant_cache_seconds, monotonic=monotonic)
        self._record_within_seconds = record_within_seconds
        # The durable wait before an item is tried again when Graph named none.
        self._retry_wait = retry_wait
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
        """Capture one policy as a snapshot: read it in full, store the body, index it, record the outcome."""
        attempt = await self._attempt(item, self._client(item.tenant_id))
        if isinstance(attempt, CaptureItemResult):
            return attempt
        if attempt.captured is not None:
            await asyncio.to_thread(self._snapshots.put, SnapshotRecord(
                tenant_id=item.tenant_id, snapshot_id=f"{item.run_id}:{attempt.item_id}",
                policy_type=item.policy_type, source_id=item.policy_id, display_name=attempt.captured.name,
                captured_at=attempt.finished, content_hash=attempt.content_hash, size_bytes=attempt.size,
                blob_name=attempt.blob_name, complete=attempt.captured.complete,
                settings_count=attempt.captured.settings_count_captured or 0,
                assignments_count=len(attempt.captured.assignments or []), run_id=item.run_id))
        await asyncio.to_thread(self._runs.record_item, tenant_id=item.tenant_id, run_id=item.run_id,
                                outcome=attempt.outcome())
        return attempt.result()

    async def capture_chunk(self, chunk: CaptureChunkInput) -> list[CaptureItemResult]:
        """Capture a chunk of a backup set's members at once; one result per member, in their order.

        The members are read concurrently (the Graph client's budget keeps the tenant within its limits) and
        each body is stored as its read completes (content-addressed). The outcomes of the items that settled
        are then recorded together: one entity-group transaction on the run's items (one partition per run)
        and one on the set's items (one partition per tenant), instead of two writes per item, without
        reading the run (sealed by ordering, :meth:`RunService.record_batch_items`) or the items (merged over
        what the plan wrote). Items asking to retry write nothing. A repeat writes the same.

        Once an item settled, the others get ``record_within_seconds`` to settle too; whatever settled by then
        is recorded, and the rest later the same way, so a slow item holds its neighbours' outcomes (the
        run's progress, and what a cancel finds captured) back only that long.

        A failure of one item of our own (its body could not be stored) asks to retry that item only (on the
        final attempt it fails unrecorded, and the finish settles it); a failure to record raises, and the
        items still being read are abandoned.
        """
        sets = self._backup_sets
        if sets is None:
            raise RuntimeError("capture into a backup set needs the backup set repository")
        # One registration read and client for the chunk; each item awaits the same future.
        client = asyncio.ensure_future(self._client(chunk.tenant_id))
        items = chunk.items()
        tasks: list[asyncio.Future[CaptureItemResult | _Attempt]] = [
            asyncio.ensure_future(self._attempt(item, client)) for item in items]
        positions = {task: position for position, task in enumerate(tasks)}
        results: list[CaptureItemResult | _Attempt | None] = [None] * len(items)
        remaining = set(tasks)
        try:
            while remaining:
                done, remaining = await asyncio.wait(remaining, return_when=asyncio.FIRST_COMPLETED)
                if remaining:
                    more, remaining = await asyncio.wait(remaining, timeout=self._record_within_seconds)
                    done |= more
                settled: dict[str, _Attempt] = {}
                for task in done:
                    position = positions[task]
                    result = results[position] = _settled(items[position], task)
                    if isinstance(result, _Attempt):
                        settled[result.item_id] = result
                if settled:
                    await asyncio.to_thread(self._record_chunk, sets, chunk, list(settled.values()))
        finally:
            for task in remaining:
                task.cancel()
        return [r.result() if isinstance(r, _Attempt) else r for r in results if r is not None]

    def _record_chunk(self, sets: BackupSetRepository, chunk: CaptureChunkInput,
                      settled: Sequence[_Attempt]) -> None:
        """Record settled items of a chunk on the run and on the set: a transaction each, no read."""
        self._runs.record_batch_items(tenant_id=chunk.tenant_id, run_id=chunk.run_id,
                                      outcomes=[attempt.outcome() for attempt in settled])
        stray = sets.settle_items(
            tenant_id=chunk.tenant_id, backup_set_id=chunk.backup_set_id,
            outcomes={attempt.item_id: attempt.set_outcome() for attempt in settled})
        for item_id in stray:
            # Not planned (a stray input): nothing of the set to settle.
            logger.warning("backup set item not planned run_id=%s item=%s", chunk.run_id, item_id)

    async def _attempt(self, item: CaptureItemInput,
                       client: Awaitable[GraphClient]) -> CaptureItemResult | _Attempt:
        """Read one policy in full and store its body; a request to retry, or what to record."""
        item_id = capture_item_id(item.policy_type, item.policy_id)
        started = self._clock()
        try:
            reader = PolicyReader(await client, include_assignments=item.include_assignments)
            captured = await reader.read_policy(item.policy_type, item.policy_id)
            if not captured.complete:
                raise GraphIncompleteRead("; ".join(captured.problems) or "the read was incomplete")
        except TRANSIENT_ERRORS as exc:
            if not item.final_attempt:
                retry_after = wait_before_retry(exc, self._retry_wait)
                logger.warning("capture will retry run_id=%s item=%s attempt=%d error_code=%s", item.run_id,
                               item_id, item.attempt, exc.instance_code)
                return CaptureItemResult(item_id=item_id, status="retry", error=item_error_of(exc),
                                         retry_after_seconds=retry_after)
            return self._failed(item, item_id, started, item_error_of(exc))
        except GraphAuthError as exc:
            if exc.aadsts in _CREDENTIAL_REFUSED:
                await self._forget_credential(item.tenant_id)
            return self._failed(item, item_id, started, item_error_of(exc))
        except (GraphError, CredentialUnavailable, TenantNotFound) as exc:
            return self._failed(item, item_id, started, item_error_of(exc))
        body = json.dumps(captured.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        content_hash, blob_name, size = await asyncio.to_thread(self._blobs.put_json, item.tenant_id,
                                                                body.encode("utf-8"))
        logger.info("policy captured run_id=%s item=%s size=%d hash=%s", item.run_id, item_id, size,
                    content_hash[:12])
        return _Attempt(item=item, item_id=item_id, started=started, finished=self._clock(),
                        captured=captured, content_hash=content_hash, blob_name=blob_name, size=size)

    async def _forget_credential(self, tenant_id: str) -> None:
        await self._graph.forget(tenant_id)

    def _failed(self, item: CaptureItemInput, item_id: str, started: datetime,
                error: ErrorInfo) -> _Attempt:
        logger.warning("policy capture failed run_id=%s item=%s error_code=%s", item.run_id, item_id,
                       error.code)
        return _Attempt(item=item, item_id=item_id, started=started, finished=self._clock(), error=error)


def _settled(item: CaptureItemInput,
             task: asyncio.Future[CaptureItemResult | _Attempt]) -> CaptureItemResult | _Attempt:
    """A finished item's answer; one that raised asks to retry (see :func:`internal_failure`)."""
    failure = task.exception()
    if failure is None:
        return task.result()
    # The type only: the text may quote an upstream.
    logger.warning("backup set item capture failed run_id=%s item=%s attempt=%d exception=%s", item.run_id,
                   capture_item_id(item.policy_type, item.policy_id), item.attempt, type(failure).__name__)
    return internal_failure(item)


def internal_failure(item: CaptureItemInput) -> CaptureItemResult:
    """An item that failed for a reason of our own: retried, or on the final attempt failed (unrecorded).

    Nothing is written for it: the finish of the run settles an item still pending as not captured.
    """
    return CaptureItemResult(item_id=capture_item_id(item.policy_type, item.policy_id),
                             status="failed" if item.final_attempt else "retry", error=INTERNAL_ITEM_ERROR)


@dataclass(frozen=True)
class _Attempt:
    """One item that settled: read in full and its body stored, or failed for good. Its records follow."""

    item: CaptureItemInput
    item_id: str
    started: datetime
    finished: datetime
    captured: CapturedPolicy | None = None  # ``None``: failed with ``error``
    content_hash: str = ""
    blob_name: str = ""
    size: int = 0
    error: ErrorInfo | None = None

    def result(self) -> CaptureItemResult:
        """What the activity returns for it."""
        if self.captured is None:
            return CaptureItemResult(item_id=self.item_id, status="failed", error=self.error)
        return CaptureItemResult(item_id=self.item_id, status="succeeded", content_hash=self.content_hash,
                                 size_bytes=self.size)

    def outcome(self) -> ItemOutcome:
        """Its outcome on the run."""
        item = self.item
        if self.captured is None:
            return ItemOutcome(item_id=self.item_id, policy_type=item.policy_type, source_id=item.policy_id,
                               action="failed", status="failed", attempts=item.attempt, error=self.error,
                               started_at=self.started, finished_at=self.finished)
        return ItemOutcome(item_id=self.item_id, policy_type=item.policy_type,
                           display_name=self.captured.name, source_id=item.policy_id, action="captured",
                           status="succeeded",
                           attempts=item.attempt, started_at=self.started, finished_at=self.finished)

    def set_outcome(self) -> SetItemOutcome:
        """Its outcome on the set's item; the normal form's hash is what a set's change check compares."""
        if self.captured is None:
            return SetItemOutcome(status="failed", attempts=self.item.attempt, error=self.error)
        return SetItemOutcome(
            status="captured", display_name=self.captured.name, captured_at=self.finished,
            content_hash=self.content_hash, normalised_hash=normalised_hash(self.captured.body,
                                                                            POLICY_NORMAL_FORM),
            size_bytes=self.size, complete=self.captured.complete, attempts=self.item.attempt)
