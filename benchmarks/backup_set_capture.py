"""Wall time, throttle floor, overhead and storage transactions of one full backup set on the local stack.

Starts Azurite, the Graph + Entra simulator and the local Durable host (and always stops them), seeds a
generated customer tenant of N policies, switches the simulator's throttling on at Intune's published limits
(scale 1: 1,000 requests per 20 s per app per tenant and family, 2,000 for "devices"; the simulator has no
time scale that keeps the rate while shortening the run, ``scale`` only shrinks the window and the bucket
together), then starts ``POST /api/tenants/{id}/backup-sets {"selection": {"all": true}}`` through the
public API, follows the monitor to the end like a Logic App and prints:

- wall time, from the POST to the run's ``finishedAt`` (the server's clock, same machine), and the wall time
  the monitor saw (one poll interval coarser);
- the throttle floor: for each throttling family, the Graph requests the backup made in it (the simulator's
  request log for the tenant since the POST, throttled ones included, since Graph counts them) divided by the
  family's allowed rate (its per-app-per-tenant limit over its window); the floor is the largest, and
  wall / floor (target at most 1.10);
- orchestration and storage overhead per item: (wall - time in Graph calls) / items. The simulator logs when
  each request arrived, not how long it took, and under throttling the time "in Graph calls" is dominated by
  waiting for budget, so the time in Graph calls is taken as the floor: the time the busiest family needs at
  the allowed rate. What is left is the time the run took beyond the throttle (plan before the first item,
  finish after the last, the client budget's one-second safety margin per window, and any stall that left the
  budget unused). The time before the first and after the last Graph request of the run is printed apart;
  ``--unthrottled`` runs the same backup with throttling off, where wall / items is the whole per-item cost;
- table transactions per captured item at the app's own storage: the function app gets
  ``STORAGE_CONNECTION_STRING`` pointing at a counting reverse proxy in front of Azurite (tables and blobs),
  while the durable engine keeps ``AzureWebJobsStorage`` pointing at Azurite directly (the local host reads
  only that setting), so the task hub's own traffic is not counted. Every request is one transaction; an
  entity-group transaction (``$batch``) is one request, its operations are printed beside it. Counted from
  just before the POST until the monitor answered 200, so it includes the start, the monitor polls and the
  host's timer sweepers; the polls' share is measured after the run (a few polls on a quiet stack) and
  subtracted in a second figure;
- peak requests per 20 s window per family seen by the simulator, against the limit, and 429s it answered;
- items succeeded and failed, checked against the policies the API's live listing shows and the objects the
  simulator holds (lost or duplicated items are printed as defects);
- CPU time the durable host (the worker process: HTTP, orchestrator replays, activities), its engine
  process (history, queues, timers) and any extra worker process (``FUNCTIONS_WORKER_PROCESS_COUNT``), the
  simulator, Azurite and this process used during the run (``/proc``), since a run that is not held back by
  the throttle is held back by CPU on this machine.

``--chunk N`` starts the app with ``BACKUP_SET_CAPTURE_CHUNK=N`` (items per capture activity; the plan hands
it to the batches), so chunk sizes can be compared on the same code.

``--faults 0.2`` also makes the simulator fail that share of the tenant's Graph requests during the run
(seeded, in equal shares: 429 with ``Retry-After``, 429 without a usable one, 503, 504, connection reset; see
:func:`fault_rules`), and prints how many fired and the items lost (listed by the API but not captured, or
not in the set) and duplicated (an item id twice in the set or in the run's items). The faults are removed
before the checks read the tenant back.

Note that our client budget spreads a family's 1,000 requests over 21 s (the window plus a one-second margin),
so a run that is throttle-bound at best reaches wall / floor of about 1.05.

The numbers come from the local stack (Python Durable host + Azurite on this machine), not from Azure.

Run: ``.venv/bin/python -m benchmarks.backup_set_capture [--policies 1000] [--seed 42] [--poll 2]
[--unthrottled] [--faults 0.2] [--chunk 25] [--host-env NAME=VALUE] [--timeout 1800] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

from benchmarks.graph_read_rate import busiest_window
from localdev.azurite import ACCOUNT, ACCOUNT_KEY, start_azurite
from localdev.graphsim.catalog import limits_for
from localdev.stack import (
    StackInfo,
    create_customer_tenant,
    mint_token,
    running_stack,
    sim_client,
    tenant_registration,
)
from shared.domain.backupsets import CAPTURE_CHUNK, MAX_CAPTURE_CHUNK
from shared.graph.catalog import CATALOG

TERMINAL = {"succeeded", "partial", "failed", "cancelled"}
QUIET_POLLS = 5
# Hop-by-hop headers, and the ones the proxy's own client recomputes from the body it forwards.
_DROP_REQUEST = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length",
                           "proxy-connection", "te", "upgrade"})
_DROP_RESPONSE = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_BATCH_PART = re.compile(rb"^(POST|PUT|PATCH|MERGE|DELETE|GET) (\S+) HTTP/1\.1", re.MULTILINE)


# Graph paths only: token requests to the simulated Entra are left alone.
_GRAPH_PATH = r"^/(v1\.0|beta)/"
FAULT_SEED = 5


def fault_rules(tenant_id: str, rate: float) -> list[dict[str, Any]]:
    """``PUT /_sim/faults`` rules failing ``rate`` of a tenant's Graph requests in equal shares of five kinds.

    Every rule draws for every request and the first that fires wins, so rule ``i`` fires with
    ``share / (1 - i * share)``: each kind then fails ``share`` of the requests and together ``rate``. A 429
    whose ``Retry-After`` is empty is one without a usable value (the simulator has no fault kind that leaves
    the header out).
    """
    kinds: list[dict[str, Any]] = [{"kind": "429", "retryAfter": 1}, {"kind": "429-no-retry-after"},
                                   {"kind": "503"}, {"kind": "504"}, {"kind": "reset"}]
    share = rate / len(kinds)
    return [dict(kind, tenant=tenant_id, path=_GRAPH_PATH, probability=share / (1 - i * share))
            for i, kind in enumerate(kinds)]


# --- counting reverse proxy in front of Azurite (the app's own storage only) -----------------------------

@dataclass(frozen=True)
class StorageCall:
    """One request the app's storage clients sent."""

    service: str  # "table" or "blob"
    resource: str  # table name (``Tables`` for table management) or blob container
    method: str  # HTTP method, or ``$batch``
    operations: int = 1


