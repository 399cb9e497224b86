"""Storage round trips of one snapshot start, counted at our storage adapter.

What is counted: every HTTP request that the app's own storage clients send (the ``TableServiceClient`` and
``BlobServiceClient`` that :class:`~shared.storage.factory.StorageFactory` builds), recorded by a
``raw_request_hook``. Both SDKs run that hook inside their retry loop, so a retried request counts once per
attempt: a count is a round trip to storage, not a call of our code. An entity-group transaction is one
round trip (``$batch``); the operations inside it are reported beside it. A failed request (a ``409`` of a
claim that lost, a ``404`` of a point read) is a round trip like any other.

How: in this process, against the stack's Azurite and with the app's settings, the app's own container
(:mod:`shared.container`) is given a storage factory whose clients carry the hook, and the start path of
``POST .../snapshots`` runs through it one request at a time: authenticate the bearer token, check the
caller's role on the tenant, ``RunService.start``. Requests are attributed to a start by taking the hook's
record before and after it, so nothing else can be mixed in: no orchestration runs in this process, and the
durable host (its own task hub tables, the orchestrations and activities of earlier runs) talks to Azurite
through its own clients, which carry no hook.

What is not counted, on purpose:

- the HTTP front end and the durable engine: where ``RunService.start`` still takes a launcher, it gets one
  that does nothing, so the task hub's requests of ``start_new``, which belong to the engine, are left out
  (the run is still recorded as launched exactly as after a real launch);
- work a start hands off and the caller does not wait for (an outbox delivered after the response): the
  counts are those of the request path, which is what a caller waits for;
- the first request of a process (table creation, the issuer's signing keys): one cold start is measured
  and printed apart, then one uncounted warm-up of each case, so caches (of tokens, grants, table clients)
  are warm as on a busy instance.

The cases, each on its own policy ids (no Graph call is made, so the ids need not exist):

- ``new run``: a request never seen before (what every request of the HTTP burst is);
- ``new run with Idempotency-Key``: the same, with a fresh key;
- ``reuse``: the request of a ``new run`` again while that run is active (a double click);
- ``Idempotency-Key replay``: the request of a ``new run with Idempotency-Key`` again, with its key;
- ``reuse with a new Idempotency-Key``: the request of a ``new run`` again with a key never used before.

Each start's result is checked (a new run, or the earlier run reused); anything else is printed as
unexpected and fails the benchmark, since the counts would then describe another case.

:func:`start_snapshot` is the only place that knows the shape of the start path; adapt it, and nothing
else, when the path changes.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from localdev.stack import StackInfo, app_environment
from shared import container
from shared.auth import authenticate
from shared.domain import Role, RunKind, RunRecord, RunTarget
from shared.storage.factory import StorageFactory

__all__ = ["CASES", "RoundTripCounter", "StorageRequest", "measure", "start_snapshot"]

_READ_METHODS = frozenset({"GET", "HEAD"})
# One line per operation inside a transaction's multipart body: "PATCH http://.../table(PartitionKey=...)".
_BATCH_PART = re.compile(rb"^(POST|PUT|PATCH|MERGE|DELETE|GET) (\S+) HTTP/1\.1", re.MULTILINE)
POLICY_TYPE = "settingsCatalog"

CASES = ("new run", "new run with Idempotency-Key", "reuse", "Idempotency-Key replay",
         "reuse with a new Idempotency-Key")


@dataclass(frozen=True)
class StorageRequest:
    """One round trip to storage."""

    # Physical table name, ``Tables`` (table management), ``blob:<container>`` or ``queue:<name>``.
    resource: str
    method: str  # HTTP method, or ``$batch`` for an entity-group transaction
    write: bool
    operations: int = 1  # operations inside a transaction


def _resource(path: str, container_name: str) -> str:
    segments = [s for s in path.split("/") if s]
    if container_name in segments:
        return f"blob:{container_name}"
    # A storage queue, should a queue client ever be built with the same options: ".../<queue>/messages".
    if "messages" in segments[1:]:
        return f"queue:{segments[segments.index('messages', 1) - 1]}"
    # Tables: ".../<table>(PartitionKey='..',RowKey='..')", ".../<table>()?$filter=..", ".../Tables".
    return segments[-1].split("(", 1)[0] if segments else "?"


class RoundTripCounter:
    """A ``raw_request_hook`` for the storage clients: records every request they send (thread-safe)."""

    def __init__(self, container_name: str) -> None:
        self._container_name = container_name
        self._lock = threading.Lock()
        self._requests: list[StorageRequest] = []

    def __call__(self, pipeline_request: Any) -> None:
        request = pipeline_request.http_request
        path = urlsplit(request.url).path
        if path.endswith("/$batch"):
            body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
            parts = _BATCH_PART.findall(body)
            tables = sorted({_resource(urlsplit(url.decode()).path, self._container_name)
                             for _, url in parts})
            recorded = StorageRequest("+".join(tables) or "?", "$batch", True, len(parts))
        else:
            method = request.method.upper()
            recorded = StorageRequest(_resource(path, self._container_name), method,
                                      method not in _READ_METHODS)
        with self._lock:
            self._requests.append(recorded)

    def mark(self) -> int:
        """A position in the record, for :meth:`since`."""
        with self._lock:
            return len(self._requests)

    def since(self, mark: int) -> list[StorageRequest]:
        """The requests recorded after ``mark``."""
        with self._lock:
            return list(self._requests[mark:])


@contextmanager
def counted_app(info: StackInfo) -> Iterator[RoundTripCounter]:
    """The app's container in this process, configured as the stack's app and counting its storage requests.

    The settings are the app's own (:func:`localdev.stack.app_environment`), so the table prefix, the
    storage account and the token issuer are those of the function app; only the storage factory is
    replaced by one whose clients carry the counter.
    """
    os.environ.update(app_environment(storage=info.storage_connection_string,
                                      sim_base=info.simulator_base_url, ca_file=info.simulator_ca_file))
    # A stack on a shared Azurite has tables and a container of its own.
    os.environ.update(TABLE_PREFIX=info.table_prefix, SNAPSHOT_CONTAINER=info.snapshot_container)
    settings = container.settings()
    counter = RoundTripCounter(settings.snapshot_container)
    factory = StorageFactory.from_settings(settings, raw_request_hook=counter)
    # Every service in the container asks ``storage()`` for its repositories when it is first built.
    with mock.patch.object(container, "storage", return_value=factory):
        try:
            yield counter
        finally:
            factory.close()


async def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a service method as an async trigger does: coroutines awaited, blocking calls in a thread."""
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


