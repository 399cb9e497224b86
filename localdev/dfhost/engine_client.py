"""What the host front end needs from the durable engine, wherever the engine runs.

The durable HTTP API and the admin endpoints hold an :class:`EngineClient`: either an
:class:`~localdev.dfhost.engine_thread.EngineHandle` (engine on a thread of this process) or an
:class:`~localdev.dfhost.engine_process.RemoteEngine` (engine in a process of its own). Both
raise the exceptions of :mod:`localdev.dfhost.engine`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

__all__ = ["EngineClient"]


class EngineClient(Protocol):
    """The client side of :class:`~localdev.dfhost.engine.Engine`, callable from the front end."""

    async def start_instance(self, name: str, instance_id: str | None, input_json: str | None,
                             *, version: str | None = None) -> str:
        """See :meth:`Engine.start_instance`."""
        ...

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False,
                         show_input: bool = True) -> dict[str, Any] | None:
        """See :meth:`Engine.get_status`."""
        ...

    async def query(self, *, created_from: datetime | None = None,
                    created_to: datetime | None = None, runtime_status: list[str] | None = None,
                    instance_id_prefix: str | None = None,
                    show_input: bool = True) -> list[dict[str, Any]]:
        """See :meth:`Engine.query`."""
        ...

    async def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """See :meth:`Engine.raise_event`."""
        ...

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.terminate`."""
        ...

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.suspend`."""
        ...

    async def resume(self, instance_id: str, reason: str | None) -> None:
        """See :meth:`Engine.resume`."""
        ...

    async def purge(self, instance_id: str) -> int:
        """See :meth:`Engine.purge`."""
        ...

    async def purge_by(self, *, created_from: datetime | None = None,
                       created_to: datetime | None = None,
                       runtime_status: list[str] | None = None) -> int:
        """See :meth:`Engine.purge_by`."""
        ...

    async def advance_clock(self, seconds: float) -> None:
        """See :meth:`Engine.advance_clock`."""
        ...

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - same interface as Engine
        """See :meth:`Engine.wait_idle`."""
        ...

    async def describe(self) -> dict[str, Any]:
        """Where the engine runs: ``mode`` (thread or process), ``pid`` and ``thread``."""
        ...
