#!/usr/bin/env bash
# Sets everything up, starts the local stack (Azurite, Graph + Entra simulator, local Durable host) in the
# background, and runs the demo through the public HTTP API: a policy snapshot, a whole-tenant backup set, and
# a preview and restore after someone deletes and edits policies by hand.
# The stack keeps running afterwards so you can explore; stop it with: .venv/bin/python -m localdev.stack down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m localdev.stack down >/dev/null 2>&1 || true
echo "==> starting the local stack"
.venv/bin/python -m localdev.stack up --background --fresh
echo "==> running the demo"
status=0
.venv/bin/python -m localdev.demo || status=$?
echo
echo "The stack is still running. Stop it with: .venv/bin/python -m localdev.stack down"
exit $status