def _resource(service: str, path: str) -> str:
    segments = [s for s in path.split("/") if s][1:]  # the account comes first (path-style Azurite)
    if not segments:
        return "?"
    return segments[0].split("(", 1)[0] if service == "table" else segments[0]


class CountingProxy:
    """HTTP reverse proxies (one port per storage service) that record every request, on their own loop."""

    def __init__(self, upstream_ports: dict[str, int]) -> None:
        self._upstream = upstream_ports
        self.ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._calls: list[StorageCall] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="storage-proxy", daemon=True)
        self._runners: list[web.AppRunner] = []
        self._session: ClientSession | None = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def mark(self) -> int:
        with self._lock:
            return len(self._calls)

    def since(self, mark: int, end: int | None = None) -> list[StorageCall]:
        with self._lock:
            return list(self._calls[mark:end])

    async def _start(self) -> None:
        self._session = ClientSession(connector=TCPConnector(limit=0), auto_decompress=False,
                                      timeout=ClientTimeout(total=120),
                                      skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))
        for service, port in self._upstream.items():
            app = web.Application(client_max_size=256 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handler(service, port))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._runners.append(runner)
            # The only way to learn the port bound to 0.
            sockets = site._server.sockets  # type: ignore[union-attr]
            self.ports[service] = sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _record(self, service: str, method: str, path: str, body: bytes) -> None:
        if path.endswith("/$batch"):
            parts = _BATCH_PART.findall(body)
            tables = sorted({_resource(service, URL(url.decode()).path) for _, url in parts})
            call = StorageCall(service, "+".join(tables) or "?", "$batch", len(parts))
        else:
            call = StorageCall(service, _resource(service, path), method)
        with self._lock:
            self._calls.append(call)

    def _handler(self, service: str, port: int) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self._record(service, request.method, request.path, body)
            headers = CIMultiDict((k, v) for k, v in request.headers.items()
                                  if k.lower() not in _DROP_REQUEST)
            assert self._session is not None
            url = URL(f"http://127.0.0.1:{port}{request.raw_path}", encoded=True)
            async with self._session.request(request.method, url, headers=headers, data=body or None,
                                             allow_redirects=False) as upstream:
                data = await upstream.read()
                out = CIMultiDict((k, v) for k, v in upstream.headers.items()
                                  if k.lower() not in _DROP_RESPONSE)
                if request.method == "HEAD":
                    # No body on a HEAD, but its length is what a blob's properties say.
                    if "Content-Length" in upstream.headers:
                        out["Content-Length"] = upstream.headers["Content-Length"]
                    response = web.Response(status=upstream.status, headers=out)
                    return response
                return web.Response(status=upstream.status, body=data, headers=out)
        return handle

    def connection_string(self, queue_port: int) -> str:
        """The app's connection string: tables and blobs through the proxy, queues straight to Azurite."""
        base = "http://127.0.0.1"
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={base}:{self.ports['blob']}/{ACCOUNT};"
                f"QueueEndpoint={base}:{queue_port}/{ACCOUNT};"
                f"TableEndpoint={base}:{self.ports['table']}/{ACCOUNT};")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process (and its waited-for children) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def host_children(pid: int) -> dict[str, int]:
    """The local host's child processes by name: its engine and any extra worker (each with its own CPU)."""
    children: dict[str, int] = {}
    workers = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (int(c) for c in (task / "children").read_text().split()):
            if b"engine_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                children["durable engine"] = child
            else:
                workers += 1
                children[f"host worker {workers + 1}"] = child
    return children


