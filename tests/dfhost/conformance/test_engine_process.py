"""The durable engine runs in a process of its own, lives and dies with the host, and thread mode stays.

With more than one worker process (``FUNCTIONS_WORKER_PROCESS_COUNT``), invocations spread over them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

import httpx

from localdev.dfhost.testing import HostHandle, running_host
from tests.dfhost.conformance.conftest import DURABLE_APP, TERMINAL

WEBHOOK = "/runtime/webhooks/durabletask"


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.05)
    return False


def _engine(host: HostHandle) -> dict[str, object]:
    response = httpx.get(f"{host.base_url}/admin/dfhost/engine", timeout=10)
    assert response.status_code == 200, response.text
    described: dict[str, object] = response.json()
    return described


def _run_chaining(host: HostHandle) -> dict[str, object]:
    with httpx.Client(base_url=host.base_url, timeout=30) as http:
        started = http.post("/api/orchestrators/chaining")
        assert started.status_code == 202, started.text
        instance_id = started.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status: dict[str, object] = http.get(f"{WEBHOOK}/instances/{instance_id}").json()
            if status["runtimeStatus"] in TERMINAL:
                return status
            time.sleep(0.1)
    raise AssertionError(f"chaining did not finish:\n{host.log_tail()}")


def _host(connection_string: str, state_dir: Path,
          **env: str) -> contextlib.AbstractContextManager[HostHandle]:
    return running_host(DURABLE_APP, connection_string=connection_string,
                        hub="proc" + uuid.uuid4().hex[:10],
                        extra_env={"DFHOST_STATE_DIR": str(state_dir), **env})


def test_the_engine_runs_in_another_process_that_dies_when_the_host_is_killed(
        azurite_connection_string: str, tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path) as host:
        engine = _engine(host)
        # What the stack gets without options: the engine apart from the worker process.
        assert engine["mode"] == "process"
        engine_pid = int(str(engine["pid"]))
        assert engine_pid != host.pid
        assert _running(engine_pid)
        assert _parent_of(engine_pid) == host.pid
        # Orchestrations run across the two processes: replays and activities in the host.
        status = _run_chaining(host)
        assert status["runtimeStatus"] == "Completed", status
        assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
        # SIGKILL to the host alone (not its process group): nothing can clean up, the engine
        # must still go with it.
        os.kill(host.pid, signal.SIGKILL)
        assert _wait_gone(host.pid, 10)
        assert _wait_gone(engine_pid, 10), "the engine process outlived the killed host"


def test_sigterm_to_the_host_stops_the_engine_in_order(azurite_connection_string: str,
                                                       tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path) as host:
        engine_pid = int(str(_engine(host)["pid"]))
        os.kill(host.pid, signal.SIGTERM)
        assert _wait_gone(host.pid, 30), host.log_tail()
        assert _wait_gone(engine_pid, 5), "the engine process outlived the stopped host"
        log = host.log_tail(20000)
    assert "Host stopped" in log
    assert "Traceback" not in log
    assert "exited unexpectedly" not in log
    assert "did not stop in order" not in log


def test_thread_mode_keeps_the_engine_in_the_host_process(azurite_connection_string: str,
                                                          tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path, DFHOST_ENGINE="thread") as host:
        engine = _engine(host)
        assert engine["mode"] == "thread"
        assert engine["pid"] == host.pid
        assert engine["thread"] == "dfhost-engine"
        status = _run_chaining(host)
        assert status["runtimeStatus"] == "Completed", status


def test_a_killed_engine_process_stops_the_host_with_an_error(azurite_connection_string: str,
                                                              tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path) as host:
        engine_pid = int(str(_engine(host)["pid"]))
        os.kill(engine_pid, signal.SIGKILL)
        # A host without its engine would accept starts it can never run: it stops instead.
        assert _wait_gone(host.pid, 30), host.log_tail()
        log = host.log_tail(20000)
    assert "The durable engine process exited unexpectedly" in log


def _workers(host: HostHandle) -> list[dict[str, int]]:
    workers = _engine(host)["workers"]
    assert isinstance(workers, list), workers
    return [{key: int(value) for key, value in worker.items()} for worker in workers]


def _run(host: HostHandle, name: str, payload: object) -> dict[str, object]:
    with httpx.Client(base_url=host.base_url, timeout=30) as http:
        started = http.post(f"/api/orchestrators/{name}", json=payload)
        assert started.status_code == 202, started.text
        instance_id = started.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status: dict[str, object] = http.get(f"{WEBHOOK}/instances/{instance_id}").json()
            if status["runtimeStatus"] in TERMINAL:
                return status
            time.sleep(0.1)
    raise AssertionError(f"{name} did not finish:\n{host.log_tail()}")


def test_two_worker_processes_share_the_invocations(azurite_connection_string: str,
                                                    tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path, FUNCTIONS_WORKER_PROCESS_COUNT="2") as host:
        engine = _engine(host)
        workers = _workers(host)
        assert len(workers) == 2, engine
        pids = [w["pid"] for w in workers]
        # The front end is the first worker; the second is a process of its own, a child of the
        # front end, which also runs the engine apart from both.
        assert pids[0] == host.pid
        extra = pids[1]
        assert extra not in (host.pid, int(str(engine["pid"])))
        assert _parent_of(extra) == host.pid
        status = _run(host, "worker_pids", 40)
        assert status["runtimeStatus"] == "Completed", status
        # Activities that take a while spread over both processes, and each answered as itself.
        assert status["output"] == sorted(pids), status
        counts = {w["pid"]: w["activities"] for w in _workers(host)}
        assert sum(counts.values()) >= 40
        assert min(counts.values()) >= 10, counts
        # Orchestrations still complete whichever worker replays them.
        assert _run_chaining(host)["runtimeStatus"] == "Completed"


def test_a_killed_worker_process_stops_the_host_and_a_stopped_host_takes_its_workers(
        azurite_connection_string: str, tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path, FUNCTIONS_WORKER_PROCESS_COUNT="3") as host:
        workers = [w["pid"] for w in _workers(host)]
        assert len(workers) == 3
        os.kill(host.pid, signal.SIGTERM)
        assert _wait_gone(host.pid, 30), host.log_tail()
        for pid in workers[1:]:
            assert _wait_gone(pid, 10), "a worker process outlived the stopped host"
        log = host.log_tail(20000)
    assert "Host stopped" in log
    assert "exited unexpectedly" not in log
    assert "Traceback" not in log
    with _host(azurite_connection_string, tmp_path, FUNCTIONS_WORKER_PROCESS_COUNT="2") as host:
        extra = _workers(host)[1]["pid"]
        engine_pid = int(str(_engine(host)["pid"]))
        os.kill(extra, signal.SIGKILL)
        # A host that lost a worker would send it work it can never answer: it stops instead, and
        # takes its engine with it.
        assert _wait_gone(host.pid, 30), host.log_tail()
        assert _wait_gone(engine_pid, 10)
        log = host.log_tail(20000)
    assert "The durable engine process exited unexpectedly" in log


def test_durable_apart_runs_no_orchestrator_or_activity_in_the_http_process(
        azurite_connection_string: str, tmp_path: Path) -> None:
    with _host(azurite_connection_string, tmp_path, FUNCTIONS_WORKER_PROCESS_COUNT="2",
               DFHOST_DURABLE_APART="true") as host:
        workers = _workers(host)
        # Only the second process takes durable work; the front end still serves HTTP (the starter).
        assert len(workers) == 1
        assert workers[0]["pid"] != host.pid
        assert _parent_of(workers[0]["pid"]) == host.pid
        status = _run(host, "worker_pids", 20)
        assert status["runtimeStatus"] == "Completed", status
        assert status["output"] == [workers[0]["pid"]]
        assert _workers(host)[0]["orchestratorEpisodes"] >= 1
