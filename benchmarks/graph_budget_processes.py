"""Several worker processes calling one tenant: the in-process request budget against the shared one.

Starts Azurite and the Graph simulator (throttling on, at Intune's published limits unless ``--scale`` says
otherwise: 1,000 requests and 100 writes per 20 s per app per tenant and family), registers one app in the
demo tenant, and then, once per budget mode, starts ``--processes`` worker processes that share that app.
Each worker reads two throttling families (``deviceConfiguration`` and ``deviceConfigV2``) with
``--concurrency`` tasks each and writes one (``deviceConfiguration`` PATCHes) with a few tasks, through our
``GraphClient`` as the app uses it (budget, retries and ``Retry-After`` included), for ``--duration`` s.

- ``process``: each worker keeps its own budget (what every process did before the shared budget);
- ``shared``: every worker draws from the ledger in Azurite (``shared.graph.shared_budget``).

For each mode it prints, from the simulator's request log: the busiest window (20 s / scale) per family,
for all requests and for writes, against the limit; the 429s the simulator answered; Graph requests per
second; and the storage transactions the workers' ledger adapters made per 100 Graph requests. The
simulator's throttle buckets are reset between modes, so neither starts in the other's debt.

``--rate`` caps each worker's demand (reads per second per family; writes a tenth of it) to show what the
shared budget costs below the limit, where most runs are; without it, demand exceeds the limit.

Run: ``.venv/bin/python -m benchmarks.graph_budget_processes [--processes 2] [--duration 60] [--scale 1]
[--concurrency 6] [--rate 0] [--modes process,shared] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from benchmarks.graph_read_rate import busiest_window
from localdev.azurite import start_azurite
from localdev.graphsim.catalog import limits_for
from localdev.graphsim.testing import running_simulator
from localdev.stack import DEMO_GRAPH_ROLES
from shared.graph import BudgetConfig, ClientSecret, GraphClientFactory, GraphError
from shared.graph.catalog import throttle_family_for
from shared.storage import StorageFactory

_SECRET_ENV = "BENCH_GRAPH_SECRET"
_STORAGE_ENV = "BENCH_STORAGE_CONNECTION_STRING"
_READS = {"deviceConfiguration": "/beta/deviceManagement/deviceConfigurations",
          "deviceConfigV2": "/beta/deviceManagement/configurationPolicies"}
_WRITES = "/beta/deviceManagement/deviceConfigurations"
_WRITERS = 2


# --------------------------------------------------------------------------------------------- worker
async def _work(args: argparse.Namespace) -> dict[str, Any]:
    budget = BudgetConfig().scaled(args.scale) if args.scale != 1 else BudgetConfig()
    storage = None
    store = None
    if args.worker == "shared":
        storage = StorageFactory.from_connection_string(os.environ[_STORAGE_ENV],
                                                        table_prefix=args.table_prefix)
        store = storage.budget_ledgers()
    factory = GraphClientFactory(graph_base_url=args.base_url, authority_host=args.base_url,
                                 ca_bundle=args.ca_file, budget=budget, budget_store=store)
    client = factory.get(tenant_id=args.tenant, client_id=args.client_id,
                         credential=ClientSecret(os.environ[_SECRET_ENV]))
    ok = failed = 0
    try:
        ids = {family: [str(o["id"]) for o in await client.get_all(path)] for family, path in _READS.items()}
        writable = [str(o["id"]) for o in await client.get_all(_WRITES)]
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
        deadline = args.start_at + args.duration

        async def loop(path: str, targets: list[str], write: bool, n: int) -> None:
            nonlocal ok, failed
            i = n
            # With --rate, each task keeps its share of the process's rate for the family.
            tasks_of_kind = _WRITERS if write else args.concurrency
            rate = (args.rate / 10 if write else args.rate) / tasks_of_kind
            next_at = time.time()
            while time.time() < deadline:
                if rate:
                    next_at += 1 / rate
                    await asyncio.sleep(max(0.0, next_at - time.time()))
                target = f"{path}/{targets[i % len(targets)]}"
                i += 1
                try:
                    if write:
                        await client.patch(target, json_body={"description": f"bench {i}"})
                    else:
                        await client.get(target)
                    ok += 1
                except GraphError:
                    failed += 1

        tasks = [loop(_READS[family], ids[family], False, n)
                 for family in _READS for n in range(args.concurrency)]
        tasks += [loop(_WRITES, writable, True, n) for n in range(_WRITERS)]
        await asyncio.gather(*tasks)
    finally:
        await factory.aclose()
        if storage is not None:
            storage.close()
    fallbacks = sum(getattr(client.budgets.family(family), "fallbacks", 0) for family in _READS)
    return {"ok": ok, "failed": failed, "transactions": store.transactions if store is not None else 0,
            "conflicts": store.conflicts if store is not None else 0, "fallbacks": fallbacks}


# --------------------------------------------------------------------------------------------- driver
def _run_mode(mode: str, args: argparse.Namespace, sim: Any, tenant: str, app: dict[str, Any],
              storage: str) -> dict[str, Any]:
    sim.control.set_throttling(True, scale=args.scale, retry_after="int")  # fresh buckets
    env = {**os.environ, _SECRET_ENV: app["secret"], _STORAGE_ENV: storage}
    start_at = time.time() + 8.0  # every worker has its token and ids by then
    prefix = "bench" + uuid.uuid4().hex[:8]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "benchmarks.graph_budget_processes", "--worker", mode,
         "--base-url", sim.base_url, "--ca-file", str(sim.ca_file), "--tenant", tenant,
         "--client-id", app["clientId"], "--start-at", str(start_at), "--duration", str(args.duration),
         "--scale", str(args.scale), "--concurrency", str(args.concurrency), "--table-prefix", prefix,
         "--rate", str(args.rate)],
        env=env, stdout=subprocess.PIPE, text=True) for _ in range(args.processes)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=args.duration + 300)
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed with exit code {proc.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    log = [e for e in sim.control.requests(tenant=tenant, since=start_at) if e["time"] >= start_at]

    window = 20.0 / args.scale
    times: dict[str, list[float]] = collections.defaultdict(list)
    writes: dict[str, list[float]] = collections.defaultdict(list)
    throttled: collections.Counter[str] = collections.Counter()
    for entry in log:
        family = throttle_family_for(entry["path"])
        times[family].append(entry["time"])
        if entry["method"] != "GET":
            writes[family].append(entry["time"])
        throttled[family] += bool(entry["throttled"])
    transactions = sum(r["transactions"] for r in results)
    conflicts = sum(r["conflicts"] for r in results)
    fallbacks = sum(r.get("fallbacks", 0) for r in results)
    elapsed = max(e["time"] for e in log) - start_at if log else args.duration
    families = {}
    for family in sorted(times):
        w_app, _, a_app, _, _ = limits_for(family)
        families[family] = {
            "requests": len(times[family]), "writes": len(writes[family]),
            "peak": busiest_window(times[family], window), "limit": int(a_app / args.scale),
            "peak_writes": busiest_window(writes[family], window) if writes[family] else 0,
            "write_limit": int(w_app / args.scale), "throttled": throttled[family],
        }
    return {
        "mode": mode, "rate": args.rate, "processes": args.processes, "duration_s": args.duration,
        "window_s": window,
        "graph_requests": len(log), "requests_per_s": round(len(log) / elapsed, 1),
        "throttled": sum(throttled.values()), "calls_ok": sum(r["ok"] for r in results),
        "calls_failed": sum(r["failed"] for r in results), "storage_transactions": transactions,
        "storage_conflicts": conflicts, "fallbacks_to_local_share": fallbacks,
        "transactions_per_100_requests": round(100 * transactions / max(1, len(log)), 2),
        "families": families,
    }


def _print(result: dict[str, Any]) -> None:
    demand = f"{result['rate']:g} reads/s per family per process" if result["rate"] else "unbounded demand"
    print(f"\n{result['mode']} budget, {result['processes']} processes, {demand}, "
          f"{result['duration_s']:g} s: "
          f"{result['graph_requests']} Graph requests ({result['requests_per_s']}/s), "
          f"{result['throttled']} answered 429, calls failed after retries: {result['calls_failed']}; "
          f"storage transactions {result['storage_transactions']} "
          f"({result['storage_conflicts']} of them writes that lost a race) "
          f"({result['transactions_per_100_requests']} per 100 Graph requests); "
          f"fallbacks to the local share: {result['fallbacks_to_local_share']}")
    for family, f in result["families"].items():
        print(f"  {family:20s} busiest {result['window_s']:g} s window: {f['peak']:5d} of {f['limit']} "
              f"({f['peak'] / f['limit']:.2f}); writes {f['peak_writes']:4d} of {f['write_limit']} "
              f"({f['peak_writes'] / f['write_limit']:.2f}); requests {f['requests']}, 429s {f['throttled']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="simulator throttle scale (1 = published limits and 20 s windows)")
    parser.add_argument("--concurrency", type=int, default=6, help="reading tasks per family per process")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="reads per second per family per process, writes a tenth of it "
                        "(0: as many as the budget allows)")
    parser.add_argument("--modes", default="process,shared")
    parser.add_argument("--out", default=None)
    # Worker mode (started by the driver).
    parser.add_argument("--worker", choices=["process", "shared"], default=None, help=argparse.SUPPRESS)
    for name in ("--base-url", "--ca-file", "--tenant", "--client-id", "--table-prefix"):
        parser.add_argument(name, default="", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(asyncio.run(_work(args))))
        return

    azurite = start_azurite()
    try:
        with running_simulator() as sim:
            tenant = sim.control.create_tenant("demo")["tenantId"]
            app = sim.control.create_app(tenant, roles=DEMO_GRAPH_ROLES)
            results = []
            for mode in args.modes.split(","):
                result = _run_mode(mode, args, sim, tenant, app, azurite.connection_string)
                _print(result)
                results.append(result)
    finally:
        azurite.stop()
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