@contextmanager
def counted_stack(demo_secret: str, *, chunk: int | None = None,
                  host_env: dict[str, str] | None = None) -> Iterator[tuple[StackInfo, CountingProxy, int]]:
    """Azurite in memory, the proxy in front of it for the app, the simulator and the host."""
    azurite = start_azurite()
    proxy = CountingProxy({"table": azurite.table_port, "blob": azurite.blob_port})
    try:
        proxy.start()
        app_storage = proxy.connection_string(azurite.queue_port)
        settings = {"STORAGE_CONNECTION_STRING": app_storage}
        if chunk is not None:
            settings["BACKUP_SET_CAPTURE_CHUNK"] = str(chunk)
        settings.update(host_env or {})
        with tempfile.TemporaryDirectory(prefix="bench-backup-") as state, \
                running_stack(storage=azurite.connection_string, state_dir=Path(state),
                              demo_secret=demo_secret, extra_env=settings) as info:
            yield info, proxy, azurite.pid
    finally:
        proxy.stop()
        azurite.stop()


# --- the run ----------------------------------------------------------------------------------------------

@dataclass
class Observed:
    """What one backup did, from the outside."""

    tenant_id: str
    run: dict[str, Any]
    backup_set_id: str
    posted_at: float  # epoch seconds, just before the POST
    monitor_wall: float
    polls: int
    storage: list[StorageCall]
    poll_storage: list[list[StorageCall]] = field(default_factory=list)
    graph_log: list[dict[str, Any]] = field(default_factory=list)
    expected_items: set[str] = field(default_factory=set)
    listed_items: set[str] = field(default_factory=set)
    set_items: list[dict[str, Any]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    run_item_ids: list[str] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)


def _api(info: StackInfo, token: str) -> httpx.Client:
    return httpx.Client(base_url=info.api_base_url, timeout=120.0,
                        headers={"Authorization": f"Bearer {token}"})