async def _no_launch(run: RunRecord) -> None:
    """The durable engine's part of a launch is not ours to count (see the module docstring)."""


async def start_snapshot(token: str, tenant_id: str, policy_id: str,
                         idempotency_key: str | None = None) -> tuple[str, bool]:
    """What ``http_triggers/snapshots.py`` does for one POST, without HTTP and without the durable client.

    Keep in step with the trigger; this is the one function to adapt when the start path changes.

    Returns:
        The run id and whether the run was reused.
    """
    principal = await _call(authenticate, {"Authorization": f"Bearer {token}"}, container.settings())
    grant = await _call(container.access_service().require, principal, tenant_id, Role.OPERATOR)
    service = container.run_service()
    arguments: dict[str, Any] = {
        "principal": principal, "tenant_id": grant.tenant_id, "kind": RunKind.POLICY_CAPTURE,
        "target": RunTarget(policy_type=POLICY_TYPE, policy_id=policy_id), "scope": {},
        "idempotency_key": idempotency_key,
    }
    if "launch" in inspect.signature(service.start).parameters:
        arguments["launch"] = _no_launch
    result = await _call(service.start, **arguments)
    return str(result.run.id), bool(result.reused)


@dataclass
class Sample:
    """One start: its round trips and cost in this process."""

    requests: list[StorageRequest]
    wall_ms: float
    cpu_ms: float


async def _sample(counter: RoundTripCounter, token: str, tenant_id: str, policy_id: str,
                  key: str | None) -> tuple[Sample, str, bool]:
    mark = counter.mark()
    wall, cpu = time.perf_counter(), time.process_time()
    run_id, reused = await start_snapshot(token, tenant_id, policy_id, key)
    sample = Sample(counter.since(mark), (time.perf_counter() - wall) * 1000,
                    (time.process_time() - cpu) * 1000)
    return sample, run_id, reused


