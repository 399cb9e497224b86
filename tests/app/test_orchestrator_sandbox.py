"""The orchestrator sandbox: ruff rejects clocks, randomness, id generators, config, I/O and plain logging.

Probe files are linted with the sandbox's own configuration, from a temporary copy laid out like the
repository (``pyproject.toml`` and ``orchestrators/ruff.toml``), exactly as ``ruff check .`` lints a file
placed in ``orchestrators/``. The real orchestrators must still pass.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = REPO / ".venv" / "bin" / "ruff"

# probe name -> (source of a file in orchestrators/, the banned name ruff must report)
BANNED: dict[str, tuple[str, str]] = {
    "secrets_token": ("import secrets\n\nTOKEN = secrets.token_hex(8)\n", "secrets"),
    "secrets_from": ("from secrets import randbits\n\nBITS = randbits(8)\n", "secrets"),
    "time_time": ("import time\n\nNOW = time.time()\n", "time"),
    "time_monotonic": ("from time import monotonic\n\nNOW = monotonic()\n", "time"),
    "uuid1": ("import uuid\n\nID = uuid.uuid1()\n", "uuid"),
    "uuid4": ("from uuid import uuid4\n\nID = uuid4()\n", "uuid"),
    "date_today": ("from datetime import date\n\nTODAY = date.today()\n", "datetime.date.today"),
    "datetime_today": ("from datetime import datetime\n\nNOW = datetime.today()\n",
                       "datetime.datetime.today"),
    "datetime_now": ("from datetime import UTC, datetime\n\nNOW = datetime.now(UTC)\n",
                     "datetime.datetime.now"),
    "os_urandom": ("import os\n\nSALT = os.urandom(8)\n", "os"),
    "os_urandom_from": ("from os import urandom\n\nSALT = urandom(8)\n", "os"),
    "os_environ": ("import os\n\nHUB = os.environ['HUB']\n", "os"),
    "random": ("import random\n\nPICK = random.random()\n", "random"),
    "new_run_id": ("from shared.domain import new_run_id\n\nID = new_run_id\n", "shared.domain.new_run_id"),
    "new_ulid": ("from shared.domain import new_ulid\n\nID = new_ulid\n", "shared.domain.new_ulid"),
    "new_audit_id": ("from shared.domain import new_audit_id\n\nID = new_audit_id\n",
                     "shared.domain.new_audit_id"),
    "audit_ids": ("from shared.domain.audit import new_audit_id\n\nID = new_audit_id\n",
                  "shared.domain.audit.new_audit_id"),
    "ids_module": ("from shared.domain.ids import new_run_id\n\nID = new_run_id\n", "shared.domain.ids"),
    "ids_import": ("import shared.domain.ids\n\nID = shared.domain.ids.new_ulid\n", "shared.domain.ids"),
    "logging": ("import logging\n\nLOG = logging.getLogger(__name__)\n", "logging"),
    "storage": ("from shared.storage.factory import StorageFactory\n\nS = StorageFactory\n",
                "shared.storage"),
    "credentials": ("from shared.credentials import resolve_credential\n\nR = resolve_credential\n",
                    "shared.credentials"),
    "httpx": ("import httpx\n\nC = httpx.Client\n", "httpx"),
    "socket": ("import socket\n\nS = socket.socket\n", "socket"),
    "subprocess": ("import subprocess\n\nP = subprocess.run\n", "subprocess"),
}

# What an orchestrator may use: the replay-safe context, pure domain code and the replay-safe logger.
ALLOWED = '''from datetime import timedelta

from shared.domain import RunStatus
from shared.domain.capture import next_capture_step

from orchestrators._logging import ReplaySafeLogger


def orchestrator(context):
    log = ReplaySafeLogger(context, __name__)
    log.info("run %s", context.instance_id)
    deadline = context.current_utc_datetime + timedelta(seconds=30)
    yield context.create_timer(deadline)
    return context.new_uuid(), RunStatus.RUNNING, next_capture_step
'''


def _ruff(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RUFF), "check", "--no-cache", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Lint every probe once; returns probe name -> messages of banned-api findings (TID251)."""
    root = tmp_path_factory.mktemp("sandbox")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    sandbox = root / "orchestrators"
    sandbox.mkdir()
    shutil.copy(REPO / "orchestrators" / "ruff.toml", sandbox / "ruff.toml")
    for name, (source, _) in BANNED.items():
        (sandbox / f"probe_{name}.py").write_text(source, encoding="utf-8")
    (sandbox / "probe_allowed.py").write_text(ALLOWED, encoding="utf-8")
    result = _ruff(["--output-format", "json", "."], cwd=root)
    findings = json.loads(result.stdout)
    out: dict[str, list[str]] = {}
    for finding in findings:
        if finding["code"] == "TID251":
            probe = Path(finding["filename"]).stem.removeprefix("probe_")
            out.setdefault(probe, []).append(finding["message"])
    return out


@pytest.mark.parametrize("probe", sorted(BANNED))
def test_each_non_deterministic_or_effectful_use_is_reported(reported: dict[str, list[str]],
                                                             probe: str) -> None:
    banned_name = BANNED[probe][1]
    messages = reported.get(probe, [])
    assert any(f"`{banned_name}` is banned" in message for message in messages), messages


def test_replay_safe_code_is_not_reported(reported: dict[str, list[str]]) -> None:
    assert reported.get("allowed", []) == []


def test_the_real_orchestrators_pass_the_sandbox() -> None:
    result = _ruff(["orchestrators"], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
