"""Deterministic generator orchestrators: no I/O, no clock, no randomness, no settings."""

from __future__ import annotations

from orchestrators import backup_set, policy_capture, restore  # noqa: F401 - registers the orchestrators on the blueprint
from orchestrators._blueprint import bp

__all__ = ["bp"]
