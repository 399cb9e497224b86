"""HTTP latency of the local Durable host's front end while its engine is busy.

Starts Azurite and the host on the conformance fixture app, measures a trivial HTTP trigger
(``GET /api/files/probe``, an async function that only answers) while idle, then again while
the engine works through fan-out orchestrations (replays through the SDK, activity dispatch,
episode commits to Azurite), and prints p50/p90/p99/max of each phase, plus how long the load
took.

    .venv/bin/python -m benchmarks.dfhost_front_end [--instances 4] [--count 300] [--probes 300]
        [--engine process|thread|both]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

from localdev.azurite import start_azurite
from localdev.dfhost.testing import running_host
from localdev.procs import ROOT

APP = ROOT / "tests" / "dfhost" / "fixtures" / "durable_app"
WEBHOOK = "/runtime/webhooks/durabletask"
PROBE = "/api/files/probe"
TERMINAL = {"Completed", "Failed", "Terminated"}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(label: str, millis: list[float]) -> str:
    return (f"{label:<12} n={len(millis):<4} p50={_percentile(millis, 0.50):7.1f} ms  "
            f"p90={_percentile(millis, 0.90):7.1f} ms  p99={_percentile(millis, 0.99):7.1f} ms  "
            f"max={max(millis):7.1f} ms  mean={statistics.fmean(millis):7.1f} ms")


def _probe(http: httpx.Client, count: int, interval: float,
           until: threading.Event | None = None) -> list[float]:
    """Time ``count`` sequential probe requests, ``interval`` seconds apart (or until ``until``)."""
    millis: list[float] = []
    for _ in range(count):
        if until is not None and until.is_set():
            break
        started = time.perf_counter()
        response = http.get(PROBE)
        millis.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        time.sleep(interval)
    return millis


def _wait_all(http: httpx.Client, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} instances still running after {timeout}s")
        status = http.get(f"{WEBHOOK}/instances/{pending[0]}").json()
        if status["runtimeStatus"] in TERMINAL:
            if status["runtimeStatus"] != "Completed":
                raise RuntimeError(f"{pending[0]} ended {status['runtimeStatus']}")
            pending.pop(0)
        else:
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=4, help="fan-out orchestrations")
    parser.add_argument("--count", type=int, default=300, help="activities per orchestration")
    parser.add_argument("--probes", type=int, default=300, help="probe requests per phase")
    parser.add_argument("--interval", type=float, default=0.01,
                        help="seconds between probe requests")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--engine", choices=["process", "thread", "both"], default="both",
                        help="where the host runs its durable engine (both: one run each)")
    args = parser.parse_args()
    modes = ["thread", "process"] if args.engine == "both" else [args.engine]
    azurite = start_azurite()
    try:
        for mode in modes:
            _run(args, mode, azurite.connection_string)
    finally:
        azurite.stop()
    return 0


def _run(args: argparse.Namespace, mode: str, connection_string: str) -> None:
    state = Path(tempfile.mkdtemp(prefix="dfhost-front-"))
    with running_host(APP, connection_string=connection_string,
                      hub="front" + uuid.uuid4().hex[:8],
                      extra_env={"DFHOST_STATE_DIR": str(state),
                                 "DFHOST_ENGINE": mode}) as host, \
            httpx.Client(base_url=host.base_url, timeout=60) as probe_http, \
            httpx.Client(base_url=host.base_url, timeout=60) as load_http:
        _probe(probe_http, 20, 0)   # warm-up: connection, imports
        idle = _probe(probe_http, args.probes, args.interval)

        done = threading.Event()
        started = time.perf_counter()
        ids = []
        for n in range(args.instances):
            spec = {"count": args.count, "tag": f"f{n}", "activity": "double"}
            response = load_http.post(f"{WEBHOOK}/orchestrators/fan_out", json=spec)
            response.raise_for_status()
            ids.append(response.json()["id"])
        loaded: list[float] = []
        prober = threading.Thread(target=lambda: loaded.extend(
            _probe(probe_http, 1_000_000, args.interval, until=done)))
        prober.start()
        try:
            _wait_all(load_http, ids, args.timeout)
        finally:
            done.set()
            prober.join()
        load_seconds = time.perf_counter() - started
    print(f"engine: {mode}; load: {args.instances} fan_out x {args.count} activities, "
          f"completed in {load_seconds:.1f} s")
    print(_summary("idle", idle))
    print(_summary("under load", loaded), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
