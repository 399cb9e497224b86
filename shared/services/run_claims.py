"""Claiming a run: idempotent starts in one entity-group transaction.

Starting a run is one write: a single entity-group transaction in the tenant's partition creates the run
row, an ``active|`` row for its server-derived key, an ``idem|`` row with an ``Idempotency-Key``, a lock
row for exclusive kinds, and an outbox row holding what the run still owes (its orchestration start and
its ``queued`` event). Whoever wins the claim gets a new run; the rows that made the claim fail are read
only then, to find the run to reuse or replay. Nothing is checked-then-inserted: the transaction alone
decides between concurrent starts. The outbox is delivered off the request path by
:class:`shared.services.outbox.OutboxDispatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import (
    CreatedBy,
    Principal,
    RunKind,
    RunRecord,
    RunTarget,
    derive_idempotency_key,
    new_run_id,
)
from shared.errors import (
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidRequest,
    RestoreAlreadyActive,
    ServiceUnavailable,
)
from shared.ports import (
    ActiveEntry,
    ClaimConflict,
    IdempotencyEntry,
    LockEntry,
    OutboxEntry,
    RunClaim,
    RunRepository,
    Stored,
)

__all__ = ["EXCLUSIVE_KINDS", "MAX_CLAIM_ATTEMPTS", "RunClaims", "StartResult", "idempotency_scope"]

logger = logging.getLogger(__name__)

# Kinds of which at most one may be active per managed tenant, whatever the request.
EXCLUSIVE_KINDS = frozenset({RunKind.RESTORE_EXECUTE})
# Claim attempts before giving up: each retry follows a row that vanished between our claim and our
# read (a run finishing at that moment), so more than a couple means heavy contention.
MAX_CLAIM_ATTEMPTS = 8
_MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class StartResult:
    """The run a start request resolved to, and whether it already existed.

    A new run also carries its outbox entry and the ETags the claim returned, so the request's own
    delivery of it (:meth:`shared.services.outbox.OutboxDispatcher.submit`) needs no read.
    """

    run: RunRecord
    reused: bool
    run_etag: str | None = None
    outbox: Stored[OutboxEntry] | None = None


def idempotency_scope(principal: Principal, tenant_id: str, key: str) -> str:
    """Return the stored lookup key of a client ``Idempotency-Key``.

    The client's key is combined with attributes only the server knows (caller and tenant), so two
    callers who pick the same key never see each other's runs.

    Raises:
        InvalidRequest: the key is empty, too long, or not visible ASCII.
    """
    key = key.strip().strip('"')
    if not key or len(key) > _MAX_IDEMPOTENCY_KEY or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise InvalidRequest("Idempotency-Key must be 1-255 visible ASCII characters")
    material = "|".join([principal.tenant_id, principal.object_id, tenant_id.lower(), key])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class RunClaims:
    """New runs, or the equivalent run that already holds the request's claim rows."""

    def __init__(self, *, runs: RunRepository, clock: Callable[[], datetime], idempotency_ttl: timedelta,
                 launch_grace: timedelta) -> None:
        self._runs = runs
        self._clock = clock
        self._idempotency_ttl = idempotency_ttl
        self._launch_grace = launch_grace

    async def start(
        self, *, principal: Principal, tenant_id: str, kind: RunKind, target: RunTarget,
        scope: dict[str, Any], idempotency_key: str | None,
    ) -> StartResult:
        """Claim a new run, or return the equivalent run that is already active (or replayed).

        See :meth:`shared.services.runs.RunService.start`.
        """
        derived = derive_idempotency_key(tenant_id, kind, target, scope)
        scope_key = (idempotency_scope(principal, tenant_id, idempotency_key)
                     if idempotency_key is not None else None)
        for _ in range(MAX_CLAIM_ATTEMPTS):
            now = self._clock()
            run = RunRecord(
                id=new_run_id(now), tenant_id=tenant_id, kind=kind, target=target, scope=scope,
                created_by=CreatedBy(id=principal.object_id, name=principal.name,
                                     tenant_id=principal.tenant_id),
                created_at=now,
                derived_key=derived,
            )
            # The claiming request holds the outbox lease until ``due_at``: it delivers the entry itself.
            outbox = OutboxEntry(tenant_id=tenant_id, run_id=run.id, kind=kind, created_at=now,
                                 due_at=now + self._launch_grace, attempts=1)
            claim = RunClaim(
                tenant_id=tenant_id, run=run, active=ActiveEntry(derived, run.id),
                idempotency=(IdempotencyEntry(scope_key, derived, run.id,
                                              now + self._idempotency_ttl) if scope_key else None),
                lock=LockEntry(str(kind), run.id, derived) if kind in EXCLUSIVE_KINDS else None,
                outbox=outbox,
            )
            try:
                receipt = await asyncio.to_thread(self._runs.claim, claim)
            except ClaimConflict:
                # Only now read who holds the rows; ``None`` means they were stale and are gone: claim again.
                existing = await asyncio.to_thread(
                    self._resolve_conflict, tenant_id=tenant_id, kind=kind, derived=derived,
                    scope_key=scope_key,
                )
                if existing is not None:
                    logger.info("run start reused run_id=%s tenant_id=%s kind=%s", existing.id, tenant_id,
                                kind)
                    return StartResult(existing, reused=True)
                continue
            logger.info("run claimed run_id=%s tenant_id=%s kind=%s", run.id, tenant_id, kind)
            return StartResult(run, reused=False, run_etag=receipt.run_etag,
                               outbox=(Stored(outbox, receipt.outbox_etag)
                                       if receipt.outbox_etag is not None else None))
        raise ServiceUnavailable("too many concurrent changes to this tenant's runs; retry")

    def _resolve_conflict(self, *, tenant_id: str, kind: RunKind, derived: str,
                          scope_key: str | None) -> RunRecord | None:
        """Find the run that holds this request's claim rows; ``None`` when nothing does (claim)."""
        now = self._clock()
        if scope_key is not None:
            idem = self._runs.get_idempotency(tenant_id=tenant_id, scope=scope_key)
            if idem is not None:
                return self._replay(idem, tenant_id=tenant_id, derived=derived, now=now)
        active = self._runs.get_active(tenant_id=tenant_id, derived_key=derived)
        if active is not None:
            run = self._runs.get(tenant_id=tenant_id, run_id=active.value.run_id)
            if run is None or run.value.status.is_terminal:
                self._drop(self._runs.delete_active, tenant_id=tenant_id, derived_key=derived,
                           etag=active.etag)
                return None
            if scope_key is not None and not self._attach_key(run.value, scope_key, now):
                return None
            return run.value
        if kind in EXCLUSIVE_KINDS:
            lock = self._runs.get_lock(tenant_id=tenant_id, name=str(kind))
            if lock is not None:
                holder = self._runs.get(tenant_id=tenant_id, run_id=lock.value.run_id)
                if holder is None or holder.value.status.is_terminal:
                    self._drop(self._runs.delete_lock, tenant_id=tenant_id, name=str(kind),
                               etag=lock.etag)
                    return None
                raise RestoreAlreadyActive(
                    f"restore run {lock.value.run_id} is still active on this tenant",
                    active_run_id=lock.value.run_id,
                )
        return None

    def _replay(self, idem: Stored[IdempotencyEntry], *, tenant_id: str, derived: str,
                now: datetime) -> RunRecord | None:
        run = self._runs.get(tenant_id=tenant_id, run_id=idem.value.run_id)
        expired = idem.value.expires_at <= now and (run is None or run.value.status.is_terminal)
        if run is None or expired:
            # A reuse after expiry is a new request (Stripe and the IETF draft agree).
            self._drop(self._runs.delete_idempotency, tenant_id=tenant_id, scope=idem.value.scope,
                       etag=idem.etag)
            return None
        if idem.value.fingerprint != derived:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request", run_id=run.value.id
            )
        return run.value

    def _attach_key(self, run: RunRecord, scope_key: str, now: datetime) -> bool:
        """Remember a client key for a run it did not create (it joined an active run)."""
        entry = IdempotencyEntry(scope_key, run.derived_key, run.id, now + self._idempotency_ttl)
        try:
            self._runs.claim(RunClaim(tenant_id=run.tenant_id, idempotency=entry))
        except ClaimConflict:
            return False  # the key was taken meanwhile: look again, it may be ours or a mismatch
        return True

    @staticmethod
    def _drop(delete: Callable[..., None], **kwargs: str) -> None:
        # Someone else changed or removed the row first; the next claim attempt will tell.
        with contextlib.suppress(ConcurrentUpdate):
            delete(**kwargs)
