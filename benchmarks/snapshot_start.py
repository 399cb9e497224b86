"""Start latency and completion time of policy snapshots on the local stack.

Starts Azurite, the Graph + Entra simulator and the local Durable host (and always stops them), seeds a
generated customer tenant with more policies than requests, so that every POST targets a different
policy and creates a new run, then measures:

1. the time to the ``202`` of ``POST .../policies/{type}/{id}/snapshots`` under N concurrent callers
   (threads, one httpx client and one operator token each): count, p50, p90, p99, max and throughput, and
   the CPU that the host, its engine, Azurite and the simulator used while the callers ran, per start (from
   ``/proc``; it includes the launches and orchestrations that ran meanwhile, so a shorter burst holds less
   of that work);
2. the wall time from POST to ``succeeded`` of one policy on an otherwise idle stack (5 times, and the
   median), and how long all runs started in step 1 took to finish;
3. the floor of this measurement on this machine: the same callers, with the same clients, sending as many
   ``GET /api/health`` (an anonymous function that reads nothing) as there were POSTs; and the CPU budget
   that bounds the burst: by Little's law the mean latency of N closed-loop callers is N / throughput, and
   the throughput cannot exceed the cores divided by the CPU that one request costs every process together
   (the callers' own CPU included);
4. the storage round trips of one start, counted at our storage adapter: in this process, the start path
   of the trigger (authenticate, check the role, ``RunService.start``) runs against the same Azurite with a
   hook on the app's storage clients, one start at a time, for a new run, a reuse, an ``Idempotency-Key``
   replay and their variants; reads and writes per table. The durable engine's requests (its task hub)
   and those of running orchestrations are not in these counts: :mod:`benchmarks.storage_round_trips`
   explains the method.

The idle runs go first (after one cold run, printed apart), so they really see an idle stack; the
floor follows, then the burst, then the count (its runs are never launched, so they must not be listed by
the burst's wait). The machine's load average is printed too: other processes skew every number here.

The numbers come from the local stack (Python Durable host + Azurite on this machine), not from Azure.

Run: ``.venv/bin/python -m benchmarks.snapshot_start [--callers 20] [--requests 200] [--out FILE.json]``;
``--round-trips-only`` skips steps 1 to 3.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from benchmarks.storage_round_trips import format_summary, measure
from localdev.azurite import start_azurite
from localdev.stack import (
    StackInfo,
    create_customer_tenant,
    mint_token,
    running_stack,
    sim_client,
    tenant_registration,
)
from shared.graph.catalog import CATALOG

T = TypeVar("T")

IDLE_REPEATS = 5
# Generated policies are named "Gen - <type> <n>"; built-in objects (default scope tag, enrollment
# defaults) are left out so every target is an ordinary policy.
GENERATED_PREFIX = "Gen - "
IDLE_POLICY_TYPE = "settingsCatalog"
TERMINAL = {"succeeded", "partial", "failed", "cancelled"}


@dataclass
class Seeded:
    """The customer tenant, the admin token and the policies to capture."""

    tenant_id: str
    admin_token: str
    idle_target: tuple[str, str]
    burst_targets: list[tuple[str, str]]


@dataclass
class BurstResult:
    """What the concurrent callers saw."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    run_ids: list[str] = field(default_factory=list)
    started_at: float = 0.0
    wall_seconds: float = 0.0
    callers_cpu_seconds: float = 0.0


def api_client(info: StackInfo, token: str) -> httpx.Client:
    return httpx.Client(base_url=info.api_base_url, timeout=60.0,
                        headers={"Authorization": f"Bearer {token}"})


