"""Lazy, cached, per-process singletons: the one place that reads settings and builds clients.

Nothing is built at import time (a failure there would mean "0 functions loaded"), and nothing is built per
invocation (clients own connection pools and token caches). Triggers and activities ask for what they need.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from shared.auth.access import AccessService
from shared.config import Settings, get_settings
from shared.credentials import GraphCredential, resolve_credential
from shared.domain import ErrorInfo, ManagedTenant, Principal, Role, RunKind, RunRecord
from shared.domain.capture import DEFAULT_RETRY_DELAY_SECONDS
from shared.errors import AppError, RunNotFound
from shared.graph.budget import PUBLISHED_LIMITS
from shared.graph.factory import GraphClientFactory
from shared.graph.retry import RetryPolicy
from shared.graph.shared_budget import SharedBudgetOptions
from shared.redaction import install_log_redaction
from shared.services.audit import AuditService
from shared.services.backupsets import SET_KINDS, BackupSetService, batch_counter
from shared.services.blob_gc import BlobCollector
from shared.services.capture import CaptureService
from shared.services.consent import ConsentService
from shared.services.notifications import NotificationService
from shared.services.outbox import OutboxDispatcher
from shared.services.recovery import RunRecovery
from shared.services.restore import RestoreService
from shared.services.run_control import RunControl
from shared.services.runs import RunService
from shared.services.schedules import ScheduleService
from shared.services.tenants import TenantService
from shared.services.webhook_transport import HttpWebhookSender, SecretBox
from shared.services.webhooks import WebhookService
from shared.storage.factory import StorageFactory

__all__ = [
    "access_service",
    "audit_service",
    "backup_set_service",
    "capture_service",
    "consent_service",
    "graph_clients",
    "notification_service",
    "outbox_dispatcher",
    "restore_service",
    "run_control",
    "run_recovery",
    "run_service",
    "schedule_service",
    "settings",
    "storage",
    "tenant_service",
    "utcnow",
    "webhook_service",
]


def utcnow() -> datetime:
    """The service clock (aware UTC)."""
    return datetime.now(UTC)


def _install_redaction() -> None:
    """Redact every log record as it is made, whoever emits it (our code, azure-core, MSAL, httpx).

    Records are redacted at creation, so handlers added later (the Functions worker's, the Azure Monitor
    exporter's) and records of any logger never carry a credential.
    """
    install_log_redaction()
    # Library loggers that may print request details stay at WARNING.
    for name in ("azure", "msal", "httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The app settings (read once)."""
    _install_redaction()
    return get_settings()


@lru_cache(maxsize=1)
def storage() -> StorageFactory:
    """Table and blob clients of the app's own state."""
    return StorageFactory.from_settings(settings())


@lru_cache(maxsize=1)
def notification_service() -> NotificationService:
    """Notifications of run transitions."""
    return NotificationService(repository=storage().notifications(), clock=utcnow)


@lru_cache(maxsize=1)
def run_service() -> RunService:
    """Runs: idempotent starts, transitions, items, progress."""
    count_batches = batch_counter(storage().backup_sets())
    return RunService(runs=storage().runs(), items=storage().items(), notifications=notification_service(),
                      clock=utcnow, sinks=[webhook_service()],
                      counters=dict.fromkeys(SET_KINDS, count_batches))


def _read_run(tenant_id: str, run_id: str) -> RunRecord | None:
    try:
        return run_service().get(tenant_id=tenant_id, run_id=run_id)
    except RunNotFound:
        return None


@lru_cache(maxsize=1)
def webhook_service() -> WebhookService:
    """Webhook subscriptions and the delivery of run events to them."""
    config = settings()
    box: SecretBox | None = None
    if config.webhook_encryption_key is not None:
        try:
            box = SecretBox(config.webhook_encryption_key.get_secret_value())
        except ValueError:
            # Runs must go on; only subscriptions are unavailable (503 webhooks-not-configured).
            logging.getLogger(__name__).error("WEBHOOK_ENCRYPTION_KEY is not a valid key; webhooks are off")
    api_base = config.public_api_base_url or (
        f"https://{config.website_hostname}/api" if config.website_hostname else "")
    return WebhookService(repository=storage().webhooks(), read_run=_read_run,
                          sender=HttpWebhookSender(allow_loopback=config.webhook_allow_loopback),
                          clock=utcnow, tenant_ids=storage().tenants().list_ids, box=box, api_base=api_base,
                          allow_loopback=config.webhook_allow_loopback,
                          delivered_retention=timedelta(days=config.webhook_delivery_retention_days))


@lru_cache(maxsize=1)
def outbox_dispatcher() -> OutboxDispatcher:
    """Delivers run outboxes (orchestration starts, run events) in background tasks of this process."""
    return OutboxDispatcher(runs=storage().runs(), service=run_service(), clock=utcnow,
                            tenant_ids=storage().tenants().list_ids,
                            finish_run=finish_run)


def finish_run(*, tenant_id: str, run_id: str, failure: ErrorInfo | None) -> RunRecord:
    """End a run from outside its orchestration (never launched, or orphaned) the way its kind ends.

    A restore settles its planned items and audits the run; a backup run settles its set.
    """
    run = run_service().get(tenant_id=tenant_id, run_id=run_id)
    if run.kind in (RunKind.RESTORE_PREVIEW, RunKind.RESTORE_EXECUTE):
        return restore_service().finish(tenant_id=tenant_id, run_id=run_id, failure=failure)
    return backup_set_service().finish_run(tenant_id=tenant_id, run_id=run_id, failure=failure)


@lru_cache(maxsize=1)
def run_recovery() -> RunRecovery:
    """Settles runs whose orchestration ended without them (the monitor and the recovery timer)."""
    return RunRecovery(runs=storage().runs(), service=run_service(), clock=utcnow,
                       tenant_ids=storage().tenants().list_ids, finish_run=finish_run)


@lru_cache(maxsize=1)
def access_service() -> AccessService:
    """Per-tenant authorization from the grant table."""
    return AccessService(tenants=storage().tenants(), grants=storage().grants(), clock=utcnow,
                         cache_ttl=timedelta(seconds=settings().grant_cache_seconds))


@lru_cache(maxsize=1)
def tenant_service() -> TenantService:
    """Managed tenant registration and grants."""
    return TenantService(tenants=storage().tenants(), grants=storage().grants(), access=access_service(),
                         clock=utcnow)


@lru_cache(maxsize=1)
def audit_service() -> AuditService:
    """Each managed tenant's audit trail."""
    return AuditService(audit=storage().audit(), access=access_service())


@lru_cache(maxsize=1)
def graph_clients() -> GraphClientFactory:
    """One Graph client per managed tenant for the whole process."""
    config = settings()
    return GraphClientFactory(graph_base_url=config.graph_base_url,
                              authority_host=config.graph_authority_host,
                              ca_bundle=config.graph_ca_bundle or None,
                              # A tenant's limits hold across every process and instance of the app.
                              budget_store=storage().budget_ledgers() if config.graph_shared_budget else None,
                              shared_budget=SharedBudgetOptions(
                                  fallback_share=config.graph_budget_fallback_share),
                              budget=PUBLISHED_LIMITS.scaled(config.graph_budget_scale),
                              retry=RetryPolicy().scaled(config.graph_retry_scale))


def _retry_wait() -> float:
    """The durable wait after a transient Graph failure that named no wait."""
    return DEFAULT_RETRY_DELAY_SECONDS / settings().graph_retry_scale


def _credential_for(tenant: ManagedTenant) -> GraphCredential:
    config = settings()
    ref = tenant.graph.credential
    return resolve_credential(kind=ref.type, name=ref.name, key_vault_url=config.key_vault_url,
                              managed_identity_client_id=config.azure_client_id)


@lru_cache(maxsize=1)
def capture_service() -> CaptureService:
    """Listing and capturing policies."""
    return CaptureService(tenants=storage().tenants(), runs=run_service(), snapshots=storage().snapshots(),
                          blobs=storage().blobs(), graph=graph_clients(), credentials=_credential_for,
                          clock=utcnow, backup_sets=storage().backup_sets(), retry_wait=_retry_wait())


@lru_cache(maxsize=1)
def consent_service() -> ConsentService:
    """A managed tenant's consent per policy type, through the captures' Graph port (one token cache)."""
    return ConsentService(graph=capture_service().graph)


@lru_cache(maxsize=1)
def backup_set_service() -> BackupSetService:
    """Backup sets: starts, plans, batches, finishing, reads."""
    return BackupSetService(sets=storage().backup_sets(), runs=run_service(), run_rows=storage().runs(),
                            blobs=storage().blobs(), list_policies=capture_service().list_policies,
                            clock=utcnow, readable_types=consent_service().readable,
                            retry_wait=_retry_wait())


@lru_cache(maxsize=1)
def run_control() -> RunControl:
    """Cancel and rerun; kinds that own more than their run register their hook here."""
    control = RunControl(runs=run_service())
    control.register(RunKind.BACKUPSET_CAPTURE, backup_set_service())
    control.register(RunKind.BACKUPSET_ADD_ITEMS, backup_set_service())
    control.register(RunKind.RESTORE_PREVIEW, restore_service())
    control.register(RunKind.RESTORE_EXECUTE, restore_service())
    return control


@lru_cache(maxsize=1)
def restore_service() -> RestoreService:
    """Restore previews and executions."""
    access = access_service()

    def can_read(principal: Principal, tenant_id: str) -> bool:
        try:
            access.require(principal, tenant_id, Role.READER)
        except AppError:
            return False
        return True

    return RestoreService(runs=run_service(), run_rows=storage().runs(), sets=storage().backup_sets(),
                          restores=storage().restores(),
                          blobs=storage().blobs(), audit=storage().audit(), graph=capture_service().graph,
                          can_read=can_read, clock=utcnow, retry_wait=_retry_wait())


@lru_cache(maxsize=1)
def schedule_service() -> ScheduleService:
    """Scheduled backups and retention."""
    return ScheduleService(sets=storage().backup_sets(), backup_sets=backup_set_service(),
                           tenant_ids=storage().tenants().list_ids, clock=utcnow,
                           blobs=BlobCollector(sets=storage().backup_sets(), snapshots=storage().snapshots(),
                                               blobs=storage().blobs(), clock=utcnow))