async def _measure(counter: RoundTripCounter, token: str, tenant_id: str,
                   samples: int) -> tuple[Sample, dict[str, list[Sample]], list[str]]:
    cases: dict[str, list[Sample]] = {case: [] for case in CASES}
    surprises: list[str] = []

    def expect(case: str, got: tuple[str, bool], run_id: str | None, reused: bool) -> None:
        if got[1] != reused or (run_id is not None and got[0] != run_id):
            surprises.append(f"{case}: run {got[0]} reused={got[1]}, expected "
                             f"{run_id or 'a new run'} reused={reused}")

    async def one_round(record: bool) -> None:
        plain, keyed = str(uuid.uuid4()), str(uuid.uuid4())
        key, other_key = f"bench-{uuid.uuid4()}", f"bench-{uuid.uuid4()}"
        # Each repeat follows its first start at once: should something launch these runs (a launcher in
        # the host reading what the start wrote), they must still be active when repeated.
        steps = [("new run", plain, None), ("reuse", plain, None),
                 ("reuse with a new Idempotency-Key", plain, other_key),
                 ("new run with Idempotency-Key", keyed, key), ("Idempotency-Key replay", keyed, key)]
        first: dict[str, str] = {}
        for case, policy_id, idem in steps:
            sample, run_id, reused = await _sample(counter, token, tenant_id, policy_id, idem)
            if case.startswith("new run"):
                expect(case, (run_id, reused), None, False)
                first[policy_id] = run_id
            else:
                expect(case, (run_id, reused), first[policy_id], True)
            if record:
                cases[case].append(sample)

    cold, _, _ = await _sample(counter, token, tenant_id, str(uuid.uuid4()), None)
    await one_round(record=False)
    for _ in range(samples):
        await one_round(record=True)
    return cold, cases, surprises


def measure(info: StackInfo, *, token: str, tenant_id: str, samples: int) -> dict[str, Any]:
    """Count the storage round trips of starts in this process (see the module docstring).

    Args:
        info: the running stack (its Azurite and token issuer are used).
        token: a bearer token of a caller with the operator role on ``tenant_id``.
        tenant_id: a registered managed tenant; the runs started here stay queued (nothing launches them).
        samples: starts per case.

    Returns:
        ``{"cold": ..., "cases": {case: summary}, "surprises": [...]}``; see :func:`summarize`.
    """
    with counted_app(info) as counter:
        cold, cases, surprises = asyncio.run(_measure(counter, token, tenant_id, samples))
    return {"cold": summarize([cold]), "cases": {case: summarize(s) for case, s in cases.items()},
            "surprises": surprises}


def _mean(values: list[int]) -> float:
    return round(statistics.fmean(values), 2) if values else 0.0


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """Mean round trips per start (all, writes, reads), their range, per table, and the in-process cost."""
    totals = [len(s.requests) for s in samples]
    writes = [sum(r.write for r in s.requests) for s in samples]
    per_resource: dict[str, dict[str, Any]] = {}
    for resource in sorted({r.resource for s in samples for r in s.requests}):
        kinds: Counter[str] = Counter()
        reads = written = operations = 0
        for s in samples:
            for r in s.requests:
                if r.resource != resource:
                    continue
                kinds[r.method] += 1
                written += r.write
                reads += not r.write
                operations += r.operations if r.method == "$batch" else 0
        entry: dict[str, Any] = {"reads": reads / len(samples), "writes": written / len(samples),
                                 "methods": {k: v / len(samples) for k, v in sorted(kinds.items())}}
        if operations:
            entry["operations_in_transactions"] = operations / len(samples)
        per_resource[resource] = entry
    return {
        "starts": len(samples),
        "round_trips": _mean(totals), "writes": _mean(writes),
        "reads": _mean([t - w for t, w in zip(totals, writes, strict=True)]),
        "round_trips_min": min(totals, default=0), "round_trips_max": max(totals, default=0),
        "per_table": per_resource,
        "wall_ms_median": round(statistics.median([s.wall_ms for s in samples]), 2) if samples else None,
        "cpu_ms_median": round(statistics.median([s.cpu_ms for s in samples]), 2) if samples else None,
    }


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def format_summary(name: str, summary: dict[str, Any]) -> list[str]:
    """Printable lines of one case."""
    spread = ("" if summary["round_trips_min"] == summary["round_trips_max"]
              else f", {summary['round_trips_min']}-{summary['round_trips_max']} per start")
    lines = [f"  {name}: storage round trips per start: {_number(summary['round_trips'])} "
             f"({_number(summary['writes'])} writes, {_number(summary['reads'])} reads{spread}; "
             f"{summary['starts']} starts, median {summary['wall_ms_median']:.1f} ms wall, "
             f"{summary['cpu_ms_median']:.1f} ms CPU in-process)"]
    for resource, entry in summary["per_table"].items():
        methods = ", ".join(f"{_number(n)} {m}" for m, n in entry["methods"].items())
        inside = (f"; {_number(entry['operations_in_transactions'])} operations in transactions"
                  if "operations_in_transactions" in entry else "")
        lines.append(f"      {resource}: {_number(entry['writes'])} writes, {_number(entry['reads'])} reads "
                     f"({methods}{inside})")
    return lines
