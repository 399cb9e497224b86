"""Crash-and-restart benchmark of the local Durable host.

Starts Azurite and the host on the conformance fixture app, starts K fan-out instances of N
activities each, SIGKILLs the host mid-run, restarts it, and prints the seconds from SIGKILL to
all instances completed, plus how many activity executions were repeated.

    .venv/bin/python benchmarks/dfhost_crash_restart.py [--instances 5] [--count 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from localdev.azurite import start_azurite
from localdev.dfhost.testing import running_host
from localdev.procs import ROOT

APP = ROOT / "tests" / "dfhost" / "fixtures" / "durable_app"
WEBHOOK = "/runtime/webhooks/durabletask"


def _executions(state: Path) -> list[str]:
    path = state / "slow_double.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="activities per instance")
    parser.add_argument("--kill-at", type=float, default=0.3,
                        help="fraction of all activity executions after which to SIGKILL")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    total = args.instances * args.count
    azurite = start_azurite()
    state = Path(tempfile.mkdtemp(prefix="dfhost-bench-"))
    try:
        with running_host(APP, connection_string=azurite.connection_string,
                          hub="bench" + uuid.uuid4().hex[:8],
                          extra_env={"DFHOST_STATE_DIR": str(state)}) as host, \
                httpx.Client(base_url=host.base_url, timeout=30) as http:
            started = time.perf_counter()
            ids = []
            for n in range(args.instances):
                spec = {"count": args.count, "tag": f"b{n}", "activity": "slow_double"}
                response = http.post(f"{WEBHOOK}/orchestrators/fan_out/bench-{n}", json=spec)
                response.raise_for_status()
                ids.append(response.json()["id"])
            while len(_executions(state)) < args.kill_at * total:
                time.sleep(0.01)
            host.kill()
            killed = time.perf_counter()
            executed_before = len(_executions(state))
            host.restart()
            ready = time.perf_counter()
            pending = set(ids)
            deadline = killed + args.timeout
            while pending and time.perf_counter() < deadline:
                for instance_id in list(pending):
                    status = http.get(f"{WEBHOOK}/instances/{instance_id}")
                    if status.status_code == 200:
                        body = status.json()
                        if body["runtimeStatus"] != "Completed" or body["output"] != {
                                "count": args.count, "sum": 2 * sum(range(args.count))}:
                            print(f"FAILED: {instance_id}: {body}")
                            return 1
                        pending.discard(instance_id)
                time.sleep(0.05)
            done = time.perf_counter()
            if pending:
                print(f"FAILED: {len(pending)} instances not completed within {args.timeout}s")
                return 1
            lines = _executions(state)
            unique = Counter(lines)
            repeated = sum(c - 1 for c in unique.values())
            print(f"instances={args.instances} activities/instance={args.count} total={total}")
            print(f"executions before SIGKILL: {executed_before} "
                  f"({executed_before / total:.0%}), after {killed - started:.2f}s")
            print(f"restart until ready: {ready - killed:.2f}s")
            print(f"SIGKILL -> all instances completed: {done - killed:.2f}s")
            print(f"activity executions: {len(lines)} for {len(unique)} distinct items; "
                  f"repeated: {repeated}")
            return 0 if len(unique) == total else 1
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
