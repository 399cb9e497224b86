#!/usr/bin/env bash
# Installs what the project needs when it is missing: a virtual environment with the pinned pip packages
# and the pinned npm packages (Azurite). Safe to run again: it reinstalls only when a pin file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python packages"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
nstamp=node_modules/.package-lock.sha
nwant=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$nstamp" 2>/dev/null)" != "$nwant" ]; then
  echo "==> installing npm packages (Azurite)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$nwant" > "$nstamp"
fi
