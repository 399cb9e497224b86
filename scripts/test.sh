#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: lint, type checks, unit, integration (Azurite),
# conformance of the local Durable host, and end-to-end tests over the whole local stack.
# The test session starts Azurite and the simulators itself and stops them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy (app code)"
.venv/bin/mypy function_app.py shared orchestrators activities http_triggers
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
