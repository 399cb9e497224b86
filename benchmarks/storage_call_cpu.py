"""CPU and wall time per Table Storage call on the start path, per client configuration, against Azurite.

Starts Azurite (in memory, always stopped at the end) and measures, in this one process, the calls a start
makes: a point get, an upsert (replace) of a run-sized row, a query page of 20 run rows, and an entity-group
transaction of 4 rows (run, active key, idempotency key, outbox). Each call kind is timed with
``time.process_time`` (CPU of this process, all threads: the SDK prepares transaction parts in thread pools)
and ``time.perf_counter`` (wall), for each client configuration:

- ``before``: the SDK's default pipeline and transport with our timeouts (the factory before these changes);
- ``no-env``: ``before`` with a transport whose ``requests`` session does not consult the environment on every
  call (proxy variables, ``NO_PROXY`` matching, ``.netrc``, CA bundle variables);
- ``no-trace-log``: ``before`` without the SDK's HTTP logging, network trace and distributed tracing policies
  (measured only: see the printed note on why the factory keeps them);
- ``factory``: what :class:`shared.storage.factory.StorageFactory` builds now (guarded, as the app uses it);
- ``aio``: the SDK's async ``TableClient`` (aiohttp), awaited one call at a time on an event loop, against
  ``sync+to_thread``: the factory's client called through ``asyncio.to_thread`` as the async triggers do.

Machines are noisy (other processes share the cores), so the configurations are interleaved in rounds and
the median of the rounds is printed with its ratio to ``before``. Then: a transaction of mixed
operations sent by the SDK and with our hand-built body (:mod:`shared.storage.table_batch`), our own
serialisation costs beside the SDK's (``_add_entity_properties`` / ``_convert_to_entity``), connection
pool sizes under 16 concurrent callers, and a cProfile of the transaction (top functions, and its CPU
grouped by library).

The numbers are Azurite on this machine, not Azure (where TLS adds CPU per new connection, which pooling
saves, and round trips take longer).

Run: ``.venv/bin/python -m benchmarks.storage_call_cpu [--calls 100] [--rounds 5] [--top 25]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import platform
import pstats
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.pipeline.policies import (
    DistributedTracingPolicy,
    HttpLoggingPolicy,
    NetworkTraceLoggingPolicy,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from azure.data.tables._deserialize import _convert_to_entity
from azure.data.tables._serialize import _add_entity_properties
from azure.data.tables.aio import TableClient as AsyncTableClient

from localdev.azurite import start_azurite
from shared.domain import CreatedBy, RunKind, RunRecord, RunTarget, new_run_id
from shared.storage import factory as storage_factory
from shared.storage.errors import guarded
from shared.storage.rows import run_row_key
from shared.storage.table_batch import submit_transaction
from shared.storage.table_common import body_json, pack_body

KINDS = ("get", "upsert", "query", "transaction")
TABLE = "runs"
_QUERY_ROWS = 20
_LIMITS = {"connection_timeout": storage_factory.CONNECTION_TIMEOUT_SECONDS,
           "read_timeout": storage_factory.READ_TIMEOUT_SECONDS, "retry_total": storage_factory.RETRY_TOTAL}
_OBSERVABILITY_POLICIES = (HttpLoggingPolicy, NetworkTraceLoggingPolicy, DistributedTracingPolicy)


class _NoObservabilityPolicies(TableServiceClient):
    """The SDK's service client without its logging and tracing policies (the ``no-trace-log`` toggle)."""

    def _configure_policies(self, **kwargs: Any) -> list[Any]:
        policies = super()._configure_policies(**kwargs)
        return [p for p in policies if not isinstance(p, _OBSERVABILITY_POLICIES)]


def _prefix(table_name: str) -> str:
    """The factory's table prefix that names ``table_name`` for the logical table ``runs``."""
    return table_name.removesuffix(TABLE)


def sample_run(tenant: str) -> RunRecord:
    """A run as a start writes it (a settings catalog snapshot)."""
    now = datetime.now(UTC)
    return RunRecord(id=new_run_id(now), tenant_id=tenant, kind=RunKind.POLICY_CAPTURE,
                     target=RunTarget(policy_type="settingsCatalog", policy_id=str(uuid.uuid4())),
                     created_by=CreatedBy(id=str(uuid.uuid4()), name="Operator One"), created_at=now,
                     derived_key="k" * 64)


def run_entity(run: RunRecord) -> dict[str, Any]:
    """The run row as the adapter writes it (same properties as ``table_runs``)."""
    return {"PartitionKey": run.tenant_id, "RowKey": run_row_key(run.id), "RunId": run.id,
            "Kind": str(run.kind), "Status": str(run.status), **pack_body(run.model_dump_json())}


