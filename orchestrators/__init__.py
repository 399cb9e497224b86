"""Deterministic generator orchestrators: no I/O, no clock, no randomness, no settings."""

from __future__ import annotations

from orchestrators._blueprint import bp

__all__ = ["bp"]
