"""Thin, idempotent adapters from the durable boundary to services."""

from __future__ import annotations

from activities import backup_set, capture, outbox, recovery, restore, runs, schedules  # noqa: F401 - register the functions on the blueprint
from activities._blueprint import bp

__all__ = ["bp"]
