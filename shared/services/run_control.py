"""Controlling runs after they started: cancel one that is in flight, or run one again.

Cancel stops the work first and settles the run after, so nothing it ends is still being worked on:

1. the run's orchestration is terminated through the Durable client, then the sub-orchestrations its kind
   names (:class:`ChildInstances`: Durable does not pass termination down to them);
2. the kind's hook (:class:`KindControl`) records every item not yet settled as ``skipped`` and ends the run
   ``cancelled`` (counts from the items, key released); a kind without a hook that needs none (a single
   policy capture) is settled here the same way.

A second cancel of a cancelled run answers the run again (a double click), a run that ended otherwise is
``409 run-not-active``. Kinds whose ending owns more than the run (restores) must register a hook: without
one their cancel and rerun are refused (``409``), never improvised.

Rerun starts the work again as a new run through the normal, idempotent start: a single policy capture
starts the same capture; a kind with a hook decides what "again" means (a backup set captures only the items
that failed or were skipped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from shared.domain import Grant, ItemOutcome, Principal, Role, RunKind, RunRecord, RunStatus, role_at_least
from shared.domain.capture import capture_item_id
from shared.errors import Conflict, RoleTooLow, ServiceUnavailable
from shared.services.recovery import OrchestrationStatusUnknown, orchestration_runtime_status
from shared.services.runs import RunService, StartResult

__all__ = [
    "CancelNotSupported",
    "ChildInstances",
    "KindControl",
    "OrchestrationControl",
    "RerunNotSupported",
    "RunControl",
    "RunNotActive",
    "RunStillActive",
    "role_for_kind",
]

logger = logging.getLogger(__name__)

CANCEL_REASON = "cancelled through the API"
# Kinds whose ending is theirs alone: cancel and rerun go through their registered hook or not at all.
HOOK_ONLY_KINDS = frozenset({RunKind.RESTORE_PREVIEW, RunKind.RESTORE_EXECUTE})
# Durable runtime statuses of an instance that may still do work.
_ALIVE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})


class RunNotActive(Conflict):
    """The run has already ended (other than by a cancel): there is nothing to cancel."""

    code = "run-not-active"


class RunStillActive(Conflict):
    """The run is still queued or running: it can be run again once it has ended."""

    code = "run-still-active"


class CancelNotSupported(Conflict):
    """Runs of this kind cannot be cancelled (no hook is registered for the kind)."""

    code = "cancel-not-supported"


class RerunNotSupported(Conflict):
    """Runs of this kind cannot be run again (no hook is registered for the kind)."""

    code = "rerun-not-supported"


class OrchestrationControl(Protocol):
    """The part of the Durable client a cancel uses (``DurableOrchestrationClient`` in the app)."""

    async def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate an instance (raises when the host answers anything but 202 or 410)."""
        ...

    async def get_status(self, instance_id: str) -> Any:
        """Return an instance's status (its ``runtime_status`` is ``None`` when it does not exist)."""
        ...


