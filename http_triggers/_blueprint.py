"""The HTTP triggers' blueprint (its own module so use-case modules can import it without cycles)."""

from __future__ import annotations

import azure.durable_functions as df

bp = df.Blueprint()
