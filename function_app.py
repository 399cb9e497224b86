"""Composition root: the Durable Functions app and its blueprints. No logic, clients or settings here."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from activities import bp as activities_bp
from http_triggers import bp as http_bp
from orchestrators import bp as orchestrators_bp

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(http_bp)
app.register_functions(orchestrators_bp)
app.register_functions(activities_bp)
