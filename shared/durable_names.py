"""Names of orchestrators and activities: the only strings that cross the durable boundary by name."""

from __future__ import annotations

from typing import Final

POLICY_CAPTURE_ORCHESTRATOR: Final[str] = "policy_capture_orchestrator"

MARK_RUN_RUNNING: Final[str] = "mark_run_running"
CAPTURE_POLICY: Final[str] = "capture_policy"
COMPLETE_RUN: Final[str] = "complete_run"

BACKUP_SET_ORCHESTRATOR: Final[str] = "backup_set_orchestrator"
BACKUP_SET_BATCH_ORCHESTRATOR: Final[str] = "backup_set_batch_orchestrator"

PLAN_BACKUP_SET: Final[str] = "plan_backup_set"
READ_BACKUP_SET_BATCH: Final[str] = "read_backup_set_batch"
CLOSE_BACKUP_SET_BATCH: Final[str] = "close_backup_set_batch"
FINISH_BACKUP_SET: Final[str] = "finish_backup_set"
CAPTURE_BACKUP_SET_CHUNK: Final[str] = "capture_backup_set_chunk"

RESTORE_ORCHESTRATOR: Final[str] = "restore_orchestrator"

PLAN_RESTORE: Final[str] = "plan_restore"
APPLY_RESTORE_ITEM: Final[str] = "apply_restore_item"
FINISH_RESTORE: Final[str] = "finish_restore"
RESTORE_BATCH_ORCHESTRATOR: Final[str] = "restore_batch_orchestrator"