def _ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code not in (200, 201, 204):
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def seed(info: StackInfo, sim: httpx.Client, demo_secret: str, policies: int) -> Seeded:
    """A generated tenant registered with our API, and its generated policies split into targets."""
    tenant_id = str(uuid.uuid4())
    name = f"Bench {tenant_id[:8]}"
    create_customer_tenant(sim, tenant_id=tenant_id, secret=demo_secret, display_name=name,
                           preset="generated", seed=7, policies=policies)
    admin_token = mint_token(sim, oid=str(uuid.uuid4()), roles=["Platform.Admin"], idtyp="app")
    targets: list[tuple[str, str]] = []
    with api_client(info, admin_token) as admin:
        _ok(admin.put(f"/tenants/{tenant_id}", json=tenant_registration(name)), "register tenant")
        reader_oid = str(uuid.uuid4())
        grant(admin, tenant_id, reader_oid)
        with api_client(info, mint_token(sim, oid=reader_oid)) as reader:
            for policy_type in CATALOG:
                items = _ok(reader.get(f"/tenants/{tenant_id}/policies", params={"type": policy_type}),
                            f"list {policy_type}").json()["items"]
                targets += [(policy_type, str(p["id"])) for p in items
                            if str(p["displayName"]).startswith(GENERATED_PREFIX)]
    idle = next(t for t in targets if t[0] == IDLE_POLICY_TYPE)
    burst = [t for t in targets if t != idle]
    # Graph ids are GUIDs, so ordering by id interleaves the types: the burst is not all of one kind.
    burst.sort(key=lambda t: t[1])
    return Seeded(tenant_id=tenant_id, admin_token=admin_token, idle_target=idle, burst_targets=burst)


def grant(admin: httpx.Client, tenant_id: str, oid: str, role: str = "operator") -> None:
    _ok(admin.put(f"/tenants/{tenant_id}/grants/{oid}", json={"role": role}), "grant")


def snapshot_path(tenant_id: str, target: tuple[str, str]) -> str:
    return f"/tenants/{tenant_id}/policies/{target[0]}/{target[1]}/snapshots"


