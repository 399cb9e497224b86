"""One command for the whole local stack: Azurite, the Graph + Entra simulator and the local Durable host.

    python -m localdev.stack up [--background] [--port 7071] [--fresh]
    python -m localdev.stack down
    python -m localdev.stack status

``up`` starts the three services on loopback, waits until each answers, configures the function app
to use them (storage, caller-token validation against the simulator's issuer, Graph through the
simulator's CA) and prints the URLs. In the foreground it stops everything on Ctrl+C; with
``--background`` it returns and writes the URLs and process ids to ``.localdev/stack.json`` so scripts
and tests can find the stack, and ``down`` stops it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from localdev.azurite import connection_string, start_azurite
from localdev.procs import ROOT, free_port, is_alive, port_open, stop_process, wait_for_port
from shared.graph.catalog import CATALOG, GROUPS_READ_PERMISSION

STATE_DIR = ROOT / ".localdev"
STATE_FILE = STATE_DIR / "stack.json"

# The audience our API accepts locally and the operator (MSP) tenant whose users call it.
LOCAL_API_AUDIENCE = "api://intune-backup-local"
LOCAL_OPERATOR_TENANT = "11111111-1111-4111-8111-111111111111"
# The demo customer tenant seeded in the simulator, and the app registration our service uses there.
DEMO_TENANT = "22222222-2222-4222-8222-222222222222"
DEMO_GRAPH_CLIENT_ID = "33333333-3333-4333-8333-333333333333"
DEMO_SECRET_SETTING = "GRAPH_CREDENTIAL_DEMO"
# Application permissions consented for our service in the demo tenant: what every catalog type needs to be
# read and written, plus group reads for assignment targets.
DEMO_GRAPH_ROLES = sorted(
    {p for t in CATALOG.values() for p in (t.read_permission, t.write_permission)} | {GROUPS_READ_PERMISSION}
)


@dataclass
class StackInfo:
    """Where the running stack lives; written to ``.localdev/stack.json``."""

    api_base_url: str
    host_base_url: str
    simulator_base_url: str
    simulator_ca_file: str
    storage_connection_string: str
    operator_tenant_id: str
    api_audience: str
    demo_tenant_id: str = DEMO_TENANT
    demo_graph_client_id: str = DEMO_GRAPH_CLIENT_ID
    # Where the app keeps its state in that storage (each test stack has its own, see start_stack).
    table_prefix: str = "intune"
    snapshot_container: str = "policy-snapshots"
    task_hub: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def save(self) -> None:
        """Write the file atomically."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = STATE_FILE.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(STATE_FILE)

    @classmethod
    def load(cls) -> StackInfo | None:
        """Read the file of a stack started with ``--background``, if any."""
        if not STATE_FILE.exists():
            return None
        return cls(**json.loads(STATE_FILE.read_text()))


def trust(ca_file: str) -> ssl.SSLContext:
    """An SSL context that trusts the simulator's CA (and only it)."""
    return ssl.create_default_context(cafile=ca_file)


