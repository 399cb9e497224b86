"""Thin, idempotent adapters from the durable boundary to services."""

from __future__ import annotations

from activities._blueprint import bp

__all__ = ["bp"]