def _ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code not in (200, 201, 202, 204):
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run_backup(info: StackInfo, proxy: CountingProxy, sim: httpx.Client, demo_secret: str, *, policies: int,
               seed: int, throttled: bool, poll: float, timeout: float,
               cpu_pids: dict[str, int], fault_rate: float = 0.0) -> Observed:
    tenant_id = str(uuid.uuid4())
    name = f"Bench {tenant_id[:8]}"
    create_customer_tenant(sim, tenant_id=tenant_id, secret=demo_secret, display_name=name,
                           preset="generated", seed=seed, policies=policies)
    admin = mint_token(sim, oid=str(uuid.uuid4()), roles=["Platform.Admin"], idtyp="app")
    operator_oid = str(uuid.uuid4())
    with _api(info, admin) as client:
        _ok(client.put(f"/tenants/{tenant_id}", json=tenant_registration(name)), "register tenant")
        _ok(client.put(f"/tenants/{tenant_id}/grants/{operator_oid}", json={"role": "operator"}), "grant")
    operator = mint_token(sim, oid=operator_oid, name="Bench Operator")
    sim.put("/_sim/throttling",
            json={"enabled": throttled, "scale": 1.0, "retryAfter": "int"}).raise_for_status()

    with _api(info, operator) as client:
        _ok(client.get("/health"), "health")  # the connection, outside the timing
        time.sleep(1.0)  # let the registration's own storage traffic settle
        mark = proxy.mark()
        cpu_before = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
        if fault_rate:
            sim.put("/_sim/faults", json={"rules": fault_rules(tenant_id, fault_rate),
                                          "seed": FAULT_SEED}).raise_for_status()
        posted_at = time.time()
        started = time.perf_counter()
        response = _ok(client.post(f"/tenants/{tenant_id}/backup-sets",
                                   json={"name": "benchmark", "selection": {"all": True}}), "start backup")
        body = response.json()
        url = response.headers["Location"]
        polls = 0
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backup not terminal within {timeout:.0f}s")
            time.sleep(poll)
            polled = _ok(client.get(url), "monitor")
            polls += 1
            if polled.status_code == 200:
                run = dict(polled.json())
                break
            url = polled.headers.get("Location", url)
        monitor_wall = time.perf_counter() - started
        faults: list[dict[str, Any]] = []
        if fault_rate:
            faults = list(sim.get("/_sim/faults").raise_for_status().json()["rules"])
            sim.delete("/_sim/faults").raise_for_status()
        end = proxy.mark()
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in cpu_pids.items()}
        storage = proxy.since(mark, end)

        # The monitor's own share: a few polls of the finished run on a quiet stack.
        poll_storage = []
        for _ in range(QUIET_POLLS):
            before = proxy.mark()
            _ok(client.get(url), "monitor")
            time.sleep(0.3)
            poll_storage.append(proxy.since(before))

        logged = sim.get("/_sim/requests", params={"tenant": tenant_id, "since": str(posted_at)})
        graph_log = [e for e in logged.raise_for_status().json()["value"]
                     if e["time"] <= _epoch(run["finishedAt"]) + 1.0]
        expected = {f"{key}:{obj['id']}" for key in CATALOG
                    for obj in sim.get(f"/_sim/tenants/{tenant_id}/objects/{key}").json()["value"]}
        # What the API's live listing shows (built-in objects such as the default scope tag are not listed).
        listed = {f"{p['policyType']}:{p['id']}"
                  for p in _ok(client.get(f"/tenants/{tenant_id}/policies"), "list policies").json()["items"]}
        backup_set_id = str(body["backupSet"]["id"])
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"top": 1000}
        while True:
            page = _ok(client.get(f"/tenants/{tenant_id}/backup-sets/{backup_set_id}", params=params),
                       "set items").json()
            items.extend(page["items"])
            if not page["continuation"]:
                break
            params["continuation"] = page["continuation"]
        run_item_ids: list[str] = []
        params = {"top": 1000}
        while True:
            page = _ok(client.get(f"/tenants/{tenant_id}/runs/{run['id']}/items", params=params),
                       "run items").json()
            run_item_ids.extend(i["itemId"] for i in page["items"])
            if not page["continuation"]:
                break
            params["continuation"] = page["continuation"]
    return Observed(tenant_id=tenant_id, run=run, backup_set_id=backup_set_id, posted_at=posted_at,
                    monitor_wall=monitor_wall, polls=polls, storage=storage, poll_storage=poll_storage,
                    graph_log=graph_log, expected_items=expected, listed_items=listed, set_items=items,
                    cpu=cpu, run_item_ids=run_item_ids, faults=faults)


# --- the numbers ------------------------------------------------------------------------------------------