class KindControl(Protocol):
    """What a run kind registers to be cancelled and rerun (``shared.container.run_control``)."""

    def settle_cancelled(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """End a run whose orchestration was terminated: items not settled ``skipped``, the run ``cancelled``.

        Idempotent; a run that had already ended is returned as it ended.
        """
        ...

    async def rerun(self, *, principal: Principal, tenant_id: str, run: RunRecord) -> StartResult:
        """Start the run's work again as a new run (or join the identical active one)."""
        ...


@runtime_checkable
class ChildInstances(Protocol):
    """Optional part of a :class:`KindControl`: the sub-orchestrations a run may have started."""

    def child_instances(self, *, tenant_id: str, run_id: str) -> Sequence[str]:
        """Instance ids to terminate after the run's own (those that never started are skipped)."""
        ...


def role_for_kind(kind: RunKind) -> Role:
    """The role starting, cancelling or rerunning a run of ``kind`` needs (the contract's start table)."""
    return Role.ADMIN if kind == RunKind.RESTORE_EXECUTE else Role.OPERATOR


class RunControl:
    """Cancel and rerun, for every kind, with per-kind hooks where the kind owns more than the run."""

    def __init__(self, *, runs: RunService, controls: Mapping[RunKind, KindControl] | None = None) -> None:
        """Create the service.

        Args:
            runs: the run service (reads, item outcomes, completing, starting).
            controls: per-kind hooks; more can be added with :meth:`register`.
        """
        self._runs = runs
        self._controls: dict[RunKind, KindControl] = dict(controls or {})

    def register(self, kind: RunKind, control: KindControl) -> None:
        """Route the cancels and reruns of ``kind`` through ``control``."""
        self._controls[kind] = control

    async def cancel(self, *, grant: Grant, run_id: str, orchestrations: OrchestrationControl) -> RunRecord:
        """Cancel an active run: stop its orchestration (and sub-orchestrations), then end it ``cancelled``.

        Args:
            grant: the caller's grant on the run's tenant (any role; the kind's role is checked here).
            run_id: the run.
            orchestrations: the Durable client.

        Returns:
            The run as it ended (``cancelled``).

        Raises:
            RunNotFound: no such run in the tenant.
            RoleTooLow: the caller's role does not allow starting runs of this kind.
            RunNotActive: the run ended before it could be cancelled.
            CancelNotSupported: the kind needs a hook and none is registered.
            ServiceUnavailable: the orchestration could not be stopped (the host erred); nothing was settled.
        """
        tenant_id = grant.tenant_id
        run = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=run_id)
        _require_role(grant, run.kind)
        if run.status.is_terminal:
            if run.status == RunStatus.CANCELLED:
                return run  # a second click: the cancel already happened
            raise RunNotActive(f"run {run_id} has already ended ({run.status})", run_id=run_id)
        control = self._controls.get(run.kind)
        if control is None and run.kind in HOOK_ONLY_KINDS:
            raise CancelNotSupported(f"runs of kind {run.kind} cannot be cancelled")
        # Stop the work before settling it: the run's own instance first (it starts no more batches), then
        # its children. An instance that never started or already ended is fine.
        await self._terminate(run.id, orchestrations)
        if isinstance(control, ChildInstances):
            children = await asyncio.to_thread(control.child_instances, tenant_id=tenant_id, run_id=run.id)
            await asyncio.gather(*(self._terminate(child, orchestrations) for child in children))
        settle = control.settle_cancelled if control is not None else self._settle_cancelled
        ended = await asyncio.to_thread(settle, tenant_id=tenant_id, run_id=run.id)
        if ended.status != RunStatus.CANCELLED:
            # It finished on its own between the read above and the settle.
            raise RunNotActive(f"run {run_id} has already ended ({ended.status})", run_id=run_id)
        logger.info("run cancelled run_id=%s tenant_id=%s kind=%s", run.id, tenant_id, run.kind)
        return ended

    async def rerun(self, *, grant: Grant, principal: Principal, run_id: str) -> StartResult:
        """Start an ended run's work again, as a new run of the kind's choosing.

        Raises:
            RunNotFound: no such run in the tenant.
            RoleTooLow: the caller's role does not allow starting runs of this kind.
            RunStillActive: the run has not ended yet.
            RerunNotSupported: the kind needs a hook and none is registered.
            Conflict: whatever the kind's hook refuses (``nothing-to-rerun`` ...).
        """
        tenant_id = grant.tenant_id
        run = await asyncio.to_thread(self._runs.get, tenant_id=tenant_id, run_id=run_id)
        _require_role(grant, run.kind)
        if not run.status.is_terminal:
            raise RunStillActive(f"run {run_id} is still {run.status}; run it again once it has ended",
                                 run_id=run_id)
        control = self._controls.get(run.kind)
        if control is not None:
            return await control.rerun(principal=principal, tenant_id=tenant_id, run=run)
        if run.kind == RunKind.POLICY_CAPTURE:
            return await self._runs.start(principal=principal, tenant_id=tenant_id, kind=run.kind,
                                          target=run.target, scope=run.scope, idempotency_key=None)
        raise RerunNotSupported(f"runs of kind {run.kind} cannot be run again")

    async def _terminate(self, instance_id: str, orchestrations: OrchestrationControl) -> None:
        """Terminate an instance; one that does not exist or has ended is fine, one still alive is not."""
        try:
            await orchestrations.terminate(instance_id, CANCEL_REASON)
            return
        except Exception as exc:  # noqa: BLE001 - the status below decides; the text is not ours to keep
            failure = type(exc).__name__
        try:
            runtime = orchestration_runtime_status(await orchestrations.get_status(instance_id))
        except OrchestrationStatusUnknown:
            runtime = "Unknown"
        if runtime is None or runtime not in _ALIVE | {"Unknown"}:
            return  # never started, or already over: nothing to stop
        logger.warning("cancel could not stop an orchestration instance=%s status=%s error=%s", instance_id,
                       runtime, failure)
        raise ServiceUnavailable("the run's orchestration could not be stopped; try again")

    def _settle_cancelled(self, *, tenant_id: str, run_id: str) -> RunRecord:
        """End a run of a kind without a hook: its one target item ``skipped`` unless it was settled."""
        run = self._runs.get(tenant_id=tenant_id, run_id=run_id)
        target = run.target
        if not run.status.is_terminal and target.policy_type and target.policy_id:
            settled = self._runs.list_items(tenant_id=tenant_id, run_id=run_id, top=1).items
            if not settled:
                self._runs.record_item(tenant_id=tenant_id, run_id=run_id, outcome=ItemOutcome(
                    item_id=capture_item_id(target.policy_type, target.policy_id),
                    policy_type=target.policy_type, source_id=target.policy_id, action="skipped",
                    status="skipped"))
        return self._runs.complete(tenant_id=tenant_id, run_id=run_id, cancelled=True)


def _require_role(grant: Grant, kind: RunKind) -> None:
    needed = role_for_kind(kind)
    if not role_at_least(grant.role, needed):
        raise RoleTooLow(f"this operation needs the {needed} role on the tenant")
