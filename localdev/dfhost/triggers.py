"""Timer and queue triggers: NCRONTAB schedules and Azure Storage queues (Azurite).

Both follow the Functions host: timer schedules have six fields with seconds first and may run
on start-up; queue messages are base64 by default, carry a dequeue count, and after
``maxDequeueCount`` failed attempts move to ``<queue>-poison``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import traceback
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient
from cronsim import CronSim

from localdev.dfhost.config import QueueOptions
from localdev.dfhost.registry import QUEUE, TIMER, FunctionSpec, Registry
from shared.redaction import redact

__all__ = ["TriggerRunner", "next_occurrence", "resolve_setting_expression"]

logger = logging.getLogger(__name__)

STORAGE_SETTING = "AzureWebJobsStorage"
MIN_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0


def next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first NCRONTAB occurrence strictly after ``after`` (UTC).

    Args:
        schedule: Six-field NCRONTAB expression (seconds first).
        after: Reference time, timezone-aware.

    Returns:
        The next fire time.
    """
    if len(schedule.split()) != 6:
        raise ValueError(f"Timer schedule {schedule!r} must have 6 fields (seconds first)")
    return next(iter(CronSim(schedule, after.astimezone(UTC))))


def resolve_setting_expression(value: str) -> str:
    """Replace ``%NAME%`` binding expressions with app settings, as the host does.

    Args:
        value: A binding property such as ``%WORK_QUEUE%`` or ``orders``.

    Returns:
        The resolved value.
    """
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise RuntimeError(f"App setting {name} (used as %{name}%) is not set")
        return os.environ[name]

    return re.sub(r"%([^%]+)%", lookup, value)


def _log_failure(spec: FunctionSpec, exc: BaseException) -> None:
    logger.error("Function %s failed:\n%s", spec.name,
                 redact("".join(traceback.format_exception(exc)), limit=None))


class TriggerRunner:
    """Runs every timer and queue trigger of an app until stopped."""

    def __init__(self, *, registry: Registry, client_json: str, queues: QueueOptions) -> None:
        self.registry = registry
        self.client_json = client_json
        self.queues = queues
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one task per timer and queue function."""
        for spec in self.registry.of_type(TIMER):
            self._tasks.append(asyncio.create_task(self._guard(spec, self._run_timer(spec))))
        for spec in self.registry.of_type(QUEUE):
            self._tasks.append(asyncio.create_task(self._guard(spec, self._run_queue(spec))))

    async def _guard(self, spec: FunctionSpec, runner: Coroutine[Any, Any, None]) -> None:
        try:
            await runner
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - report a broken trigger instead of dying silently
            logger.error("Trigger of function %s stopped: %s", spec.name, redact(str(exc)))

    async def stop(self) -> None:
        """Cancel the trigger tasks and wait for them."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _fire_timer(self, spec: FunctionSpec, *, past_due: bool, last: datetime | None,
                          following: datetime) -> None:
        status = {"Last": last.isoformat() if last else None, "Next": following.isoformat(),
                  "LastUpdated": datetime.now(UTC).isoformat()}
        request = TimerRequest(past_due=past_due, schedule_status=status,
                                    schedule={"AdjustForDST": True})
        try:
            await self.registry.call(spec, self.registry.build_kwargs(spec, request,
                                                                      self.client_json))
        except Exception as exc:  # noqa: BLE001 - a failing timer function must keep its schedule
            _log_failure(spec, exc)

    async def _run_timer(self, spec: FunctionSpec) -> None:
        schedule = spec.trigger.schedule
        last: datetime | None = None
        if spec.trigger.run_on_startup:
            now = datetime.now(UTC)
            await self._fire_timer(spec, past_due=False, last=None,
                                   following=next_occurrence(schedule, now))
            last = now
        while True:
            due = next_occurrence(schedule, datetime.now(UTC))
            await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            following = next_occurrence(schedule, due)
            await self._fire_timer(spec, past_due=False, last=last, following=following)
            last = due

    def _connection_string(self, spec: FunctionSpec) -> str:
        setting = getattr(spec.trigger, "connection", None) or STORAGE_SETTING
        value = os.environ.get(setting) or os.environ.get(STORAGE_SETTING)
        if not value:
            raise RuntimeError(f"Queue trigger {spec.name}: app setting {setting} is not set")
        if value.strip() == "UseDevelopmentStorage=true":
            raise RuntimeError(f"Queue trigger {spec.name}: use an explicit Azurite connection "
                               "string (ports are chosen at start-up)")
        return value

    def _decode(self, content: str) -> bytes:
        if self.queues.message_encoding == "none":
            return content.encode()
        return base64.b64decode(content)

    def _encode(self, body: bytes) -> str:
        if self.queues.message_encoding == "none":
            return body.decode()
        return base64.b64encode(body).decode()

    async def _run_queue(self, spec: FunctionSpec) -> None:
        name = resolve_setting_expression(spec.trigger.queue_name)
        conn = self._connection_string(spec)
        async with QueueClient.from_connection_string(conn, name) as queue, \
                QueueClient.from_connection_string(conn, f"{name}-poison") as poison:
            with contextlib.suppress(ResourceExistsError):
                await queue.create_queue()
            delay = MIN_POLL_SECONDS
            while True:
                handled = 0
                try:
                    async for message in queue.receive_messages(max_messages=16,
                                                                visibility_timeout=600):
                        handled += 1
                        await self._handle_message(spec, queue, poison, message)
                except Exception as exc:  # noqa: BLE001 - storage hiccups must not stop polling
                    logger.warning("Queue %s: polling failed: %s", name, redact(repr(exc)))
                delay = MIN_POLL_SECONDS if handled else min(delay * 2, MAX_POLL_SECONDS)
                await asyncio.sleep(0 if handled else delay)

    async def _handle_message(self, spec: FunctionSpec, queue: QueueClient, poison: QueueClient,
                              message: QueueMessage) -> None:
        content = str(getattr(message, "content", "") or "")
        try:
            body = self._decode(content)
        except ValueError:
            logger.error("Queue %s: message %s is not base64; moving it to the poison queue",
                         queue.queue_name, getattr(message, "id", "?"))
            await self._poison(poison, content)
            await queue.delete_message(message)
            return
        dequeue_count = int(getattr(message, "dequeue_count", 1) or 1)
        argument = FunctionQueueMessage(  # type: ignore[no-untyped-call]
            id=getattr(message, "id", None), body=body, dequeue_count=dequeue_count,
            expiration_time=getattr(message, "expires_on", None),
            insertion_time=getattr(message, "inserted_on", None),
            time_next_visible=getattr(message, "next_visible_on", None),
            pop_receipt=getattr(message, "pop_receipt", None))
        try:
            await self.registry.call(spec, self.registry.build_kwargs(spec, argument,
                                                                      self.client_json))
        except Exception as exc:  # noqa: BLE001 - failures are retried, then poisoned
            _log_failure(spec, exc)
            name = queue.queue_name
            if dequeue_count >= self.queues.max_dequeue_count:
                logger.warning("Queue %s: message %s failed %d times; moving it to %s-poison",
                               name, argument.id, dequeue_count, name)
                await self._poison(poison, self._encode(body))
                await queue.delete_message(message)
            else:
                await queue.update_message(
                    message, visibility_timeout=int(self.queues.visibility_timeout_seconds))
            return
        await queue.delete_message(message)

    async def _poison(self, poison: QueueClient, content: str) -> None:
        with contextlib.suppress(ResourceExistsError):
            await poison.create_queue()
        await poison.send_message(content)