def _wait_http(url: str, *, verify: ssl.SSLContext | bool = True, timeout: float = 60.0,
               proc: subprocess.Popen[bytes] | None = None, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see {log}\n"
                               + log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(url, verify=verify, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f}s ({last}); see {log}")


def _spawn(args: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, cwd=ROOT, start_new_session=True)


# --- acting as the people and tenants of the local stack (demo, end-to-end tests, benchmarks) -------

def mint_token(sim: httpx.Client, *, oid: str, name: str = "", roles: list[str] | None = None,
               idtyp: str = "user", audience: str = LOCAL_API_AUDIENCE,
               tenant_id: str = LOCAL_OPERATOR_TENANT, expires_in: int | None = None) -> str:
    """A token for our API issued by the simulator's Entra endpoint (an app token uses ``oid`` as app id)."""
    body: dict[str, object] = {"tenantId": tenant_id, "audience": audience, "oid": oid, "name": name,
                               "idtyp": idtyp, "roles": roles or []}
    if idtyp == "app":
        body["appid"] = oid
    if expires_in is not None:
        body["expiresIn"] = expires_in
    response = sim.post("/_sim/tokens", json=body)
    response.raise_for_status()
    return str(response.json()["access_token"])


def create_customer_tenant(sim: httpx.Client, *, tenant_id: str, secret: str, display_name: str,
                           preset: str = "demo", seed: int = 1, policies: int | None = None) -> None:
    """A customer tenant in the simulator where our app registration has consent (with ``secret``)."""
    body: dict[str, object] = {"preset": preset, "tenantId": tenant_id, "seed": seed,
                               "displayName": display_name}
    if policies is not None:
        body["policies"] = policies
    sim.post("/_sim/tenants", json=body).raise_for_status()
    sim.post(f"/_sim/tenants/{tenant_id}/apps", json={
        "clientId": DEMO_GRAPH_CLIENT_ID, "secret": secret, "roles": DEMO_GRAPH_ROLES,
    }).raise_for_status()


def tenant_registration(display_name: str) -> dict[str, object]:
    """The ``PUT /api/tenants/{id}`` body for a tenant our app reaches with the launch's secret."""
    return {"displayName": display_name,
            "graph": {"clientId": DEMO_GRAPH_CLIENT_ID,
                      "credential": {"type": "appSetting", "name": DEMO_SECRET_SETTING}}}


def sim_client(info: StackInfo) -> httpx.Client:
    """A client of the simulator (control API and Entra endpoint) that trusts its CA."""
    return httpx.Client(base_url=info.simulator_base_url, verify=trust(info.simulator_ca_file), timeout=60.0)


def seed_simulator(sim_base: str, ca_file: str, secret: str) -> None:
    """Create the operator tenant, the demo customer tenant and our app registration in it."""
    with httpx.Client(base_url=sim_base, verify=trust(ca_file), timeout=30.0) as sim:
        sim.post("/_sim/tenants", json={"preset": "empty", "tenantId": LOCAL_OPERATOR_TENANT,
                                        "displayName": "Fabrikam MSP (operator)"}).raise_for_status()
        create_customer_tenant(sim, tenant_id=DEMO_TENANT, secret=secret, display_name="Contoso (demo)")


def app_environment(*, storage: str, sim_base: str, ca_file: str) -> dict[str, str]:
    """App settings of the function app when it runs on the local stack."""
    return {
        "AzureWebJobsStorage": storage,
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "STORAGE_CONNECTION_STRING": storage,
        "AUTH_MODE": "entra-jwt",
        "AUTH_AUDIENCE": LOCAL_API_AUDIENCE,
        "AUTH_ISSUER_TENANTS": LOCAL_OPERATOR_TENANT,
        "AUTH_AUTHORITY_HOST": sim_base,
        "GRAPH_BASE_URL": sim_base,
        "GRAPH_AUTHORITY_HOST": sim_base,
        "GRAPH_CA_BUNDLE": ca_file,
    }


def start_stack(*, port: int, state_dir: Path, storage: str | None = None, fresh: bool = False,
                extra_env: dict[str, str] | None = None, demo_secret: str | None = None) -> StackInfo:
    """Start the services the stack still lacks and return where they listen.

    Args:
        port: port of the function app.
        state_dir: folder for logs, TLS material and Azurite data.
        storage: connection string of an Azurite that is already running (tests); otherwise one is
            started with its data under ``state_dir``.
        fresh: discard stored Azurite data first.
        extra_env: additional app settings for the function app.
        demo_secret: client secret of our app registration in the simulator's tenants; generated for this
            launch when omitted (it never leaves the processes that need it).

    Returns:
        The stack; ``info.pids`` lists the processes to stop (see :func:`stop_stack`).
    """
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if port_open(port):
        raise SystemExit(f"port {port} is already in use; pass --port")
    started: dict[str, int] = {}
    # A stack on an Azurite others use too (the test session's) gets tables, a container and a task hub of
    # its own: two hosts on one task hub would take each other's work (the local engine takes no leases), and
    # their sweepers would deliver each other's outboxes against the wrong simulator.
    isolated = storage is not None
    suffix = secrets.token_hex(4) if isolated else ""
    table_prefix = f"intune{suffix}"
    snapshot_container = f"policy-snapshots-{suffix}" if isolated else "policy-snapshots"
    task_hub = f"IntuneBackupHub{suffix}" if isolated else ""
    try:
        if storage is None:
            data = state_dir / "azurite"
            if fresh and data.exists():
                shutil.rmtree(data)
            azurite = start_azurite(location=data, log=logs / "azurite.log")
            started["azurite"] = azurite.pid
            storage = connection_string(azurite.blob_port, azurite.queue_port, azurite.table_port)

        sim_port = free_port()
        tls_dir = state_dir / "graphsim"
        sim = _spawn([sys.executable, "-m", "localdev.graphsim", "serve", "--port", str(sim_port),
                      "--tls-dir", str(tls_dir)],
                     log=logs / "graphsim.log", env=dict(os.environ))
        started["graphsim"] = sim.pid
        sim_base = f"https://localhost:{sim_port}"
        ca_file = str(tls_dir / "ca.pem")
        wait_for_port(sim_port, proc=sim, what="Graph simulator", log=logs / "graphsim.log")
        _wait_http(f"{sim_base}/_sim/health", verify=trust(ca_file), proc=sim, what="Graph simulator",
                   log=logs / "graphsim.log")
        demo_secret = demo_secret or secrets.token_urlsafe(32)
        seed_simulator(sim_base, ca_file, demo_secret)

        env = dict(os.environ)
        env.update(app_environment(storage=storage, sim_base=sim_base, ca_file=ca_file))
        # Stands in for an app setting that is a Key Vault reference in Azure.
        env[DEMO_SECRET_SETTING] = demo_secret
        env["TABLE_PREFIX"] = table_prefix
        env["SNAPSHOT_CONTAINER"] = snapshot_container
        # Webhooks: a key made for this launch encrypts subscription URLs and secrets (a Key Vault reference
        # in Azure), receivers on loopback are allowed, and payload links point at this host.
        env["WEBHOOK_ENCRYPTION_KEY"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        env["WEBHOOK_ALLOW_LOOPBACK"] = "true"
        env["PUBLIC_API_BASE_URL"] = f"http://127.0.0.1:{port}/api"
        env.update(extra_env or {})
        host_args = [sys.executable, "-m", "localdev.dfhost", "serve", "--app", str(ROOT),
                     "--port", str(port), *(["--hub", task_hub] if task_hub else [])]
        host = _spawn(host_args, log=logs / "dfhost.log", env=env)
        _HOST_LAUNCHES[host.pid] = (host_args, env, logs / "dfhost.log")
        started["dfhost"] = host.pid
        _wait_http(f"http://127.0.0.1:{port}/admin/host/status", proc=host, what="Durable host",
                   log=logs / "dfhost.log", timeout=90.0)
    except BaseException:
        stop_pids(started)
        raise
    return StackInfo(
        api_base_url=f"http://127.0.0.1:{port}/api",
        host_base_url=f"http://127.0.0.1:{port}",
        simulator_base_url=sim_base,
        simulator_ca_file=ca_file,
        storage_connection_string=storage,
        operator_tenant_id=LOCAL_OPERATOR_TENANT,
        api_audience=LOCAL_API_AUDIENCE,
        table_prefix=table_prefix,
        snapshot_container=snapshot_container,
        task_hub=task_hub,
        pids=started,
        logs={name: str(logs / f"{name}.log") for name in started},
    )


# How each running host of this process was launched (its settings hold secrets: kept in memory only), so a
# test can kill one the hard way and start it again as it was.
_HOST_LAUNCHES: dict[int, tuple[list[str], dict[str, str], Path]] = {}


def kill_host(info: StackInfo) -> None:
    """SIGKILL the function app host and its engine (no clean-up of any kind), as a crash would."""
    pid = info.pids["dfhost"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


def restart_host(info: StackInfo) -> None:
    """Start the host again as it was launched (same port, settings and storage); updates ``info.pids``."""
    old = info.pids["dfhost"]
    args, env, log = _HOST_LAUNCHES.pop(old)
    host = _spawn(args, log=log, env=env)
    _HOST_LAUNCHES[host.pid] = (args, env, log)
    info.pids["dfhost"] = host.pid
    _wait_http(f"{info.host_base_url}/admin/host/status", proc=host, what="Durable host", log=log,
               timeout=90.0)


def stop_pids(pids: dict[str, int]) -> None:
    """Stop processes in the reverse order of their start."""
    for pid in reversed(list(pids.values())):
        stop_process(pid)


@contextmanager
def running_stack(*, storage: str, state_dir: Path, port: int | None = None,
                  extra_env: dict[str, str] | None = None,
                  demo_secret: str | None = None) -> Iterator[StackInfo]:
    """The simulator and the host on free ports over an existing Azurite (end-to-end tests)."""
    info = start_stack(port=port or free_port(), state_dir=state_dir, storage=storage, extra_env=extra_env,
                       demo_secret=demo_secret)
    try:
        yield info
    finally:
        stop_pids(info.pids)


def up(*, port: int, fresh: bool, background: bool) -> StackInfo:
    """Start the whole stack for a person at the keyboard (``python -m localdev.stack up``)."""
    existing = StackInfo.load()
    if existing and any(is_alive(pid) for pid in existing.pids.values()):
        raise SystemExit("a local stack is already running (python -m localdev.stack down stops it)")
    info = start_stack(port=port, state_dir=STATE_DIR, fresh=fresh)
    if background:
        info.save()
    return info


def down() -> bool:
    """Stop a stack started with ``--background``; return whether one was found."""
    info = StackInfo.load()
    if info is None:
        return False
    stop_pids(info.pids)
    STATE_FILE.unlink(missing_ok=True)
    return True


def _print_info(info: StackInfo) -> None:
    print(f"API (function app)   {info.api_base_url}")
    print(f"Durable host         {info.host_base_url}  (webhooks: /runtime/webhooks/durabletask)")
    print(f"Graph + Entra sim    {info.simulator_base_url}  (CA: {info.simulator_ca_file})")
    print(f"Azurite              {info.storage_connection_string.split('BlobEndpoint=')[1].split(';')[0]} "
          "(blob; queue and table beside it)")
    print(f"Logs                 {STATE_DIR / 'logs'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start Azurite, the Graph simulator and the Durable host")
    p_up.add_argument("--port", type=int, default=7071, help="port of the function app (default 7071)")
    p_up.add_argument("--background", action="store_true", help="return once the stack is up")
    p_up.add_argument("--fresh", action="store_true", help="discard stored Azurite data first")
    sub.add_parser("down", help="stop a stack started with --background")
    sub.add_parser("status", help="show the stack started with --background")
    args = parser.parse_args(argv)

    if args.command == "down":
        print("stopped" if down() else "no background stack is running")
        return 0
    if args.command == "status":
        info = StackInfo.load()
        if info is None:
            print("no background stack is running")
            return 1
        _print_info(info)
        return 0
    info = up(port=args.port, fresh=args.fresh, background=args.background)
    _print_info(info)
    if args.background:
        print(f"Stack running in the background; state in {STATE_FILE}. Stop it with: "
              "python -m localdev.stack down")
        return 0
    print("Press Ctrl+C to stop.")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            time.sleep(0.5)
    finally:
        stop_pids(info.pids)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
