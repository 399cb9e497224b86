"""Thin HTTP adapters: authenticate, parse, call one service, render."""

from __future__ import annotations

from http_triggers import health  # noqa: F401 - registers its routes on the blueprint
from http_triggers._blueprint import bp

__all__ = ["bp"]