def wait_run(client: httpx.Client, tenant_id: str, run_id: str, *, timeout: float,
             interval: float = 0.1) -> dict[str, Any]:
    """Poll one run until it is terminal; the caller reads the clock after it returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = _ok(client.get(f"/tenants/{tenant_id}/runs/{run_id}"), "get run").json()
        if run["status"] in TERMINAL:
            return dict(run)
        time.sleep(interval)
    raise TimeoutError(f"run {run_id} not terminal within {timeout:.0f}s")


@dataclass
class IdleResult:
    """Time to the 202 and to ``succeeded`` of runs started one after another on an idle stack."""

    accept_ms: list[float] = field(default_factory=list)
    done_ms: list[float] = field(default_factory=list)


def idle_runs(client: httpx.Client, seeded: Seeded, repeats: int) -> IdleResult:
    """Runs of the same policy, each started after the previous one finished (so each is a new run)."""
    result = IdleResult()
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.post(snapshot_path(seeded.tenant_id, seeded.idle_target))
        accepted = time.perf_counter()
        if response.status_code != 202:
            raise RuntimeError(f"idle POST: HTTP {response.status_code}: {response.text[:300]}")
        run = wait_run(client, seeded.tenant_id, response.json()["id"], timeout=60.0, interval=0.05)
        done = time.perf_counter()
        if run["status"] != "succeeded":
            print(f"  note: idle run {run['id']} ended {run['status']}: {run.get('failure')}")
        result.accept_ms.append((accepted - started) * 1000)
        result.done_ms.append((done - started) * 1000)
    return result


def burst(info: StackInfo, seeded: Seeded, tokens: list[str], requests: int) -> BurstResult:
    """Fire ``requests`` POSTs from ``len(tokens)`` threads at once, each to a different policy."""
    def start(client: httpx.Client, target: tuple[str, str]) -> httpx.Response:
        return client.post(snapshot_path(seeded.tenant_id, target))

    return closed_loop(info, tokens, seeded.burst_targets[:requests], start, expect=202)


def floor(info: StackInfo, tokens: list[str], requests: int) -> BurstResult:
    """The same callers sending ``requests`` GETs of the health function, which reads nothing."""
    def health(client: httpx.Client, _: int) -> httpx.Response:
        return client.get("/health")

    return closed_loop(info, tokens, list(range(requests)), health, expect=200)


def closed_loop(info: StackInfo, tokens: list[str], jobs: list[T],
                send: Callable[[httpx.Client, T], httpx.Response], *, expect: int) -> BurstResult:
    """``len(tokens)`` threads, one client each, sending the next job as soon as their last one answered."""
    work: queue.SimpleQueue[T] = queue.SimpleQueue()
    for job in jobs:
        work.put(job)
    result = BurstResult()
    lock = threading.Lock()
    gate = threading.Barrier(len(tokens) + 1)

    def caller(token: str) -> None:
        with api_client(info, token) as client:
            # A first request per connection would otherwise add connect time to one sample per caller.
            client.get("/health")
            gate.wait()
            while True:
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                sent = time.perf_counter()
                try:
                    response = send(client, job)
                except httpx.HTTPError as exc:
                    with lock:
                        result.errors[type(exc).__name__] += 1
                    continue
                elapsed_ms = (time.perf_counter() - sent) * 1000
                with lock:
                    if response.status_code != expect:
                        result.errors[f"HTTP {response.status_code}"] += 1
                        continue
                    result.latencies_ms.append(elapsed_ms)
                    if expect == 202:
                        result.run_ids.append(str(response.json()["id"]))
                        if response.json().get("reused"):
                            result.errors["202 reused (unexpected)"] += 1

    threads = [threading.Thread(target=caller, args=(t,), daemon=True) for t in tokens]
    for thread in threads:
        thread.start()
    gate.wait()
    result.started_at = time.time()
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - started
    # This process is the callers (the main thread only waits), so its CPU is theirs.
    result.callers_cpu_seconds = time.process_time() - cpu
    return result


def _parse_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wait_all(client: httpx.Client, tenant_id: str, run_ids: list[str], *,
             timeout: float) -> tuple[Counter[str], float | None, int]:
    """Wait until none of ``run_ids`` is active; return their statuses, last finish time and stragglers."""
    wanted = set(run_ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = 0
        for status in ("queued", "running"):
            page = _ok(client.get(f"/tenants/{tenant_id}/runs", params={"status": status, "top": 1}),
                       "list active runs").json()
            active += len(page["items"])
        if not active:
            break
        time.sleep(0.5)
    statuses: Counter[str] = Counter()
    last_finish: float | None = None
    continuation: str | None = None
    seen = 0
    while True:
        params: dict[str, Any] = {"top": 200}
        if continuation:
            params["continuation"] = continuation
        page = _ok(client.get(f"/tenants/{tenant_id}/runs", params=params), "list runs").json()
        for run in page["items"]:
            if run["id"] not in wanted:
                continue
            seen += 1
            statuses[run["status"]] += 1
            if run.get("finishedAt"):
                finished = _parse_time(run["finishedAt"])
                last_finish = finished if last_finish is None else max(last_finish, finished)
        continuation = page.get("continuation")
        if not continuation:
            break
    return statuses, last_finish, len(wanted) - seen


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (non-empty)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


@contextmanager
def local_stack(demo_secret: str, host_env: dict[str, str] | None = None) -> Iterator[StackInfo]:
    """Azurite (in memory) plus the simulator and the host, all stopped on the way out."""
    azurite = start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as state, \
                running_stack(storage=azurite.connection_string, state_dir=Path(state),
                              demo_secret=demo_secret, extra_env=host_env) as info:
            info.pids.setdefault("azurite", azurite.pid)
            yield info
    finally:
        azurite.stop()


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process so far (Linux ``/proc``), or ``None`` if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stack_processes(info: StackInfo) -> dict[str, int]:
    """The stack's processes by role: the engine and any extra worker processes as the host describes them."""
    pids = {name: pid for name, pid in info.pids.items() if name in ("dfhost", "azurite", "graphsim")}
    described = httpx.get(f"{info.host_base_url}/admin/dfhost/engine", timeout=10).json()
    if described.get("mode") == "process":
        pids["engine"] = int(described["pid"])
    extra = [int(w["pid"]) for w in described.get("workers", []) if int(w["pid"]) != pids.get("dfhost")]
    for number, pid in enumerate(extra, start=1):
        pids[f"worker-{number}"] = pid
    return pids


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each process (those that cannot be read are left out)."""
    return {name: cpu for name, pid in pids.items() if (cpu := _cpu_seconds(pid)) is not None}


def run_idle(info: StackInfo, seeded: Seeded, token: str) -> dict[str, Any]:
    """Step 2 on an idle stack: prints it and returns it for ``--out``."""
    print(f"\n[idle] POST -> succeeded, one {IDLE_POLICY_TYPE} policy, stack otherwise idle")
    with api_client(info, token) as client:
        cold = idle_runs(client, seeded, 1)
        idle = idle_runs(client, seeded, IDLE_REPEATS)
    print(f"  first run (cold): 202 after {cold.accept_ms[0]:.0f} ms, succeeded after "
          f"{cold.done_ms[0]:.0f} ms")
    print("  POST -> succeeded: " + ", ".join(f"{t:.0f}" for t in idle.done_ms)
          + f" ms; median {statistics.median(idle.done_ms):.0f} ms")
    print("  POST -> 202 (single caller): " + ", ".join(f"{t:.0f}" for t in idle.accept_ms)
          + f" ms; median {statistics.median(idle.accept_ms):.0f} ms")
    return {"policy_type": IDLE_POLICY_TYPE,
            "cold": {"accept_ms": round(cold.accept_ms[0], 1), "succeeded_ms": round(cold.done_ms[0], 1)},
            "post_to_succeeded_ms": [round(t, 1) for t in idle.done_ms],
            "post_to_succeeded_ms_median": round(statistics.median(idle.done_ms), 1),
            "accept_ms": [round(t, 1) for t in idle.accept_ms],
            "accept_ms_median": round(statistics.median(idle.accept_ms), 1)}


def measured(info: StackInfo, what: str, unit: str,
             go: Callable[[], BurstResult]) -> tuple[BurstResult, dict[str, Any]]:
    """Run one closed-loop burst and print its latency, throughput and CPU per request; return its report."""
    processes = stack_processes(info)
    cpu_before = cpu_snapshot(processes)
    result = go()
    cpu_after = cpu_snapshot(processes)
    lat = result.latencies_ms
    errors = sum(result.errors.values())
    print(f"  {what}: {len(lat)}  errors: {errors}" + (f" ({dict(result.errors)})" if result.errors else ""))
    if lat:
        print(f"  latency ms: p50 {percentile(lat, 50):.0f}  p90 {percentile(lat, 90):.0f}  "
              f"p99 {percentile(lat, 99):.0f}  max {max(lat):.0f}  (mean {statistics.fmean(lat):.0f})")
    throughput = len(lat) / result.wall_seconds
    print(f"  wall time: {result.wall_seconds:.2f}s  throughput: {throughput:.1f} {unit}/s")
    # CPU of the stack's processes and of the callers while they ran: unlike latency, it hardly depends on
    # what else the machine is doing. A start's includes the launches and runs that went on meanwhile.
    cpu_ms = {name: (cpu_after[name] - cpu_before[name]) * 1000 / max(1, len(lat))
              for name in cpu_before if name in cpu_after}
    cpu_ms["callers"] = result.callers_cpu_seconds * 1000 / max(1, len(lat))
    total = sum(cpu_ms.values())
    print(f"  CPU per {unit[:-1]} (ms): "
          + "  ".join(f"{name} {ms:.1f}" for name, ms in sorted(cpu_ms.items()))
          + f"  total {total:.1f}  (machine load average {os.getloadavg()[0]:.1f})")
    ceiling = (os.cpu_count() or 1) * 1000 / total if total else float("inf")
    report: dict[str, Any] = {
        "accepted": len(lat), "errors": dict(result.errors), "wall_seconds": round(result.wall_seconds, 3),
        "throughput_per_second": round(throughput, 2),
        "cpu_ms_per_request": {name: round(ms, 2) for name, ms in cpu_ms.items()},
        "cpu_ms_per_request_total": round(total, 2), "throughput_ceiling_per_second": round(ceiling, 1),
    }
    if lat:
        report["latency_ms"] = {"p50": round(percentile(lat, 50), 1), "p90": round(percentile(lat, 90), 1),
                                "p99": round(percentile(lat, 99), 1), "max": round(max(lat), 1),
                                "mean": round(statistics.fmean(lat), 1)}
    return result, report


def print_budget(callers: int, report: dict[str, Any], unit: str) -> None:
    """What the CPU per request allows: the throughput ceiling and (Little's law) the lowest mean latency."""
    ceiling = report["throughput_ceiling_per_second"]
    print(f"  budget: {report['cpu_ms_per_request_total']:.1f} ms of CPU per {unit[:-1]} on {os.cpu_count()} "
          f"cores allows at most {ceiling:.0f} {unit}/s, so {callers} closed-loop callers wait at least "
          f"{callers * 1000 / ceiling:.0f} ms on average")


def run_burst(info: StackInfo, seeded: Seeded, tokens: list[str], requests: int,
              finish_timeout: float) -> tuple[dict[str, Any], bool]:
    """Step 1 and the wait for its runs: prints it, returns it for ``--out`` and whether all went well."""
    print(f"\n[burst] {requests} snapshot POSTs, {len(tokens)} concurrent callers, "
          "each POST a different policy")
    result, measured_report = measured(info, "202", "starts", lambda: burst(info, seeded, tokens, requests))
    print_budget(len(tokens), measured_report, "starts")
    errors = sum(result.errors.values())
    report: dict[str, Any] = {"callers": len(tokens), "requests": requests, **measured_report}

    with api_client(info, tokens[0]) as client:
        statuses, last_finish, missing = wait_all(client, seeded.tenant_id, result.run_ids,
                                                  timeout=finish_timeout)
    active = statuses["queued"] + statuses["running"]
    finished = len(result.run_ids) - active - missing
    print(f"  run outcomes: {dict(statuses)}" + (f", {missing} not listed" if missing else ""))
    report.update(run_outcomes=dict(statuses), runs_not_listed=missing)
    if last_finish is not None:
        span = last_finish - result.started_at
        what = (f"all {finished} runs" if not active and not missing
                else f"{finished} of {len(result.run_ids)} runs (the rest still active after waiting "
                     f"{finish_timeout:.0f}s)")
        print(f"  {what} finished {span:.1f}s after the first POST (last finishedAt); "
              f"{finished / span:.2f} runs/s")
        report.update(finished_runs=finished, all_finished_seconds=round(span, 2))
    return report, errors == 0 and statuses["succeeded"] == len(result.run_ids)


def run_floor(info: StackInfo, tokens: list[str], requests: int) -> dict[str, Any]:
    """Step 3: the same callers against a function that does nothing; printed, and returned for ``--out``."""
    print(f"\n[floor] {requests} GET /api/health (reads nothing), the same {len(tokens)} callers and clients")
    _, report = measured(info, "200", "requests", lambda: floor(info, tokens, requests))
    print_budget(len(tokens), report, "requests")
    return report


def run_round_trips(info: StackInfo, seeded: Seeded, token: str, samples: int) -> tuple[dict[str, Any], bool]:
    """Step 3: prints the counts, returns them for ``--out`` and whether every case behaved as expected."""
    print(f"\n[round trips] our storage requests per start, counted at the storage clients in this process "
          f"(no HTTP, no durable engine), {samples} starts per case, one at a time")
    counts = measure(info, token=token, tenant_id=seeded.tenant_id, samples=samples)
    for name, summary in counts["cases"].items():
        print("\n".join(format_summary(name, summary)))
    print("\n".join(format_summary("cold (first start of the process, not in the cases above)",
                                   counts["cold"])))
    for surprise in counts["surprises"]:
        print(f"  unexpected: {surprise}")
    return counts, not counts["surprises"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.snapshot_start",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--callers", type=int, default=20, help="concurrent callers (default 20)")
    parser.add_argument("--requests", type=int, default=200, help="snapshot POSTs in total (default 200)")
    parser.add_argument("--finish-timeout", type=float, default=150.0,
                        help="seconds to wait for all burst runs to finish (default 150)")
    parser.add_argument("--round-trip-samples", type=int, default=20,
                        help="starts per case when counting storage round trips (default 20)")
    parser.add_argument("--round-trips-only", action="store_true",
                        help="only count storage round trips (no idle runs, no burst)")
    parser.add_argument("--host-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an app setting for the host, e.g. FUNCTIONS_WORKER_PROCESS_COUNT=2 or "
                             "DFHOST_DURABLE_APART=true (repeatable)")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if any("=" not in pair for pair in args.host_env):
        parser.error("--host-env takes NAME=VALUE")
    host_env = dict(pair.split("=", 1) for pair in args.host_env)
    if args.callers < 1 or args.requests < 1 or args.round_trip_samples < 1:
        parser.error("--callers, --requests and --round-trip-samples must be positive")

    began = time.perf_counter()
    # Other processes on the machine skew every number here, so the load is printed with them.
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    report: dict[str, Any] = {"benchmark": "snapshot_start", "arguments": {
        "callers": args.callers, "requests": args.requests, "round_trip_samples": args.round_trip_samples,
        "round_trips_only": args.round_trips_only, "host_env": host_env}}
    ok = True
    demo_secret = secrets.token_urlsafe(24)
    with local_stack(demo_secret, host_env) as info, sim_client(info) as sim:
        print(f"stack up in {time.perf_counter() - began:.1f}s")
        # Generated tenants spread policies over ~18 types; a margin keeps one policy per request.
        wanted = 0 if args.round_trips_only else args.requests
        seeded = seed(info, sim, demo_secret, policies=wanted + wanted // 4 + 40)
        if len(seeded.burst_targets) < wanted:
            print(f"only {len(seeded.burst_targets)} distinct policies for {args.requests} requests")
            return 1
        tokens: list[str] = []
        with api_client(info, seeded.admin_token) as admin:
            for _ in range(args.callers):
                oid = str(uuid.uuid4())
                grant(admin, seeded.tenant_id, oid)
                tokens.append(mint_token(sim, oid=oid, name=f"Bench {oid[:8]}"))
        print(f"seeded tenant with {len(seeded.burst_targets) + 1} generated policies, "
              f"{args.callers} operators")

        if not args.round_trips_only:
            report["idle"] = run_idle(info, seeded, tokens[0])
            # Before the burst, whose runs keep the engine busy for a while after they end.
            report["floor"] = run_floor(info, tokens, args.requests)
            report["burst"], ok = run_burst(info, seeded, tokens, args.requests, args.finish_timeout)
        # Last: the runs started here are never launched, so they stay active.
        report["round_trips"], counted_ok = run_round_trips(info, seeded, tokens[0], args.round_trip_samples)
        ok = ok and counted_ok

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    total = time.perf_counter() - began
    print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; load average at the end {load} (at the start {load_before}); "
          f"total {total:.0f}s")
    print("note: local stack (Python Durable host + Azurite + Graph simulator on one machine), not Azure.")
    report["machine"] = {"node": platform.node(), "arch": platform.machine(), "cores": os.cpu_count(),
                         "python": platform.python_version(), "load_before": load_before,
                         "load_after": load, "total_seconds": round(total, 1)}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
