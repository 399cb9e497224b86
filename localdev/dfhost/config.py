"""Host configuration read from a function app folder (``host.json`` and ``local.settings.json``).

Only the settings the local host honours are read; everything else in ``host.json`` is ignored,
as the real host ignores sections of extensions it does not load.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "HostConfig", "QueueOptions", "load_host_config", "load_local_settings"]

DEFAULT_HUB = "TestHubName"


class ConfigError(ValueError):
    """``host.json`` or ``local.settings.json`` is unreadable or has a wrong type."""


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` settings (defaults as in the Functions host)."""

    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 0.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    """The parts of ``host.json`` the local host uses."""

    route_prefix: str = "api"
    hub_name: str = DEFAULT_HUB
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    overridable_existing_instance_states: str = "NonRunningStates"
    max_orchestration_actions: int = 100_000
    queues: QueueOptions = field(default_factory=QueueOptions)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must contain a JSON object")
    return data


def _section(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    current: Any = data
    for key in keys:
        current = current.get(key, {}) if isinstance(current, dict) else {}
    return current if isinstance(current, dict) else {}


def _int(section: dict[str, Any], key: str, default: int) -> int:
    value = section.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"host.json: {key} must be an integer, got {value!r}") from exc


def _timespan_seconds(value: Any) -> float:
    """Parse a .NET TimeSpan such as ``00:00:30`` or ``1.00:00:00`` (or plain seconds)."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value)
    days = 0
    if "." in text.split(":")[0]:
        day_text, text = text.split(".", 1)
        days = int(day_text)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts[-3:]
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def load_host_config(app_dir: Path) -> HostConfig:
    """Read ``host.json`` from ``app_dir``; a missing file gives the defaults.

    Args:
        app_dir: The function app folder.

    Returns:
        The effective configuration.

    Raises:
        ConfigError: The file is not valid JSON or a value has the wrong type.
    """
    path = app_dir / "host.json"
    data = _read_json(path) if path.exists() else {}
    http = _section(data, "extensions", "http")
    durable = _section(data, "extensions", "durableTask")
    queues = _section(data, "extensions", "queues")
    prefix = http.get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError("host.json: extensions.http.routePrefix must be a string")
    try:
        visibility = _timespan_seconds(queues.get("visibilityTimeout", 0))
    except ValueError as exc:
        raise ConfigError(f"host.json: bad extensions.queues.visibilityTimeout: {exc}") from exc
    return HostConfig(
        route_prefix=prefix.strip("/"),
        hub_name=str(durable.get("hubName") or DEFAULT_HUB),
        max_concurrent_activities=_int(durable, "maxConcurrentActivityFunctions", 10),
        max_concurrent_orchestrations=_int(durable, "maxConcurrentOrchestratorFunctions", 10),
        overridable_existing_instance_states=str(
            durable.get("overridableExistingInstanceStates", "NonRunningStates")),
        max_orchestration_actions=_int(durable, "maxOrchestrationActions", 100_000),
        queues=QueueOptions(
            max_dequeue_count=_int(queues, "maxDequeueCount", 5),
            visibility_timeout_seconds=visibility,
            message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
        ),
    )


def load_local_settings(app_dir: Path,
                        environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy ``local.settings.json`` ``Values`` into the environment, keeping variables already set.

    Args:
        app_dir: The function app folder.
        environ: Target mapping; ``os.environ`` when omitted.

    Returns:
        The names of the variables that were set.

    Raises:
        ConfigError: The file is not valid JSON or ``Values`` is not an object.
    """
    target = os.environ if environ is None else environ
    path = app_dir / "local.settings.json"
    if not path.exists():
        return []
    values = _read_json(path).get("Values", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: Values must be a JSON object")
    applied = []
    for name, value in values.items():
        if name not in target:
            target[name] = "" if value is None else str(value)
            applied.append(name)
    return applied
