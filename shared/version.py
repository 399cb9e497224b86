"""The service version shown by the health route."""

from __future__ import annotations

VERSION = "0.1.0"
