"""The orchestrators' blueprint."""

from __future__ import annotations

import azure.durable_functions as df

bp = df.Blueprint()
