"""CLI: ``python -m localdev.graphsim serve [--port N] [--tls-dir DIR] [--seed-demo] [--state-file P]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path

from aiohttp import web

from localdev.graphsim.seed import DEMO_TENANT_ID, build_tenant
from localdev.graphsim.server import Simulator
from localdev.graphsim.state import AppRegistration, SimState
from localdev.graphsim.tls import make_server_tls
from localdev.procs import ROOT

DEMO_CLIENT_ID = "8d2f1c34-6a5b-4e7f-9c1d-2b3a4c5d6e7f"
ALL_READ_WRITE = [
    "DeviceManagementConfiguration.ReadWrite.All", "DeviceManagementApps.ReadWrite.All",
    "DeviceManagementServiceConfig.ReadWrite.All", "DeviceManagementRBAC.ReadWrite.All",
    "DeviceManagementScripts.ReadWrite.All", "DeviceManagementManagedDevices.ReadWrite.All",
    "Group.ReadWrite.All",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localdev.graphsim",
                                     description="Local Microsoft Graph (Intune) + Entra simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve HTTPS on 127.0.0.1")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--tls-dir", type=Path, default=ROOT / ".localdev" / "graphsim")
    serve.add_argument("--seed-demo", action="store_true",
                       help=f"seed the demo tenant {DEMO_TENANT_ID} and a demo app registration "
                            "(credentials in <tls-dir>/demo-app.json)")
    serve.add_argument("--state-file", type=Path, default=None,
                       help="persist tenants to this JSON file on change and load it at start")
    serve.add_argument("--lenient", action="store_true",
                       help="accept read-only properties in writes (strict mode off)")
    return parser.parse_args(argv)


def seed_demo(state: SimState, tls_dir: Path) -> None:
    """Seed the demo tenant plus an all-permissions app whose secret goes to a file, not stdout."""
    if DEMO_TENANT_ID not in state.tenants:
        state.tenants[DEMO_TENANT_ID] = build_tenant("demo", tenant_id=DEMO_TENANT_ID, seed=1)
    tenant = state.tenants[DEMO_TENANT_ID]
    app = tenant.apps.get(DEMO_CLIENT_ID)
    if app is None:
        import secrets

        app = AppRegistration(client_id=DEMO_CLIENT_ID, roles=list(ALL_READ_WRITE),
                              secret="sim~" + secrets.token_urlsafe(30))
        tenant.apps[DEMO_CLIENT_ID] = app
    path = tls_dir / "demo-app.json"
    path.write_text(json.dumps({"tenantId": DEMO_TENANT_ID, "clientId": app.client_id,
                                "secret": app.secret}))
    path.chmod(0o600)
    state.mark_dirty()


async def serve(args: argparse.Namespace) -> None:
    ssl_context, ca_file = make_server_tls(args.tls_dir)
    base_url = f"https://localhost:{args.port}"
    state = SimState(state_file=args.state_file, strict=not args.lenient)
    state.load()
    if args.seed_demo:
        seed_demo(state, args.tls_dir)
    sim = Simulator(base_url, state)
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=ssl_context,
                       backlog=1024)
    await site.start()
    print(base_url, flush=True)
    print(f"ca: {ca_file}", flush=True)
    if args.seed_demo:
        print(f"demo tenant: {DEMO_TENANT_ID} (app credentials in {args.tls_dir}/demo-app.json)",
              flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.command == "serve":
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
