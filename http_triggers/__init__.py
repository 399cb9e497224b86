"""Thin HTTP adapters: authenticate, parse, call one service, render."""

from __future__ import annotations

# Importing a use-case module registers its routes on the blueprint.
from http_triggers import (  # noqa: F401
    audit,
    backup_sets,
    health,
    notifications,
    openapi,
    permissions,
    policies,
    policy_types,
    progress,
    progress_page,
    restores,
    runs,
    schedules,
    snapshots,
    subscriptions,
    tenants,
)
from http_triggers._blueprint import bp

__all__ = ["bp"]
