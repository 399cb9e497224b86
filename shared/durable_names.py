"""Names of orchestrators and activities: the only strings that cross the durable boundary by name."""

from __future__ import annotations

from typing import Final

POLICY_CAPTURE_ORCHESTRATOR: Final[str] = "policy_capture_orchestrator"

MARK_RUN_RUNNING: Final[str] = "mark_run_running"
CAPTURE_POLICY: Final[str] = "capture_policy"
COMPLETE_RUN: Final[str] = "complete_run"
