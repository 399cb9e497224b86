"""Run the simulator as a subprocess for tests (free port, private CA folder)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from localdev.graphsim.control import SimControl
from localdev.procs import ROOT, free_port, stop_process

__all__ = ["SimHandle", "running_simulator"]


@dataclass
class SimHandle:
    """A running simulator: where it is, what to trust, and its control client."""

    base_url: str
    ca_file: Path
    control: SimControl
    pid: int

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the simulator's CA (for httpx ``verify=``)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@contextmanager
def running_simulator(*, seed_demo: bool = False, startup_timeout: float = 30.0,
                      state_file: Path | None = None) -> Iterator[SimHandle]:
    """Start ``python -m localdev.graphsim serve`` on a free port and stop it afterwards.

    Args:
        seed_demo: Seed the demo tenant at start (``localdev.graphsim.seed.DEMO_TENANT_ID``).
        startup_timeout: Seconds to wait for ``GET /_sim/health``.
        state_file: Persist tenants to this file (and load it at start), to test restarts.

    Yields:
        The handle of the running simulator.

    Raises:
        RuntimeError: The simulator exited or did not answer in time.
    """
    work = Path(tempfile.mkdtemp(prefix="graphsim-"))
    port = free_port()
    log_path = work / "graphsim.log"
    cmd = [sys.executable, "-m", "localdev.graphsim", "serve", "--port", str(port),
           "--tls-dir", str(work / "tls")]
    if seed_demo:
        cmd.append("--seed-demo")
    if state_file is not None:
        cmd += ["--state-file", str(state_file)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base_url = f"https://localhost:{port}"
    ca_file = work / "tls" / "ca.pem"
    control: SimControl | None = None
    try:
        _wait_healthy(proc, base_url, ca_file, startup_timeout, log_path)
        control = SimControl(base_url, ca_file)
        yield SimHandle(base_url=base_url, ca_file=ca_file, control=control, pid=proc.pid)
    finally:
        if control is not None:
            control.close()
        stop_process(proc.pid)
        shutil.rmtree(work, ignore_errors=True)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, ca_file: Path, timeout: float,
                  log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"graph simulator exited with code {proc.returncode}\n{tail}")
        if ca_file.exists():
            try:
                response = httpx.get(f"{base_url}/_sim/health", timeout=2,
                                     verify=ssl.create_default_context(cafile=str(ca_file)))
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"graph simulator did not become healthy within {timeout:.0f}s")