def report(obs: Observed, *, throttled: bool) -> tuple[dict[str, Any], list[str]]:
    """Print the numbers; return them and the defects found."""
    run = obs.run
    counts = run["counts"]
    defects: list[str] = []
    wall = _epoch(run["finishedAt"]) - obs.posted_at
    items = counts["total"]
    succeeded = counts["succeeded"]
    print(f"\nrun {run['id']}: status {run['status']}, counts {counts}")
    print(f"wall time (POST -> finishedAt): {wall:.1f} s; as the monitor saw it: {obs.monitor_wall:.1f} s "
          f"({obs.polls} polls)")

    # Items against what the simulator holds.
    ids = [i["itemId"] for i in obs.set_items]
    duplicates = [k for k, n in Counter(ids).items() if n > 1]
    missing = obs.listed_items - set(ids)
    unlisted = obs.expected_items - obs.listed_items
    extra = set(ids) - obs.expected_items
    by_status = Counter(i["status"] for i in obs.set_items)
    print(f"items: succeeded {succeeded}, failed {counts['failed']}, skipped {counts['skipped']}; "
          f"set holds {len(ids)} items {dict(by_status)}; the API's live listing shows "
          f"{len(obs.listed_items)} policies, the simulator holds {len(obs.expected_items)} objects of the "
          f"catalog's types ({len(unlisted)} not listed: {sorted(unlisted)[:5]})")
    if duplicates:
        defects.append(f"{len(duplicates)} item ids appear more than once in the set, e.g. {duplicates[:3]}")
    if missing:
        defects.append(f"{len(missing)} policies the API lists are not in the set, e.g. "
                       f"{sorted(missing)[:3]}")
    if extra:
        defects.append(f"{len(extra)} set items are not in the simulator, e.g. {sorted(extra)[:3]}")
    if counts["failed"] or counts["skipped"] or run["status"] != "succeeded":
        failed = Counter((i.get("error") or {}).get("code") for i in obs.set_items
                         if i["status"] != "captured")
        defects.append(f"run {run['status']} with {counts['failed']} failed and {counts['skipped']} skipped "
                       f"items (error codes {dict(failed)})")
    if len(ids) != items:
        defects.append(f"the run counts {items} items but the set lists {len(ids)}")
    captured = {i["itemId"] for i in obs.set_items if i["status"] == "captured"}
    lost = sorted(obs.listed_items - captured)
    run_duplicates = [k for k, n in Counter(obs.run_item_ids).items() if n > 1]
    duplicated = len(duplicates) + len(run_duplicates)
    print(f"lost items (listed, not captured in the set): {len(lost)}; duplicated items (an id twice in "
          f"the set: {len(duplicates)}, in the run's items: {len(run_duplicates)}): {duplicated}; the run's "
          f"items {len(obs.run_item_ids)}")
    if lost:
        defects.append(f"{len(lost)} items lost, e.g. {lost[:3]}")
    if run_duplicates:
        defects.append(f"{len(run_duplicates)} item ids appear more than once in the run's items, "
                       f"e.g. {run_duplicates[:3]}")
    if obs.faults:
        matched = max(rule["matched"] for rule in obs.faults)
        fired = sum(rule["fired"] for rule in obs.faults)
        fired_by_kind = ", ".join(f"{r['kind']}{' (no Retry-After)' if r.get('retryAfter') == '' else ''} "
                          f"{r['fired']}" for r in obs.faults)
        print(f"injected faults: {fired} of {matched} Graph requests ({fired / max(matched, 1):.1%}): "
              f"{fired_by_kind}")

    # Graph requests per family, the floor, the peak windows.
    by_family: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in obs.graph_log:
        by_family[entry["bucket"] or "unresolved"].append(entry)
    families: dict[str, Any] = {}
    floor = 0.0
    print(f"\nGraph requests of the backup (simulator log): {len(obs.graph_log)}, throttled (429) "
          f"{sum(e['throttled'] for e in obs.graph_log)}, other non-2xx "
          f"{sum(1 for e in obs.graph_log if e['status'] >= 300 and not e['throttled'])}")
    for family, entries in sorted(by_family.items(), key=lambda kv: -len(kv[1])):
        w_app, _, any_app, _, window = limits_for(family)
        writes = [e for e in entries if e["method"] != "GET"]
        family_floor = max(len(entries) / (any_app / window), len(writes) / (w_app / window))
        floor = max(floor, family_floor)
        times = [e["time"] for e in entries]
        peak = busiest_window(times, window)
        write_peak = busiest_window([e["time"] for e in writes], window)
        throttled_n = sum(e["throttled"] for e in entries)
        families[family] = {"requests": len(entries), "writes": len(writes), "throttled": throttled_n,
                            "limit": any_app, "write_limit": w_app, "window_s": window,
                            "floor_s": round(family_floor, 2), "peak": peak, "write_peak": write_peak,
                            "first": min(times), "last": max(times)}
        print(f"  {family:12s} requests {len(entries):6d} (writes {len(writes)}, 429s {throttled_n}); floor "
              f"{family_floor:7.1f} s at {any_app}/{window:g} s; peak per {window:g} s window {peak} / limit "
              f"{any_app} ({peak / any_app:.2f})")
        if peak > any_app or write_peak > w_app:
            defects.append(f"family {family}: {peak} requests ({write_peak} writes) in one {window:g} s "
                           f"window, over the limit {any_app} ({w_app})")
        if throttled_n:
            defects.append(f"family {family}: the simulator answered {throttled_n} requests with 429")
    ratio = wall / floor if floor else None
    if throttled:
        print(f"throttle floor (busiest family): {floor:.1f} s; wall / floor = "
              f"{ratio:.3f} (target <= 1.10)" if ratio else "no Graph requests")
    else:
        print(f"(throttling off: the floor at the published limits would be {floor:.1f} s)")

    # Overhead per item.
    first = min((e["time"] for e in obs.graph_log), default=obs.posted_at)
    last = max((e["time"] for e in obs.graph_log), default=obs.posted_at)
    before_graph = first - obs.posted_at
    after_graph = _epoch(run["finishedAt"]) - last
    overhead = (wall - floor) / items * 1000 if items and throttled else None
    if overhead is not None:
        print(f"orchestration and storage overhead: (wall - floor) / items = ({wall:.1f} - {floor:.1f}) s / "
              f"{items} = {overhead:.2f} ms per item")
    else:
        print(f"wall / items (throttling off, everything included) = "
              f"{wall / max(items, 1) * 1000:.2f} ms per item")
    print(f"  of which before the first Graph request {before_graph:.2f} s, after the last "
          f"{after_graph:.2f} s, Graph span {last - first:.1f} s")

    cpu_line = ", ".join(f"{name} {seconds:.1f} s ({seconds / max(items, 1) * 1000:.1f} ms per item)"
                         for name, seconds in obs.cpu.items())
    print(f"CPU used from the POST to the monitor's 200: {cpu_line}")

    # Storage at the app's clients.
    def table(calls: list[StorageCall]) -> list[StorageCall]:
        return [c for c in calls if c.service == "table"]

    tables = table(obs.storage)
    per_poll = sum(len(table(p)) for p in obs.poll_storage) / max(len(obs.poll_storage), 1)
    without_polls = len(tables) - per_poll * obs.polls
    per_item = len(tables) / succeeded if succeeded else float("nan")
    per_item_np = without_polls / succeeded if succeeded else float("nan")
    operations = sum(c.operations for c in tables)
    print(f"\napp storage, POST to terminal: {len(tables)} table transactions ({operations} operations), "
          f"{len(obs.storage) - len(tables)} blob requests")
    print(f"table transactions per captured item: {per_item:.2f} (target <= 3); without the monitor's "
          f"{obs.polls} polls (~{per_poll:.1f} each): {per_item_np:.2f}")
    kinds: Counter[tuple[str, str]] = Counter((c.resource, c.method) for c in tables)
    ops: Counter[tuple[str, str]] = Counter()
    for c in tables:
        ops[(c.resource, c.method)] += c.operations
    for (resource, method), n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        inside = f" ({ops[(resource, method)]} operations)" if method == "$batch" else ""
        print(f"  {resource:40s} {method:7s} {n:6d}{inside}  = {n / max(succeeded, 1):.3f} per item")
    blobs: Counter[tuple[str, str]] = Counter((c.resource, c.method) for c in obs.storage
                                              if c.service == "blob")
    for (resource, method), n in sorted(blobs.items(), key=lambda kv: -kv[1]):
        print(f"  blob:{resource:35s} {method:7s} {n:6d}  = {n / max(succeeded, 1):.3f} per item")
    if per_item_np > 3:
        defects.append(f"{per_item_np:.2f} table transactions per captured item (target 3)")

    result = {
        "run_id": run["id"], "status": run["status"], "counts": counts, "wall_s": round(wall, 2),
        "monitor_wall_s": round(obs.monitor_wall, 2), "polls": obs.polls, "floor_s": round(floor, 2),
        "wall_over_floor": round(ratio, 3) if ratio and throttled else None,
        "overhead_ms_per_item": round(overhead, 2) if overhead is not None else None,
        "before_first_graph_s": round(before_graph, 2), "after_last_graph_s": round(after_graph, 2),
        "graph_requests": len(obs.graph_log), "families": families,
        "table_transactions": len(tables), "table_operations": operations,
        "table_transactions_per_item": round(per_item, 3),
        "table_transactions_per_item_without_polls": round(per_item_np, 3),
        "table_transactions_per_poll": per_poll,
        "table_breakdown": {f"{r} {m}": n for (r, m), n in kinds.items()},
        "blob_breakdown": {f"{r} {m}": n for (r, m), n in blobs.items()},
        "cpu_s": {name: round(seconds, 2) for name, seconds in obs.cpu.items()},
        "cpu_ms_per_item": {name: round(seconds / max(items, 1) * 1000, 2)
                            for name, seconds in obs.cpu.items()},
        "set_items": len(ids), "listed_policies": len(obs.listed_items),
        "lost": len(lost), "duplicated": duplicated, "run_items": len(obs.run_item_ids),
        "faults": obs.faults,
        "simulator_objects": len(obs.expected_items),
    }
    return result, defects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backup_set_capture",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=1000,
                        help="policies of the generated tenant (default 1000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated tenant (default 42)")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between monitor polls (default 2)")
    parser.add_argument("--unthrottled", action="store_true", help="run with the simulator's throttling off")
    parser.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                        help="share of the tenant's Graph requests the simulator fails (e.g. 0.2; default 0)")
    parser.add_argument("--chunk", type=int, default=None, metavar="N",
                        help="items per capture activity (the app's BACKUP_SET_CAPTURE_CHUNK; default: the "
                             "app's default)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for the run (default 1800)")
    parser.add_argument("--host-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the durable host, e.g. FUNCTIONS_WORKER_PROCESS_COUNT=2 "
                             "(repeatable)")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if any("=" not in pair for pair in args.host_env):
        parser.error("--host-env takes NAME=VALUE")
    host_env = dict(pair.split("=", 1) for pair in args.host_env)
    if args.policies < 1:
        parser.error("--policies must be positive")
    if not 0.0 <= args.faults < 1.0:
        parser.error("--faults must be at least 0 and below 1")
    if args.chunk is not None and not 1 <= args.chunk <= MAX_CAPTURE_CHUNK:
        parser.error(f"--chunk must be between 1 and {MAX_CAPTURE_CHUNK}")

    began = time.perf_counter()
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    demo_secret = secrets.token_urlsafe(24)
    chunk = args.chunk or CAPTURE_CHUNK
    with counted_stack(demo_secret, chunk=args.chunk, host_env=host_env) as (info, proxy, azurite_pid), \
            sim_client(info) as sim:
        children = host_children(info.pids["dfhost"])
        print(f"stack up in {time.perf_counter() - began:.1f} s (load average before: {load_before}); "
              f"{chunk} items per capture activity; {args.policies} generated policies, throttling "
              f"{'off' if args.unthrottled else 'on at the published limits (scale 1)'}"
              f"{f', {args.faults:.0%} of Graph requests failing' if args.faults else ''}"
              f"{f'; host settings {host_env}' if host_env else ''}")
        observed = run_backup(info, proxy, sim, demo_secret, policies=args.policies, seed=args.seed,
                              throttled=not args.unthrottled, poll=args.poll, timeout=args.timeout,
                              cpu_pids={"durable host": info.pids["dfhost"],
                                        **children,
                                        "simulator": info.pids["graphsim"], "azurite": azurite_pid,
                                        "this process (client, storage proxy)": os.getpid()},
                              fault_rate=args.faults)
    result, defects = report(observed, throttled=not args.unthrottled)
    load_after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average after: {load_after}")
    for defect in defects:
        print(f"DEFECT: {defect}")
    if args.out:
        result.update(policies=args.policies, seed=args.seed, chunk=chunk, host_env=host_env,
                      throttled=not args.unthrottled,
                      fault_rate=args.faults, defects=defects, load_before=load_before, load_after=load_after)
        args.out.write_text(json.dumps(result, indent=2))
    return 1 if defects else 0


if __name__ == "__main__":
    raise SystemExit(main())
