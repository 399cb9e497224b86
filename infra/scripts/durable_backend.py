"""Make ``host.json`` follow the Durable backend chosen at provisioning time.

The Bicep parameter ``durableBackend`` (azd variable ``DURABLE_BACKEND``) decides whether Durable
Functions keeps its state in the storage account (``AzureStorage``, the default, what the checked-in
``host.json`` says) or in a Durable Task Scheduler (``DurableTaskScheduler``). ``host.json`` cannot read
app settings for the provider type, so azd runs this script around packaging (``azure.yaml`` hooks):

* ``apply`` (prepackage): for the scheduler, keep the checked-in ``host.json`` aside in ``.azure/`` and
  write the scheduler variant in its place, so the package carries it. For ``AzureStorage`` nothing
  changes.
* ``restore`` (postpackage): put the checked-in file back, so the working tree stays clean.

The variant is rendered from the checked-in file every time, so both never drift apart: only
``extensions.durableTask.storageProvider`` differs. Standard library only; runs on the operator's machine.

Usage::

    python infra/scripts/durable_backend.py apply [--backend DurableTaskScheduler] [--root .]
    python infra/scripts/durable_backend.py restore [--root .]
    python infra/scripts/durable_backend.py render --backend DurableTaskScheduler
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Final

__all__ = [
    "AZURE_STORAGE",
    "BACKENDS",
    "DURABLE_TASK_SCHEDULER",
    "DURABLE_TASK_SCHEDULER_SETTING",
    "apply",
    "main",
    "render_host_json",
    "restore",
]

AZURE_STORAGE: Final = "AzureStorage"
DURABLE_TASK_SCHEDULER: Final = "DurableTaskScheduler"
BACKENDS: Final = (AZURE_STORAGE, DURABLE_TASK_SCHEDULER)

# App setting infra/app/api.bicep provides with the scheduler backend (identity-based: endpoint + client id).
DURABLE_TASK_SCHEDULER_SETTING: Final = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"

# "azureManaged" is the Durable Task Scheduler provider of the Durable extension (bundle 4.32.0 or later).
_SCHEDULER_PROVIDER: Final[dict[str, str]] = {
    "type": "azureManaged",
    "connectionStringName": DURABLE_TASK_SCHEDULER_SETTING,
}

_REPO_ROOT: Final = Path(__file__).resolve().parents[2]
_BACKUP_NAME: Final = "host.json.checked-in"


class BackendError(ValueError):
    """The requested Durable backend is unknown or host.json has no Durable section."""


def render_host_json(host: dict[str, Any], backend: str) -> dict[str, Any]:
    """Return the ``host.json`` content for a Durable backend.

    Args:
        host: The checked-in ``host.json`` (configured for ``AzureStorage``).
        backend: One of :data:`BACKENDS`.

    Returns:
        A new dict; ``host`` itself is not modified. For ``AzureStorage`` it equals ``host``.

    Raises:
        BackendError: ``backend`` is unknown or ``host`` has no ``extensions.durableTask`` section.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown Durable backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    rendered = copy.deepcopy(host)
    durable = rendered.get("extensions", {}).get("durableTask")
    if not isinstance(durable, dict):
        raise BackendError("host.json has no extensions.durableTask section")
    if backend == DURABLE_TASK_SCHEDULER:
        # Everything else (hub name, concurrency, logging) stays as checked in.
        durable["storageProvider"] = dict(_SCHEDULER_PROVIDER)
    return rendered


def _backup_path(root: Path) -> Path:
    return root / ".azure" / _BACKUP_NAME


def apply(root: Path, backend: str) -> bool:
    """Write the ``host.json`` for ``backend`` into ``root``, keeping the checked-in file aside.

    Args:
        root: Folder that holds ``host.json`` (the azd service project).
        backend: One of :data:`BACKENDS`.

    Returns:
        True when ``host.json`` was replaced, False when the checked-in file is used as is.

    Raises:
        BackendError: ``backend`` is unknown.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown Durable backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    # A previous package step may have failed before its restore ran: start from the checked-in file.
    restore(root)
    if backend == AZURE_STORAGE:
        return False
    host_path = root / "host.json"
    backup = _backup_path(root)
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(host_path, backup)
    checked_in = json.loads(backup.read_text(encoding="utf-8"))
    rendered = render_host_json(checked_in, backend)
    host_path.write_text(json.dumps(rendered, indent=2) + "\n", encoding="utf-8")
    return True


def restore(root: Path) -> bool:
    """Put the checked-in ``host.json`` back if :func:`apply` replaced it.

    Args:
        root: Folder that holds ``host.json``.

    Returns:
        True when a file was restored.
    """
    backup = _backup_path(root)
    if not backup.exists():
        return False
    shutil.move(str(backup), root / "host.json")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point used by the azd hooks.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("apply", "restore", "render"))
    parser.add_argument(
        "--backend",
        default=os.environ.get("DURABLE_BACKEND") or AZURE_STORAGE,
        help="AzureStorage or DurableTaskScheduler (default: $DURABLE_BACKEND, else AzureStorage)",
    )
    parser.add_argument("--root", type=Path, default=_REPO_ROOT, help="folder holding host.json")
    args = parser.parse_args(argv)
    root: Path = args.root
    try:
        if args.command == "render":
            host = json.loads((root / "host.json").read_text(encoding="utf-8"))
            sys.stdout.write(json.dumps(render_host_json(host, args.backend), indent=2) + "\n")
        elif args.command == "apply":
            replaced = apply(root, args.backend)
            note = "scheduler variant written" if replaced else "checked-in file kept"
            sys.stdout.write(f"host.json for Durable backend {args.backend}: {note}\n")
        else:
            restored = restore(root)
            sys.stdout.write("host.json restored\n" if restored else "host.json unchanged\n")
    except BackendError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