def claim_ops(run: RunRecord) -> list[tuple[str, dict[str, Any]]]:
    """The 4 creates of a claim with an ``Idempotency-Key`` and an outbox row."""
    pk = run.tenant_id
    return [("create", run_entity(run)),
            ("create", {"PartitionKey": pk, "RowKey": "active|" + uuid.uuid4().hex, "RunId": run.id}),
            ("create", {"PartitionKey": pk, "RowKey": "idem|" + uuid.uuid4().hex, "RunId": run.id,
                        "Fingerprint": "f" * 64, "ExpiresAt": run.created_at}),
            ("create", {"PartitionKey": pk, "RowKey": "outbox|" + run.id, "RunId": run.id,
                        "Event": "queued"})]


def sync_calls(table: TableClient, tenant: str) -> dict[str, Callable[[], object]]:
    """One callable per call kind, over ``table`` in the partition ``tenant``."""
    seed = [sample_run(tenant) for _ in range(_QUERY_ROWS)]
    for run in seed:
        table.upsert_entity(run_entity(run), mode=UpdateMode.REPLACE)
    probe = run_entity(seed[0])
    params = {"pk": tenant}

    def query() -> object:
        pages = table.query_entities("PartitionKey eq @pk", parameters=params,
                                     results_per_page=_QUERY_ROWS).by_page()
        return list(next(pages))

    return {
        "get": lambda: table.get_entity(partition_key=tenant, row_key=probe["RowKey"]),
        "upsert": lambda: table.upsert_entity(probe, mode=UpdateMode.REPLACE),
        "query": query,
        "transaction": lambda: table.submit_transaction(claim_ops(sample_run(tenant))),
    }


def async_calls(table: AsyncTableClient, tenant: str, probe: dict[str, Any]
                ) -> dict[str, Callable[[], Awaitable[object]]]:
    """The same call kinds on the async client (rows seeded by the sync client)."""
    params = {"pk": tenant}

    async def get() -> object:
        return await table.get_entity(partition_key=tenant, row_key=probe["RowKey"])

    async def upsert() -> object:
        return await table.upsert_entity(probe, mode=UpdateMode.REPLACE)

    async def query() -> object:
        pages = table.query_entities("PartitionKey eq @pk", parameters=params,
                                     results_per_page=_QUERY_ROWS).by_page()
        return [e async for e in await pages.__anext__()]

    async def transaction() -> object:
        return await table.submit_transaction(claim_ops(sample_run(tenant)))

    return {"get": get, "upsert": upsert, "query": query, "transaction": transaction}


