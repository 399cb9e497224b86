"""Replay-safe logging for orchestrators.

An orchestrator's code runs again from the start every time it resumes, so a plain log line would be
written once per replay. Orchestrators log through :class:`ReplaySafeLogger`, which writes only while the
orchestration executes new work (``context.is_replaying`` is false); the sandbox bans ``logging`` elsewhere.
"""

from __future__ import annotations

import logging  # noqa: TID251 - the one door to logging in orchestrators, behind the replay check

import azure.durable_functions as df

__all__ = ["ReplaySafeLogger"]


class ReplaySafeLogger:
    """A logger that writes only when the orchestration is not replaying.

    Pass ids, codes and counts as arguments; never text that Graph or Entra sent back.
    """

    def __init__(self, context: df.DurableOrchestrationContext, name: str) -> None:
        """Bind the logger to one orchestration's context; ``name`` is the logger name (the module)."""
        self._context = context
        self._logger = logging.getLogger(name)

    def info(self, message: str, *args: object) -> None:
        """Log at INFO unless replaying."""
        self._log(logging.INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        """Log at WARNING unless replaying."""
        self._log(logging.WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        """Log at ERROR unless replaying."""
        self._log(logging.ERROR, message, args)

    def _log(self, level: int, message: str, args: tuple[object, ...]) -> None:
        if not self._context.is_replaying:
            self._logger.log(level, message, *args)
