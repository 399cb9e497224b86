"""Full-read rate of a generated tenant against the Graph simulator with throttling on.

Starts the simulator (HTTPS on a free port, throttling at the published limits unless ``--scale`` says
otherwise), creates a generated tenant, reads every policy of every catalog type in full through our
client and prints policies per second, requests per second, the busiest 20-second window per throttling
family and its ratio to the published read limit (1,000 requests / 20 s per app per tenant; 2,000 for the
"Intune devices" family).

Run: ``.venv/bin/python benchmarks/graph_read_rate.py [--policies 2000] [--scale 1] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localdev.graphsim.testing import running_simulator
from shared.graph import CATALOG, BudgetConfig, ClientSecret, GraphClientFactory, PolicyReader
from shared.graph.catalog import throttle_family_for

READ_ROLES = sorted({t.read_permission for t in CATALOG.values()})


def busiest_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def read_everything(base_url: str, ca_file: str, tenant_id: str, client_id: str, secret: str,
                          budget: BudgetConfig, concurrency: int) -> tuple[int, int, float]:
    factory = GraphClientFactory(graph_base_url=base_url, authority_host=base_url, ca_bundle=ca_file,
                                 budget=budget)
    try:
        client = factory.get(tenant_id=tenant_id, client_id=client_id, credential=ClientSecret(secret),
                             read_only=True)
        reader = PolicyReader(client)
        await client.get("/beta/deviceManagement/deviceCategories")  # token and TLS outside the timing
        started = time.perf_counter()
        policies = incomplete = 0
        async for captured in reader.read_all(list(CATALOG), concurrency=concurrency):
            policies += 1
            incomplete += not captured.complete
        return policies, incomplete, time.perf_counter() - started
    finally:
        await factory.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="simulator throttle scale (1 = published limits and 20 s windows)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with running_simulator() as sim:
        control = sim.control
        tenant = control.create_tenant("generated", policies=args.policies, seed=42)
        app = control.create_app(tenant["tenantId"], roles=READ_ROLES)
        control.set_throttling(True, scale=args.scale, retry_after="int")
        budget = BudgetConfig().scaled(args.scale) if args.scale != 1 else BudgetConfig()
        since = time.time()
        policies, incomplete, elapsed = asyncio.run(read_everything(
            sim.base_url, str(sim.ca_file), tenant["tenantId"], app["clientId"], app["secret"],
            budget, args.concurrency))
        log = control.requests(tenant=tenant["tenantId"], since=since)

    window = 20.0 / args.scale
    by_family: dict[str, list[float]] = collections.defaultdict(list)
    for entry in log:
        by_family[throttle_family_for(entry["path"])].append(entry["time"])
    throttled = sum(1 for e in log if e["throttled"])
    print(f"policies read in full: {policies} ({incomplete} incomplete) in {elapsed:.1f} s")
    print(f"policies/second: {policies / elapsed:.1f}")
    print(f"Graph requests: {len(log)} ({len(log) / elapsed:.1f}/s), throttled by the simulator: {throttled}")
    print(f"published read limit per family: {budget.read_limit} requests / {window:g} s per app per tenant")
    for family, times in sorted(by_family.items(), key=lambda kv: -len(kv[1])):
        limit = budget.limits(family)[1]
        peak = busiest_window(times, window)
        print(f"  {family:22s} requests={len(times):5d} busiest {window:g} s window={peak:5d} "
              f"ratio to limit={peak / limit:.2f}")
    overall = len(log) / elapsed / (budget.read_limit / window)
    print(f"overall request rate / one family's read limit: {overall:.2f}")


if __name__ == "__main__":
    main()