def timed(call: Callable[[], object], n: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call over ``n`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def timed_async(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]], n: int
                ) -> tuple[float, float]:
    """(CPU ms, wall ms) per awaited call over ``n`` calls, one at a time."""
    async def many() -> None:
        for _ in range(n):
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    loop.run_until_complete(many())
    return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n


def build_sync_variants(conn: str, table_name: str) -> dict[str, TableClient]:
    """The synchronous client configurations compared (each as the adapters see it: guarded)."""
    from azure.core.pipeline.transport import RequestsTransport

    before = TableServiceClient.from_connection_string(conn, **_LIMITS)
    no_env = TableServiceClient.from_connection_string(
        conn, transport=RequestsTransport(use_env_settings=False, **_LIMITS), **_LIMITS)
    no_obs = _NoObservabilityPolicies.from_connection_string(conn, **_LIMITS)
    factory = storage_factory.StorageFactory.from_connection_string(conn, table_prefix=_prefix(table_name))
    return {
        "before": guarded(before.get_table_client(table_name)),
        "no-env": guarded(no_env.get_table_client(table_name)),
        "no-trace-log": guarded(no_obs.get_table_client(table_name)),
        "factory": factory.table(TABLE),
    }


def compare_clients(conn: str, table_name: str, *, calls: int, rounds: int) -> dict[str, TableClient]:
    """Interleave the configurations in rounds and print the medians and ratios."""
    variants = build_sync_variants(conn, table_name)
    sync = {name: sync_calls(client, f"bench{name}") for name, client in variants.items()}
    loop = asyncio.new_event_loop()
    aio_client = AsyncTableClient.from_connection_string(conn, table_name, **_LIMITS)
    probe = run_entity(sample_run("benchaio"))
    variants["before"].upsert_entity(probe, mode=UpdateMode.REPLACE)
    aio = async_calls(aio_client, "benchaio", probe)
    factory_calls = sync["factory"]

    def via_thread(kind: str) -> Callable[[], Awaitable[object]]:
        return lambda: asyncio.to_thread(factory_calls[kind])

    thread_hop = {kind: via_thread(kind) for kind in KINDS}
    results: dict[tuple[str, str], list[tuple[float, float]]] = collections.defaultdict(list)
    warm = max(5, calls // 10)
    for round_no in range(rounds):
        order = list(sync)
        order = order[round_no % len(order):] + order[:round_no % len(order)]  # rotate: no fixed position
        for name in order:
            for kind in KINDS:
                timed(sync[name][kind], warm)
                results[name, kind].append(timed(sync[name][kind], calls))
        for name, table in (("aio", aio), ("sync+to_thread", thread_hop)):
            for kind in KINDS:
                timed_async(loop, table[kind], warm)
                results[name, kind].append(timed_async(loop, table[kind], calls))
    loop.run_until_complete(aio_client.close())
    loop.close()

    print(f"\nPer call, median of {rounds} rounds x {calls} calls (CPU = time.process_time of this process)")
    print(f"{'configuration':16} {'call':12} {'CPU ms':>8} {'wall ms':>8} {'CPU/before':>11} "
          f"{'wall/before':>12}")
    for name in [*sync, "aio", "sync+to_thread"]:
        for kind in KINDS:
            cpu = statistics.median(c for c, _ in results[name, kind])
            wall = statistics.median(w for _, w in results[name, kind])
            base_cpu = statistics.median(c for c, _ in results["before", kind])
            base_wall = statistics.median(w for _, w in results["before", kind])
            print(f"{name:16} {kind:12} {cpu:8.2f} {wall:8.2f} {cpu / base_cpu:11.2f} "
                  f"{wall / base_wall:12.2f}")
    return variants


def serialisation_costs(n: int = 2000) -> None:
    """Our row building and parsing beside the SDK's own entity conversion, per row, without I/O."""
    run = sample_run("benchser")
    entity = run_entity(run)
    wire = {**_add_entity_properties(entity), "odata.etag": "W/\"datetime'2024-01-01T00%3A00%3A00.0Z'\"",
            "Timestamp": "2024-01-01T00:00:00.0000000Z", "Timestamp@odata.type": "Edm.DateTime"}
    parsed = _convert_to_entity(wire)
    steps: dict[str, Callable[[], object]] = {
        "ours: RunRecord -> row (model_dump_json + pack_body)": lambda: run_entity(run),
        "SDK: _add_entity_properties(row)": lambda: _add_entity_properties(entity),
        "SDK: _convert_to_entity(response row)": lambda: _convert_to_entity(wire),
        "ours: row -> RunRecord (body_json + model_validate)":
            lambda: RunRecord.model_validate(body_json(parsed)),
    }
    print(f"\nSerialisation per run row (no I/O), median of 5 x {n}")
    for label, step in steps.items():
        cpu = statistics.median(timed(step, n)[0] for _ in range(5))
        print(f"  {cpu * 1000:8.1f} us  {label}")


def pool_sizes(conn: str, table_name: str, *, callers: int = 16, calls_each: int = 40) -> None:
    """``callers`` threads reading at once: the SDK's default pool (10 connections per host) against 32."""
    from azure.core.pipeline.transport import RequestsTransport

    def run(table: TableClient, label: str, pools: Callable[[], list[Any]]) -> None:
        probe = run_entity(sample_run("benchpool"))
        table.upsert_entity(probe, mode=UpdateMode.REPLACE)
        barrier = threading.Barrier(callers + 1)

        def caller() -> None:
            barrier.wait()
            for _ in range(calls_each):
                table.get_entity(partition_key="benchpool", row_key=probe["RowKey"])

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        for thread in threads:
            thread.start()
        barrier.wait()
        cpu, wall = time.process_time(), time.perf_counter()
        for thread in threads:
            thread.join()
        n = callers * calls_each
        opened = sum(p.num_connections for p in pools())
        print(f"  {label:34} CPU {(time.process_time() - cpu) * 1000 / n:6.2f} ms/call, "
              f"{n / (time.perf_counter() - wall):6.0f} calls/s, TCP connections opened {opened}")

    def pools_of(transport: Any) -> Callable[[], list[Any]]:
        return lambda: list(transport.session.adapters["http://"].poolmanager.pools._container.values())

    print(f"\nConnection pool, {callers} threads x {calls_each} point gets at once")
    for size in (10, 32):
        transport = RequestsTransport(use_env_settings=False, **_LIMITS)
        transport.open()
        adapter = transport.session.adapters["http://"]
        adapter.init_poolmanager(adapter._pool_connections, size)
        client = TableServiceClient.from_connection_string(conn, transport=transport, **_LIMITS)
        label = "SDK default pool (10 per host)" if size == 10 else f"pool of {size} per host"
        run(client.get_table_client(table_name), label, pools_of(transport))


def _library(filename: str) -> str:
    for marker, label in (("azure/data/tables", "azure-data-tables"), ("azure/core", "azure-core"),
                          ("/email/", "email (multipart parse)"), ("/re/", "re (boundary regexes)"),
                          ("concurrent/futures", "thread pools (part policies)"), ("threading", "threads"),
                          ("requests/", "requests"), ("urllib3/", "urllib3"), ("http/client", "http.client"),
                          ("socket", "socket"), ("/shared/", "ours")):
        if marker in filename:
            return label
    return "builtins/other" if filename == "~" else "other stdlib/libs"


def profile_transaction(table: TableClient, *, calls: int, top: int) -> None:
    """cProfile of the factory's client submitting claim transactions: top functions and CPU per library."""
    ops_list = [claim_ops(sample_run("benchprof")) for _ in range(calls + 10)]
    for ops in ops_list[:10]:
        table.submit_transaction(ops)
    profiler = cProfile.Profile()
    profiler.enable()
    for ops in ops_list[10:]:
        table.submit_transaction(ops)
    profiler.disable()
    stats = pstats.Stats(profiler)
    by_library: collections.Counter[str] = collections.Counter()
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_library[_library(filename)] += own
    total = sum(by_library.values())
    print(f"\nTransaction of 4 rows, cProfile over {calls} calls: own time by library (profiled, inflated)")
    for label, own in by_library.most_common():
        print(f"  {own * 1000 / calls:7.2f} ms/call {own / total:6.1%}  {label}")
    print(f"\nTop {top} functions by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)


def mixed_ops(table: TableClient, tenant: str) -> list[tuple[Any, ...]]:
    """A transition's kind of transaction: a conditional merge, an upsert, a delete and an insert."""
    run, gone = sample_run(tenant), sample_run(tenant)
    etag = table.upsert_entity(run_entity(run), mode=UpdateMode.REPLACE)["etag"]
    table.upsert_entity(run_entity(gone), mode=UpdateMode.REPLACE)
    merged = {"PartitionKey": tenant, "RowKey": run_entity(run)["RowKey"], "Status": "running"}
    return [("update", merged, {"mode": UpdateMode.MERGE, "etag": etag,
                                "match_condition": MatchConditions.IfNotModified}),
            ("upsert", {**run_entity(sample_run(tenant)), "Status": "queued"}, {"mode": UpdateMode.REPLACE}),
            ("delete", {"PartitionKey": tenant, "RowKey": run_entity(gone)["RowKey"]}),
            ("create", {"PartitionKey": tenant, "RowKey": "event|" + uuid.uuid4().hex, "Status": "running"})]


def hand_built_transactions(table: TableClient, *, calls: int, rounds: int) -> None:
    """The SDK's ``submit_transaction`` against :func:`shared.storage.table_batch.submit_transaction`.

    Both send the same operations (built by the SDK); only the multipart body and the answer's parsing
    differ. CPU is measured around the call alone: the rows each transaction needs are prepared first.
    """
    results: dict[str, list[float]] = collections.defaultdict(list)
    senders: dict[str, Callable[[list[tuple[Any, ...]]], object]] = {
        "sdk": table.submit_transaction, "hand-built": lambda ops: submit_transaction(table, ops)}
    for round_no in range(rounds):
        for name in (list(senders) if round_no % 2 == 0 else list(reversed(senders))):
            prepared = [mixed_ops(table, f"benchmixed{name}") for _ in range(calls)]
            began = time.process_time()
            for ops in prepared:
                senders[name](ops)
            results[name].append((time.process_time() - began) * 1000 / calls)
    print(f"\nA transaction of 4 mixed operations (conditional merge, upsert, delete, insert), CPU per call, "
          f"median of {rounds} rounds x {calls} calls:")
    base = statistics.median(results["sdk"])
    for name, samples in results.items():
        cpu = statistics.median(samples)
        print(f"  {name:12} {cpu:6.2f} ms  ({cpu / base:.2f} of the SDK's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="calls per kind per configuration per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=25, help="functions shown in the transaction profile")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    azurite = start_azurite()
    try:
        conn = azurite.connection_string
        table_name = "bench" + uuid.uuid4().hex[:8] + TABLE
        TableServiceClient.from_connection_string(conn).create_table(table_name)
        variants = compare_clients(conn, table_name, calls=args.calls, rounds=args.rounds)
        hand_built_transactions(variants["factory"], calls=args.calls, rounds=args.rounds)
        serialisation_costs()
        pool_sizes(conn, table_name)
        profile_transaction(variants["factory"], calls=args.calls, top=args.top)
    finally:
        azurite.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
