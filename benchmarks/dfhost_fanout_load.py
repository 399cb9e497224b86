"""Flat fan-outs of no-op activities on the local Durable host while the machine is loaded.

Starts Azurite and a host on the conformance fixture app, keeps ``--burners`` CPU-burning
processes running, starts ``--orchestrations`` flat fan-outs of ``--count`` no-op activities
each, and prints for each whether it completed with every result, how long it took, and how
many storage transport errors and activity re-dispatches the host logged.

    .venv/bin/python -m benchmarks.dfhost_fanout_load --count 1000 --orchestrations 3 --burners 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from localdev.azurite import start_azurite
from localdev.dfhost.testing import cpu_burners, running_host
from localdev.procs import ROOT

DURABLE_APP = ROOT / "tests" / "dfhost" / "fixtures" / "durable_app"
WEBHOOK = "/runtime/webhooks/durabletask"
TERMINAL = {"Completed", "Failed", "Terminated"}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit code 1 if any orchestration missed a result or timed out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="activities per fan-out")
    parser.add_argument("--orchestrations", type=int, default=3, help="concurrent fan-outs")
    parser.add_argument("--burners", type=int, default=3, help="CPU-burning processes")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before giving up")
    args = parser.parse_args(argv)

    azurite = start_azurite()
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as state, running_host(
                DURABLE_APP, connection_string=azurite.connection_string,
                hub="bench" + uuid.uuid4().hex[:10],
                extra_env={"DFHOST_STATE_DIR": state}) as host, \
                httpx.Client(base_url=host.base_url, timeout=60) as http, \
                cpu_burners(args.burners, seconds=args.timeout):
            started = time.perf_counter()
            ids = [http.post(f"{WEBHOOK}/orchestrators/fan_out", json={
                "count": args.count, "activity": "noop", "tag": f"b{n}"}).json()["id"]
                for n in range(args.orchestrations)]
            finished: dict[str, tuple[float, dict[str, object]]] = {}
            deadline = time.monotonic() + args.timeout
            while len(finished) < len(ids) and time.monotonic() < deadline:
                for iid in ids:
                    if iid in finished:
                        continue
                    status = http.get(f"{WEBHOOK}/instances/{iid}").json()
                    if status["runtimeStatus"] in TERMINAL:
                        finished[iid] = (time.perf_counter() - started, status)
                time.sleep(0.5)
            expected = {"count": args.count, "sum": args.count * (args.count - 1)}
            for iid in ids:
                if iid not in finished:
                    print(f"{iid}: not finished after {args.timeout:.0f}s")
                    failures += 1
                    continue
                seconds, status = finished[iid]
                ok = status["runtimeStatus"] == "Completed" and status["output"] == expected
                failures += not ok
                print(f"{iid}: {status['runtimeStatus']} output={status['output']} "
                      f"in {seconds:.1f}s {'ok' if ok else 'WRONG'}")
            log = Path(host.log_path).read_text(errors="replace")
            print(f"host log: {log.count('Server disconnected')} 'Server disconnected', "
                  f"{log.count('recording an activity result failed')} failed result writes, "
                  f"{log.count('re-dispatching')} re-dispatch sweeps, "
                  f"{log.count(' ERROR ')} errors")
    finally:
        azurite.stop()
    print(f"{args.orchestrations} x {args.count} no-op activities, {args.burners} burners: "
          f"{'all complete' if not failures else f'{failures} incomplete'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
