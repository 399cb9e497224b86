"""Run the local host as a subprocess from tests, benchmarks and launchers.

``running_host`` starts ``python -m localdev.dfhost serve`` in its own process group on free
ports, waits until ``GET /admin/host/status`` reports ``Running`` and stops it on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from localdev.procs import ROOT, free_port, stop_process

__all__ = ["HostHandle", "cpu_burners", "running_host"]


@dataclass
class HostHandle:
    """A running host subprocess."""

    base_url: str
    rpc_base_url: str
    pid: int
    log_path: Path
    _args: list[str] = field(default_factory=list, repr=False)
    _env: dict[str, str] = field(default_factory=dict, repr=False)
    _startup_timeout: float = field(default=60.0, repr=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def _start(self) -> None:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the handle
        self._proc = subprocess.Popen(self._args, env=self._env, cwd=ROOT, stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        self.pid = self._proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        url = self.base_url + "/admin/host/status"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"dfhost exited with code {self._proc.returncode} during "
                                   f"start-up:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError), \
                    urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and json.load(response).get("state") == "Running":
                    return
            time.sleep(0.1)
        raise TimeoutError(f"dfhost not ready within {self._startup_timeout:.0f}s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the host log (for assertion messages)."""
        if self._log is not None:
            self._log.flush()
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL the host process (crash tests)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same ports and storage, and wait until ready."""
        if self._proc is not None and self._proc.poll() is None:
            stop_process(self.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        self._start()

    def stop(self) -> None:
        """Stop the process group (TERM, then KILL) and close the log."""
        if self._proc is not None:
            stop_process(self.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def running_host(app_dir: Path, *, connection_string: str, hub: str | None = None,
                 clock: str = "real", extra_env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> Iterator[HostHandle]:
    """Run the host on ``app_dir`` for the duration of the ``with`` block.

    Args:
        app_dir: Function app folder (with ``function_app.py``).
        connection_string: Storage (Azurite) connection string for state and queues.
        hub: Task hub name; host.json or ``TestHubName`` when omitted.
        clock: ``real`` or ``virtual`` (advance with ``POST /admin/dfhost/clock/advance``).
        extra_env: Extra environment variables for the host process.
        startup_timeout: Seconds to wait for the host to report ``Running``.

    Yields:
        The handle of the running host.
    """
    port, rpc_port = free_port(), free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="dfhost-"))
    args = [sys.executable, "-m", "localdev.dfhost", "serve", "--app", str(Path(app_dir).resolve()),
            "--port", str(port), "--rpc-port", str(rpc_port), "--storage", connection_string,
            "--clock", clock]
    if hub:
        args += ["--hub", hub]
    env = dict(os.environ)
    env.update(extra_env or {})
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    handle = HostHandle(base_url=f"http://127.0.0.1:{port}",
                        rpc_base_url=f"http://127.0.0.1:{rpc_port}/durabletask/", pid=0,
                        log_path=log_dir / "host.log", _args=args, _env=env,
                        _startup_timeout=startup_timeout)
    handle._start()
    try:
        yield handle
    finally:
        handle.stop()


_BURN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def cpu_burners(count: int, *, seconds: float) -> Iterator[None]:
    """Keep ``count`` processes spinning on the CPU for the ``with`` block (load tests).

    Each burner also ends by itself after ``seconds``, so a crashed test cannot leave them
    running.
    """
    procs = [subprocess.Popen([sys.executable, "-c", _BURN.format(seconds=float(seconds))],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
             for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait(timeout=10)
