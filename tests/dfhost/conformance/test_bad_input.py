"""The CLI refuses bad input with a clear message and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from localdev.procs import ROOT, free_port
from tests.dfhost.conformance.conftest import FIXTURES


def _serve(app: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "localdev.dfhost", "serve", "--app", str(app),
         "--port", str(free_port()), "--rpc-port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_missing_app_folder(tmp_path: Path) -> None:
    result = _serve(tmp_path / "missing")
    assert result.returncode == 2
    assert "App folder not found" in result.stderr


def test_folder_without_function_app(tmp_path: Path) -> None:
    result = _serve(tmp_path)
    assert result.returncode == 2
    assert "No function_app.py" in result.stderr


def test_import_error_shows_the_full_traceback() -> None:
    result = _serve(FIXTURES / "import_error")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "import_error/function_app.py" in result.stderr
    assert "No module named 'dependency_that_is_not_installed'" in result.stderr
    assert "0 functions" not in result.stderr + result.stdout


def test_module_without_function_app_object() -> None:
    result = _serve(FIXTURES / "no_app_object")
    assert result.returncode == 2
    assert "defines no function app object" in result.stderr
