"""The CLI: bad input exits with code 2 and says why; start-up output; clean SIGTERM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from localdev.dfhost.testing import running_host
from localdev.procs import ROOT, free_port, port_open
from tests.dfhost.conformance.conftest import FIXTURES


def _serve(app: Path, port: int | None = None, *options: str,
           **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_vars)
    env.pop("AzureWebJobsStorage", None)  # in-memory state: these runs never get that far
    return subprocess.run(
        [sys.executable, "-m", "localdev.dfhost", "serve", "--app", str(app),
         "--port", str(port or free_port()), "--rpc-port", str(free_port()), *options],
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


def test_a_bad_worker_process_count_is_refused() -> None:
    for options, env in ((("--workers", "0"), {}), (("--workers", "11"), {}),
                         ((), {"FUNCTIONS_WORKER_PROCESS_COUNT": "two"})):
        result = _serve(FIXTURES / "durable_app", None, *options, **env)
        assert result.returncode == 2, (options, env, result.stderr)
        assert "worker process count" in result.stderr, result.stderr
    result = _serve(FIXTURES / "durable_app", None, "--workers", "2", "--engine", "thread")
    assert result.returncode == 2
    assert "needs the engine in its own process" in result.stderr
    result = _serve(FIXTURES / "durable_app", None, "--durable-apart")
    assert result.returncode == 2
    assert "need a second worker process" in result.stderr


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = _serve(FIXTURES / "triggers_app", busy.getsockname()[1])
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr


def test_sigterm_stops_the_host_cleanly(azurite_connection_string: str, tmp_path: Path) -> None:
    with running_host(FIXTURES / "triggers_app", connection_string=azurite_connection_string,
                      extra_env={"DFHOST_STATE_DIR": str(tmp_path), "WORK_QUEUE": "sigterm"},
                      ) as host:
        port = int(host.base_url.rsplit(":", 1)[1])
        assert port_open(port)
    # Leaving the block sends SIGTERM: the engine stops and the ports close.
    log = host.log_path.read_text(errors="replace")
    assert "Stopping the host" in log
    assert "Host stopped" in log
    assert "Traceback" not in log
    assert not port_open(port)


def test_startup_prints_the_function_urls(azurite_connection_string: str, tmp_path: Path) -> None:
    with running_host(FIXTURES / "durable_app", connection_string=azurite_connection_string,
                      extra_env={"DFHOST_STATE_DIR": str(tmp_path)}) as host:
        log = host.log_tail(20000)
    assert f"greet: [GET,POST] {host.base_url}/api/greet/{{name?}}" in log
    assert f"Durable RPC: {host.rpc_base_url}" in log
    assert "Task hub: ConformanceHub" in log
