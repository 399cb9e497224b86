"""The activities' blueprint, and the guard every activity runs behind.

Whatever an activity raises crosses the durable boundary: the host records the exception's message (and
often its traceback) in the orchestration history, and the orchestrator sees it. Exception texts are
untrusted (an SDK or Microsoft Graph may have put anything in them, a credential included), so every activity
is wrapped in :func:`safe_activity`, which logs the failure without its text and raises an
:class:`ActivityFailed` that carries only our stable code.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import azure.durable_functions as df

from shared.errors import AppError

__all__ = ["ActivityFailed", "bp", "safe_activity"]

logger = logging.getLogger(__name__)

bp = df.Blueprint()

_Result = TypeVar("_Result")


class ActivityFailed(Exception):
    """An activity failed; the message is only the activity's name and our stable code."""

    def __init__(self, activity: str, code: str) -> None:
        super().__init__(f"activity {activity} failed: {code}")
        self.activity = activity
        self.code = code


def safe_activity(
    function: Callable[[dict[str, Any]], Awaitable[_Result]],
) -> Callable[[dict[str, Any]], Awaitable[_Result]]:
    """Let only :class:`ActivityFailed` (our code, no upstream text) leave ``function``.

    Apply it below the trigger decorators; ``functools.wraps`` keeps the signature the bindings read.
    """

    @functools.wraps(function)
    async def guarded(payload: dict[str, Any]) -> _Result:
        try:
            return await function(payload)
        except Exception as exc:  # noqa: BLE001 - nothing else may cross the durable boundary
            code = exc.instance_code if isinstance(exc, AppError) else "internal-error"
            # The frames say where it failed; the exception's text is left out (it may quote an upstream).
            frames = "".join(traceback.format_tb(exc.__traceback__))
            logger.error("activity failed activity=%s exception=%s error_code=%s\n%s", function.__name__,
                         type(exc).__name__, code, frames)
            raise ActivityFailed(function.__name__, code) from None

    return guarded
