"""The seam between the host front end (function loading) and the durable engine.

The engine never imports user code itself: it asks a ``FunctionInvoker`` to run
orchestrators and activities, which keeps replay logic testable with fakes.
"""

from __future__ import annotations

from typing import Protocol


class FunctionInvoker(Protocol):
    """Runs the orchestrator and activity functions of a loaded function app."""

    def orchestrator_names(self) -> set[str]:
        """Return the names of all orchestration-trigger functions."""
        ...

    def activity_names(self) -> set[str]:
        """Return the names of all activity-trigger functions."""
        ...

    def run_orchestrator(self, name: str, context_json: str) -> str:
        """Run one orchestrator episode.

        Calls the orchestration trigger's user function with the context JSON
        string, as the Python worker does, and returns the ``OrchestratorState``
        JSON string. Whatever the SDK raises (including the ``$OutOfProcData$``
        exception) propagates unchanged.

        Args:
            name: Orchestrator function name.
            context_json: The durable context JSON (history, input, instance id).

        Returns:
            The orchestrator state JSON string produced by the SDK.
        """
        ...

    async def run_activity(self, name: str, input_json: str | None) -> str:
        """Run one activity invocation.

        Decodes the input with ``ActivityTriggerConverter``, calls the user
        function (sync functions in a worker thread, async ones awaited) and
        encodes the result the same way.

        Args:
            name: Activity function name.
            input_json: JSON-encoded activity input, or None.

        Returns:
            The JSON-encoded result.
        """
        ...


class RemoteInvocationError(Exception):
    """A function that failed in another process, as that process reported it.

    ``str()`` is the original exception's message and ``details`` its
    ``traceback.format_exception_only`` text, so the history records the same ``Reason`` and
    ``Details`` as when the function runs in the engine's own process.
    """

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details
