"""Wall time against the write floor, peak writes per window and per-phase times of one restore execution.

Starts Azurite (behind the counting storage proxy of :mod:`benchmarks.backup_set_capture`, which here also
times each request), the Graph + Entra
simulator and the local Durable host (and always stops them), seeds a generated customer tenant of N
policies (most of them with assignments), captures it into a backup set through the public API with the
simulator's throttling off, then gives the restore real work through the simulator's control API:

- ``--change delete`` (default): every captured object the restore can create again is deleted (types the
  catalog marks backup-only, tenant-wide singletons, built-in objects and the default enrollment
  configurations stay, as none of them can be deleted in Intune), so the restore creates them all and writes
  all their assignments;
- ``--change edit``: every such object that has a ``description`` gets a new one, so the restore updates
  them (and finds their assignments unchanged).

Then it switches the simulator's throttling on at Intune's published limits, starts
``POST /api/tenants/{id}/restores {"backupSetId": ...}`` (no preview: the execution plans for itself, and its
plan time is part of the wall time), follows the monitor to the end like a Logic App and prints:

- items and their outcomes, and defects: objects deleted that did not come back, display names that now
  exist more often than before, a run that did not succeed;
- writes the restore made per throttling family (the simulator's request log for the tenant from the POST to
  ``finishedAt``, throttled ones included since Graph counts them; ``$batch`` envelopes excluded, their
  items are logged one by one);
- the write floor: per family, writes divided by the family's allowed write rate (per app per tenant: 100
  writes per 20 s, 200 for "devices"); the binding family is the largest; reads are checked the same way
  against 1,000 (2,000) requests per 20 s, and the floor is the largest of all;
- wall time (POST to the run's ``finishedAt``, the server's clock on the same machine) and wall / floor
  (target at most 1.15). The floor is a steady rate; Graph's buckets and our budget both start full, so the
  first window's worth of writes may go at once, while in steady state the shared budget allows 100 writes
  per 22.05 s (21 slices of 1.05 s), so a long write-bound run tends to about 1.10;
- per stage, the floor of its busiest family (its writes at the allowed rate; a stage of fewer writes than
  one window's worth can go faster, since Graph's buckets and our budget start full);
- peak writes (and requests) per 20 s window per family against the limit, and the 429s the simulator
  answered;
- per-phase times from the orchestration's history (the local host's durable HTTP API, instance id = run
  id): start to plan, plan, each stage (its rounds of activities, how long an activity ran and waited for a
  worker slot, the orchestrator's gap between one round's last answer and the next dispatch, retry timers),
  finish; and the orchestrator's episodes (how their spacing grows with the history it replays);
- idle write time: seconds inside each stage in which the stage's busiest family made no write;
- storage transactions per item at the app's own storage (tables and blobs, through the proxy), by table
  and method, with each kind's round-trip times, and CPU time per process;
- with ``--profile-host FILE``, py-spy samples the durable host during the restore (collapsed stacks, for a
  look at where its time goes; py-spy is not a dependency of the project and must be installed apart).

With ``--out``, the numbers go to a JSON file and the raw material (the simulator's request log, the
orchestration history, the plan, the run's items) to ``<out>.raw.json`` beside it.

Throttle scale: ``--scale`` is passed to the simulator's ``PUT /_sim/throttling``. The simulator has no time
scale that keeps a run's shape while making it shorter: its scale divides each bucket's capacity *and* its
window, so the refill rate (and the floor) stays the published one and only bursts get shorter. The app's
client budget has no matching setting and always plans for the published 100 writes per 20 s, so a scale
can draw 429s once the simulator's bucket (100 / scale writes) is smaller than the bursts the app sends
(none at scale 4 with 60 policies); with a scale, peaks are also printed per scaled window. Scale 1 is the
measurement: a restore of 300 policies takes about a minute at the published rate, so no time scaling is
needed.

The numbers come from the local stack (Python Durable host + Azurite on this 2-core machine), not from Azure,
and move with the machine's load: print the load average beside them.

Run: ``.venv/bin/python -m benchmarks.restore_execute [--policies 300] [--seed 42] [--scale 1]
[--change delete|edit] [--poll 1] [--timeout 1800] [--out FILE.json] [--profile-host FILE --py-spy PATH]``
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import secrets
import signal
import statistics
import subprocess
import tempfile
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

from benchmarks.backup_set_capture import CountingProxy, StorageCall, cpu_seconds
from benchmarks.graph_read_rate import busiest_window
from localdev.azurite import start_azurite
from localdev.graphsim.catalog import limits_for
from localdev.stack import (
    StackInfo,
    create_customer_tenant,
    mint_token,
    running_stack,
    sim_client,
    tenant_registration,
)
from shared.domain.restore import (
    ASSIGNMENTS_STAGE,
    PlanItem,
    StagePlan,
    restore_batch_instance,
    restore_batches,
    stages_of,
)
from shared.durable_names import APPLY_RESTORE_ITEM, FINISH_RESTORE, MARK_RUN_RUNNING, PLAN_RESTORE
from shared.graph.catalog import CATALOG

TARGET_RATIO = 1.15
# The client budget's window (20 s) plus its margin: the time one window's worth of requests takes.
BUDGET_WINDOW = 21.0


# --- small HTTP helpers -----------------------------------------------------------------------------------

def _api(info: StackInfo, token: str) -> httpx.Client:
    return httpx.Client(base_url=info.api_base_url, timeout=120.0,
                        headers={"Authorization": f"Bearer {token}"})


def _ok(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code not in (200, 201, 202, 204):
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _wait_terminal(client: httpx.Client, url: str, *, poll: float,
                   timeout: float) -> tuple[dict[str, Any], int]:
    deadline = time.monotonic() + timeout
    polls = 0
    while time.monotonic() < deadline:
        time.sleep(poll)
        polled = _ok(client.get(url), "monitor")
        polls += 1
        if polled.status_code == 200:
            return dict(polled.json()), polls
        url = polled.headers.get("Location", url)
    raise TimeoutError(f"run not finished within {timeout:.0f} s: {url}")


def _paged(client: httpx.Client, path: str, what: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"top": 1000}
    while True:
        page = _ok(client.get(path, params=params), what).json()
        items.extend(page["items"])
        if not page.get("continuation"):
            return items
        params["continuation"] = page["continuation"]


def _sim_objects(sim: httpx.Client, tenant_id: str, type_key: str) -> list[dict[str, Any]]:
    response = sim.get(f"/_sim/tenants/{tenant_id}/objects/{type_key}")
    response.raise_for_status()
    return list(response.json()["value"])


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("displayName") or obj.get("name") or "")


# --- storage, counted and timed ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TimedCall:
    """One storage request of the app, and how long Azurite (through the proxy) took to answer it."""

    service: str
    resource: str
    method: str
    at: float  # epoch seconds when it arrived
    seconds: float


class TimedProxy(CountingProxy):
    """The counting proxy, also recording each request's round trip to Azurite."""

    def __init__(self, upstream_ports: dict[str, int]) -> None:
        super().__init__(upstream_ports)
        self.timed: list[TimedCall] = []

    def _handler(self, service: str, port: int) -> Any:
        inner = super()._handler(service, port)

        async def handle(request: Any) -> Any:
            at, began = time.time(), time.perf_counter()
            try:
                return await inner(request)
            finally:
                segments = [s for s in request.path.split("/") if s][1:]
                resource = segments[0].split("(", 1)[0] if segments else "?"
                took = time.perf_counter() - began
                self.timed.append(TimedCall(service, resource, request.method, at, took))
        return handle


@contextmanager
def timed_stack(demo_secret: str) -> Iterator[tuple[StackInfo, TimedProxy, int]]:
    """Azurite in memory, the timing proxy in front of it for the app (not the task hub), simulator, host."""
    azurite = start_azurite()
    proxy = TimedProxy({"table": azurite.table_port, "blob": azurite.blob_port})
    try:
        proxy.start()
        with tempfile.TemporaryDirectory(prefix="bench-restore-") as state, \
                running_stack(storage=azurite.connection_string, state_dir=Path(state),
                              demo_secret=demo_secret,
                              extra_env={"STORAGE_CONNECTION_STRING": proxy.connection_string(
                                  azurite.queue_port)}) as info:
            yield info, proxy, azurite.pid
    finally:
        proxy.stop()
        azurite.stop()


# --- setting the scene ------------------------------------------------------------------------------------

@dataclass
class Scene:
    """The tenant, its backup set and what was changed in the tenant before the restore."""

    tenant_id: str
    backup_set_id: str
    capture_s: float
    changed: dict[str, list[str]] = field(default_factory=dict)  # type key -> display names changed
    before: dict[str, list[str]] = field(default_factory=dict)  # type key -> display names before the change
    kept: Counter[str] = field(default_factory=Counter)  # type key -> captured objects left alone


def restorable(type_key: str) -> bool:
    """Whether the restore can create (not only update) objects of this type."""
    policy_type = CATALOG.get(type_key)
    return policy_type is not None and policy_type.backup_only is None and not policy_type.singleton


def set_scene(info: StackInfo, sim: httpx.Client, demo_secret: str, *, policies: int, seed: int,
              change: str, poll: float, timeout: float) -> tuple[Scene, str]:
    """Tenant, admin, capture, then delete (or edit) what the restore brings back; the admin's token too."""
    tenant_id = str(uuid.uuid4())
    name = f"Bench restore {tenant_id[:8]}"
    create_customer_tenant(sim, tenant_id=tenant_id, secret=demo_secret, display_name=name,
                           preset="generated", seed=seed, policies=policies)
    platform = mint_token(sim, oid=str(uuid.uuid4()), roles=["Platform.Admin"], idtyp="app")
    admin_oid = str(uuid.uuid4())
    with _api(info, platform) as client:
        _ok(client.put(f"/tenants/{tenant_id}", json=tenant_registration(name)), "register tenant")
        _ok(client.put(f"/tenants/{tenant_id}/grants/{admin_oid}", json={"role": "admin"}), "grant")
    admin = mint_token(sim, oid=admin_oid, name="Bench Admin")
    sim.put("/_sim/throttling", json={"enabled": False}).raise_for_status()

    with _api(info, admin) as client:
        began = time.perf_counter()
        request = {"name": "before restore", "selection": {"all": True}}
        started = _ok(client.post(f"/tenants/{tenant_id}/backup-sets", json=request), "start backup")
        run, _ = _wait_terminal(client, started.headers["Location"], poll=poll, timeout=timeout)
        capture_s = time.perf_counter() - began
        if run["status"] != "succeeded":
            raise RuntimeError(f"the capture ended {run['status']}: {run.get('counts')}")
        backup_set_id = str(started.json()["backupSet"]["id"])
        items = _paged(client, f"/tenants/{tenant_id}/backup-sets/{backup_set_id}", "set items")

    scene = Scene(tenant_id=tenant_id, backup_set_id=backup_set_id, capture_s=capture_s)
    captured: dict[str, set[str]] = collections.defaultdict(set)
    for item in items:
        if item["status"] == "captured":
            type_key, _, source_id = str(item["itemId"]).partition(":")
            captured[type_key].add(source_id)
    for type_key, ids in sorted(captured.items()):
        if not restorable(type_key):
            scene.kept[type_key] += len(ids)
            continue
        policy_type = CATALOG[type_key]
        objects = _sim_objects(sim, tenant_id, type_key)
        scene.before[type_key] = [_name(o) for o in objects]
        for obj in objects:
            if obj["id"] not in ids:
                continue
            # Default enrollment configurations (priority 0) exist in every tenant and cannot be deleted.
            default = type_key == "enrollmentConfiguration" and obj.get("priority") == 0
            if policy_type.is_builtin(obj) or default or (change == "edit" and "description" not in obj):
                scene.kept[type_key] += 1
                continue
            body: dict[str, Any] = {"op": "delete", "type": type_key, "id": obj["id"]}
            if change == "edit":
                body = {"op": "edit", "type": type_key, "id": obj["id"],
                        "patch": {"description": f"changed before the restore benchmark {obj['id'][:8]}"}}
            sim.post(f"/_sim/tenants/{tenant_id}/mutations", json=body).raise_for_status()
            scene.changed.setdefault(type_key, []).append(_name(obj))
    return scene, admin


# --- the restore ------------------------------------------------------------------------------------------

@dataclass
class Observed:
    """What one restore did, from the outside."""

    run: dict[str, Any]
    posted_at: float
    monitor_wall: float
    polls: int
    graph_log: list[dict[str, Any]]
    history: list[dict[str, Any]]
    plan: dict[str, Any]
    run_items: list[dict[str, Any]]
    storage: list[StorageCall]
    timed: list[TimedCall]
    cpu: dict[str, float]
    after: dict[str, list[str]]  # type key -> display names in the tenant after the restore
    # instance id -> (stage, history) of each batch sub-orchestration
    batch_histories: dict[str, tuple[int, list[dict[str, Any]]]] = field(default_factory=dict)


@contextmanager
def sampled(pid: int, out: Path | None, py_spy: str) -> Iterator[None]:
    """Sample the durable host's stacks with py-spy while the block runs (collapsed stacks in ``out``)."""
    if out is None:
        yield
        return
    proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE),
                             "--format", "raw", "--nonblocking", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


SAMPLE_RATE = 50  # py-spy samples per second


def profile_summary(path: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """Where the host's threads were, from py-spy's collapsed stacks: (place, seconds, share), largest first.

    A sample of a worker thread is charged to the first function it runs for the event loop (the app's storage
    and orchestrator calls run there); other samples to their innermost frame. Idle workers are left out.
    """
    places: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [f.split(" (", 1)[0] for f in stack.split(";")]
        if "_WorkItem.run" in frames:
            index = frames.index("_WorkItem.run")
            place = frames[index + 1] if index + 1 < len(frames) else ""
        else:
            place = frames[-1] if frames[-1] != "_worker" else ""
        if place:
            places[place] += int(count)
    total = sum(places.values()) or 1
    return [(place, n / SAMPLE_RATE, n / total) for place, n in places.most_common(top)]


def run_restore(info: StackInfo, proxy: TimedProxy, sim: httpx.Client, scene: Scene, admin: str, *,
                scale: float, poll: float, timeout: float, cpu_pids: dict[str, int],
                profile: Path | None = None, py_spy: str = "py-spy") -> Observed:
    # Let the capture's requests leave the client budget's window, so the restore starts with a full budget.
    time.sleep(BUDGET_WINDOW)
    throttling = {"enabled": True, "scale": scale, "retryAfter": "int"}
    sim.put("/_sim/throttling", json=throttling).raise_for_status()
    tenant_id = scene.tenant_id
    with _api(info, admin) as client:
        _ok(client.get("/health"), "health")  # the connection, outside the timing
        mark = proxy.mark()
        cpu_before = {name: cpu_seconds(pid) for name, pid in cpu_pids.items()}
        with sampled(info.pids["dfhost"], profile, py_spy):
            posted_at = time.time()
            began = time.perf_counter()
            started = _ok(client.post(f"/tenants/{tenant_id}/restores",
                                      json={"backupSetId": scene.backup_set_id}), "start restore")
            run, polls = _wait_terminal(client, started.headers["Location"], poll=poll, timeout=timeout)
            monitor_wall = time.perf_counter() - began
        storage = proxy.since(mark, proxy.mark())
        timed = [c for c in proxy.timed if posted_at <= c.at <= time.time()]
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in cpu_pids.items()}
        sim.put("/_sim/throttling", json={"enabled": False}).raise_for_status()
        finished = _epoch(run["finishedAt"])
        logged = sim.get("/_sim/requests", params={"tenant": tenant_id, "since": str(posted_at)})
        graph_log = [e for e in logged.raise_for_status().json()["value"] if e["time"] <= finished + 1.0]
        plan = dict(_ok(client.get(f"/tenants/{tenant_id}/runs/{run['id']}/preview"), "plan").json())
        run_items = _paged(client, f"/tenants/{tenant_id}/runs/{run['id']}/items", "run items")
    status = httpx.get(f"{info.host_base_url}/runtime/webhooks/durabletask/instances/{run['id']}",
                       params={"showHistory": "true", "showHistoryOutput": "true", "showInput": "false"},
                       timeout=60.0)
    history = list(status.json().get("historyEvents") or []) if status.status_code in (200, 202) else []
    # Each stage's items are applied by batch sub-orchestrations: their histories hold the activities.
    batch_histories: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    for stage in _stages(plan):
        for number in range(len(restore_batches(stage))):
            instance = restore_batch_instance(run["id"], stage.stage, number)
            answer = httpx.get(f"{info.host_base_url}/runtime/webhooks/durabletask/instances/{instance}",
                               params={"showHistory": "true", "showHistoryOutput": "true",
                                       "showInput": "false"}, timeout=60.0)
            if answer.status_code in (200, 202):
                batch_histories[instance] = (stage.stage, list(answer.json().get("historyEvents") or []))
    after = {key: [_name(o) for o in _sim_objects(sim, tenant_id, key)] for key in scene.changed}
    return Observed(run=run, posted_at=posted_at, monitor_wall=monitor_wall, polls=polls, graph_log=graph_log,
                    history=history, plan=plan, run_items=run_items, storage=storage, timed=timed, cpu=cpu,
                    after=after, batch_histories=batch_histories)


# --- the orchestration's phases ---------------------------------------------------------------------------

@dataclass
class Round:
    """One fan-out of apply activities (a chunk, or a retry round of one) and its answers."""

    scheduled: float
    completed: float = 0.0
    positions: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # activity start -> answer seen
    queued: list[float] = field(default_factory=list)  # dispatch -> activity start (waiting for a slot)
    statuses: Counter[str] = field(default_factory=Counter)
    retried: set[int] = field(default_factory=set)
    stage: int = -1


@dataclass
class Phases:
    """Times taken from the orchestration's history (epoch seconds)."""

    started: float = 0.0
    mark: tuple[float, float] | None = None
    plan: list[tuple[float, float]] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    timers: list[tuple[float, float]] = field(default_factory=list)
    finish: tuple[float, float] | None = None
    completed: float = 0.0
    # Per orchestrator episode: when it started, how long the history was, answers it took in.
    episodes: list[tuple[float, int, int]] = field(default_factory=list)


def phases_of(history: list[dict[str, Any]]) -> Phases:
    """Group the history's activities into plan, apply rounds and finish.

    The local host stamps a ``TaskCompleted`` event with the moment the activity got a worker slot and
    started, not when it ended; an answer is seen by the orchestrator in the next episode, whose
    ``OrchestratorStarted`` time is taken as the activity's end (at most one episode late).
    """
    phases = Phases()
    scheduled: dict[int, tuple[str, float]] = {}
    round_of: dict[int, Round] = {}
    current: Round | None = None
    timer_created: dict[int, float] = {}
    episode = 0.0
    for index, event in enumerate(history):
        kind, at = event["EventType"], _epoch(event["Timestamp"])
        if kind == "OrchestratorStarted":
            episode = at
            phases.episodes.append((at, index, 0))
        elif kind == "ExecutionStarted":
            phases.started = at
        elif kind == "ExecutionCompleted":
            phases.completed = at
        elif kind == "TaskScheduled":
            scheduled[event["EventId"]] = (event["Name"], at)
            if event["Name"] == APPLY_RESTORE_ITEM:
                # Tasks scheduled in one episode sit next to each other in the history.
                if current is None:
                    current = Round(scheduled=at)
                    phases.rounds.append(current)
                round_of[event["EventId"]] = current
                continue
        elif kind in ("TaskCompleted", "TaskFailed"):
            name, sent = scheduled.get(event["TaskScheduledId"], ("?", at))
            if phases.episodes:
                began, length, answers = phases.episodes[-1]
                phases.episodes[-1] = (began, length, answers + 1)
            if name == APPLY_RESTORE_ITEM:
                owner = round_of[event["TaskScheduledId"]]
                owner.completed = max(owner.completed, episode)
                owner.latencies.append(episode - at)
                owner.queued.append(at - sent)
                result = json.loads(event["Result"]) if isinstance(event.get("Result"), str) else \
                    event.get("Result") or {}
                if isinstance(result, dict) and "position" in result:
                    owner.positions.append(int(result["position"]))
                    owner.statuses[str(result.get("status"))] += 1
                    if result.get("status") == "retry":
                        owner.retried.add(int(result["position"]))
            elif name == PLAN_RESTORE:
                phases.plan.append((sent, episode))
            elif name == MARK_RUN_RUNNING:
                phases.mark = (sent, episode)
            elif name == FINISH_RESTORE:
                phases.finish = (sent, episode)
        elif kind == "TimerCreated":
            timer_created[event["EventId"]] = at
        elif kind == "TimerFired":
            phases.timers.append((timer_created.get(event.get("TimerId", -1), at), episode))
        if kind not in ("OrchestratorStarted", "OrchestratorCompleted"):
            current = None
    return phases


def _stages(plan: dict[str, Any]) -> list[StagePlan]:
    """The execution's stages, as the service cuts them from the plan."""
    items = [PlanItem.model_validate(i) for i in plan["items"]]
    return stages_of(items, restore_order={key: t.restore_order for key, t in CATALOG.items()},
                     family={key: t.throttle_family for key, t in CATALOG.items()},
                     with_assignments=bool(plan["includeAssignments"]))


def stage_label(stage: int) -> str:
    if stage == ASSIGNMENTS_STAGE:
        return "assignments"
    kinds = sorted(k for k, t in CATALOG.items() if t.restore_order == stage)
    return f"order {stage} ({', '.join(kinds[:3])}{', ...' if len(kinds) > 3 else ''})"


# --- the numbers ------------------------------------------------------------------------------------------

def _writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] not in ("GET", "HEAD") and not e["path"].endswith("/$batch")]


def _floor_of(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Per family: the seconds its writes and its requests need at the allowed rates (the larger of both)."""
    by_family: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in entries:
        if not entry["path"].endswith("/$batch"):
            by_family[entry["bucket"] or "unresolved"].append(entry)
    out: dict[str, float] = {}
    for family, rows in by_family.items():
        w_app, _, any_app, _, window = limits_for(family)
        out[family] = max(len(_writes(rows)) / (w_app / window), len(rows) / (any_app / window))
    return out


def _idle(times: list[float], start: float, end: float, gap: float = 1.0) -> float:
    """Seconds in [start, end] not within ``gap`` seconds after some write (no write for over a second)."""
    idle, last = 0.0, start
    for t in sorted(times):
        if t - last > gap:
            idle += t - last - gap
        last = max(last, t)
    if end - last > gap:
        idle += end - last - gap
    return idle


def report(scene: Scene, obs: Observed, *, scale: float = 1.0) -> tuple[dict[str, Any], list[str]]:
    run = obs.run
    counts = run["counts"]
    defects: list[str] = []
    finished = _epoch(run["finishedAt"])
    wall = finished - obs.posted_at
    print(f"\nrestore run {run['id']}: status {run['status']}, counts {counts}")
    print(f"wall time (POST -> finishedAt): {wall:.1f} s; as the monitor saw it: {obs.monitor_wall:.1f} s "
          f"({obs.polls} polls)")

    # Items and the tenant afterwards.
    plan_items = [PlanItem.model_validate(i) for i in obs.plan["items"]]
    summary = obs.plan["summary"]
    actions = Counter(str(i["action"]) for i in obs.run_items)
    statuses = Counter(str(i["status"]) for i in obs.run_items)
    assign_plan = Counter(i.assignments.action for i in plan_items)
    changed_n = sum(len(v) for v in scene.changed.values())
    print(f"items: plan {len(plan_items)} {summary}; assignments {dict(assign_plan)}; outcomes "
          f"{dict(actions)} {dict(statuses)}; changed in the tenant before: {changed_n} objects of "
          f"{len(scene.changed)} types; captured but left alone: {sum(scene.kept.values())}")
    missing: list[str] = []
    duplicated: list[str] = []
    for type_key, names in scene.changed.items():
        now = Counter(obs.after.get(type_key, []))
        was = Counter(scene.before.get(type_key, []))
        missing.extend(f"{type_key}:{n}" for n in names if now[n] == 0)
        duplicated.extend(f"{type_key}:{n}" for n in set(names) if now[n] > was[n])
    if missing:
        defects.append(f"{len(missing)} objects were not restored, e.g. {missing[:3]}")
    if duplicated:
        defects.append(f"{len(duplicated)} objects exist more often after the restore than before, e.g. "
                       f"{duplicated[:3]}")
    if run["status"] != "succeeded":
        errors = Counter((i.get("error") or {}).get("code") for i in obs.run_items if i["status"] == "failed")
        defects.append(f"run {run['status']}: {dict(statuses)} (error codes {dict(errors)})")
        for item in obs.run_items:
            if item["status"] == "failed":
                code = (item.get("error") or {}).get("code")
                print(f"  failed: {item['itemId']} {item.get('displayName')!r}: {code}")

    # Graph writes per family, the floors and the peaks.
    log = [e for e in obs.graph_log if not e["path"].endswith("/$batch")]
    writes = _writes(log)
    by_family: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in log:
        by_family[entry["bucket"] or "unresolved"].append(entry)
    throttled = sum(e["throttled"] for e in log)
    print(f"\nGraph requests of the restore (simulator log): {len(log)} ({len(writes)} writes), 429s "
          f"{throttled}, other non-2xx {sum(1 for e in log if e['status'] >= 300 and not e['throttled'])}")
    families: dict[str, Any] = {}
    write_floor, floor, binding = 0.0, 0.0, ""
    for family, entries in sorted(by_family.items(), key=lambda kv: -len(_writes(kv[1]))):
        w_app, _, any_app, _, window = limits_for(family)
        fam_writes = _writes(entries)
        f_write = len(fam_writes) / (w_app / window)
        f_any = len(entries) / (any_app / window)
        if f_write > write_floor:
            write_floor, binding = f_write, family
        floor = max(floor, f_write, f_any)
        peak_w = busiest_window([e["time"] for e in fam_writes], window)
        peak_any = busiest_window([e["time"] for e in entries], window)
        n429 = sum(e["throttled"] for e in entries)
        methods = Counter(e["method"] for e in fam_writes)
        families[family] = {"requests": len(entries), "writes": len(fam_writes), "methods": dict(methods),
                            "throttled": n429, "write_limit": w_app, "limit": any_app, "window_s": window,
                            "write_floor_s": round(f_write, 2), "request_floor_s": round(f_any, 2),
                            "peak_writes": peak_w, "peak_requests": peak_any}
        print(f"  {family:20s} writes {len(fam_writes):5d} {dict(methods)}, requests {len(entries):5d}, 429s "
              f"{n429}; write floor {f_write:6.1f} s at {w_app}/{window:g} s; peak writes per {window:g} s "
              f"{peak_w} / {w_app}; peak requests {peak_any} / {any_app}")
        if peak_w > w_app or peak_any > any_app:
            defects.append(f"family {family}: {peak_w} writes ({peak_any} requests) in one {window:g} s "
                           f"window, over the limit {w_app} ({any_app})")
        if scale != 1:
            # What the simulator enforced: the limit and the window both divided by the scale.
            s_window, s_limit = window / scale, max(w_app / scale, 1.0)
            s_peak = busiest_window([e["time"] for e in fam_writes], s_window)
            families[family].update(scaled_window_s=s_window, scaled_write_limit=s_limit,
                                    scaled_peak_writes=s_peak)
            print(f"  {'':20s} scaled by {scale:g}: peak writes per {s_window:g} s {s_peak} / {s_limit:g}")
        if n429:
            defects.append(f"family {family}: the simulator answered {n429} requests with 429")
    ratio = wall / write_floor if write_floor else None
    print(f"write floor (binding family {binding}): {write_floor:.1f} s; floor including reads: "
          f"{floor:.1f} s")
    if ratio is not None:
        print(f"wall / write floor = {wall:.1f} / {write_floor:.1f} = {ratio:.3f} (target <= {TARGET_RATIO})")

    # Phases from the orchestration history.
    stages = _stages(obs.plan)
    phases = phases_of(obs.history)
    for stage_number, batch_history in obs.batch_histories.values():
        for round_ in phases_of(batch_history).rounds:
            round_.stage = stage_number
            phases.rounds.append(round_)
    phases.rounds.sort(key=lambda r: r.scheduled)
    phase_rows: list[dict[str, Any]] = []
    episode_rows: list[dict[str, Any]] = []
    if not obs.history:
        print("\n(no orchestration history: the host's durable API did not answer)")
    else:
        print("\nphases (orchestration history; t = seconds after the POST):")
        if phases.mark:
            print(f"  POST -> orchestration started {phases.started - obs.posted_at:6.2f} s; mark running "
                  f"{phases.mark[1] - phases.mark[0]:.2f} s")
        for sent, done in phases.plan:
            print(f"  plan         t={sent - obs.posted_at:7.2f} .. {done - obs.posted_at:7.2f}  "
                  f"{done - sent:6.2f} s")
            phase_rows.append({"phase": "plan", "start": round(sent - obs.posted_at, 2),
                               "seconds": round(done - sent, 2)})
        for stage in stages:
            rounds = [r for r in phases.rounds if r.stage == stage.stage]
            if not rounds:
                continue
            start, end = rounds[0].scheduled, max(r.completed for r in rounds)
            in_stage = [e for e in log if start <= e["time"] <= end]
            stage_floors = _floor_of(in_stage)
            busiest = max(stage_floors, key=lambda f: stage_floors[f], default="")
            stage_floor = stage_floors.get(busiest, 0.0)
            latencies = [x for r in rounds for x in r.latencies]
            queued = [x for r in rounds for x in r.queued]
            gaps = [b.scheduled - a.completed for a, b in itertools.pairwise(rounds)]
            busiest_writes = [e["time"] for e in _writes(in_stage) if e["bucket"] == busiest]
            idle = _idle(busiest_writes, start, end) if busiest_writes else end - start
            retries = sum(r.statuses.get("retry", 0) for r in rounds)
            # A round ends with its slowest answer: the time from its median answer to its last is spent
            # waiting on a few items (a throttled family's budget) while most worker slots have nothing to do.
            held = sum(r.completed - statistics.median(r.scheduled + q + x
                                                       for q, x in zip(r.queued, r.latencies, strict=True))
                       for r in rounds if r.latencies)
            print(f"  {stage_label(stage.stage):58s} t={start - obs.posted_at:7.2f} .. "
                  f"{end - obs.posted_at:7.2f}  {end - start:6.2f} s; {len(stage.positions)} items, "
                  f"{len(rounds)} rounds, writes {len(_writes(in_stage))} (busiest family {busiest or '-'}: "
                  f"floor {stage_floor:.1f} s, idle {idle:.1f} s); activity run median "
                  f"{statistics.median(latencies):.2f} s max {max(latencies):.2f} s; wait for a slot median "
                  f"{statistics.median(queued):.2f} s; gap between rounds "
                  f"median {statistics.median(gaps) if gaps else 0:.2f} s sum {sum(gaps):.2f} s; "
                  f"retries {retries}; rounds held by their slowest items {held:.1f} s")
            phase_rows.append({
                "phase": stage_label(stage.stage), "stage": stage.stage,
                "start": round(start - obs.posted_at, 2),
                "seconds": round(end - start, 2), "items": len(stage.positions), "rounds": len(rounds),
                "writes": len(_writes(in_stage)), "busiest_family": busiest, "floor_s": round(stage_floor, 2),
                "idle_write_s": round(idle, 2), "latency_median_s": round(statistics.median(latencies), 3),
                "latency_max_s": round(max(latencies), 3),
                "slot_wait_median_s": round(statistics.median(queued), 3),
                "round_gap_median_s": round(statistics.median(gaps), 3) if gaps else 0.0,
                "round_gaps_s": round(sum(gaps), 2), "retries": retries, "held_by_slowest_s": round(held, 2),
                "round_seconds": [round(r.completed - r.scheduled, 2) for r in rounds]})
        prev_end = None
        between = 0.0
        ordered = [r for r in phases.rounds if r.stage >= 0]
        for r in ordered:
            if prev_end is not None and r.scheduled > prev_end:
                between += r.scheduled - prev_end
            prev_end = max(prev_end or 0.0, r.completed)
        if phases.finish:
            sent, done = phases.finish
            print(f"  finish       t={sent - obs.posted_at:7.2f} .. {done - obs.posted_at:7.2f}  "
                  f"{done - sent:6.2f} s")
            phase_rows.append({"phase": "finish", "start": round(sent - obs.posted_at, 2),
                               "seconds": round(done - sent, 2)})
        # The orchestrator replays its whole history in every episode: the shortest gap between episodes
        # (answers were waiting) shows what one episode costs as the history grows.
        episodes = phases.episodes
        thirds = [episodes[i * len(episodes) // 3:(i + 1) * len(episodes) // 3 + 1] for i in range(3)]
        episode_rows = []
        for part in thirds:
            gaps_ms = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(part)]
            if gaps_ms:
                episode_rows.append({"history_events_from": part[0][1], "min_gap_ms": round(min(gaps_ms), 1),
                                     "median_gap_ms": round(statistics.median(gaps_ms), 1),
                                     "answers_per_episode": round(statistics.mean(e[2] for e in part), 2)})
        longest = max((len(h) for _, h in obs.batch_histories.values()), default=0)
        print(f"  batches: {len(obs.batch_histories)} sub-orchestrations, the longest history {longest} "
              "events")
        print(f"  orchestrator: {len(episodes)} episodes, {len(obs.history)} history events; per third of "
              "the run (history length at its start: shortest / median gap between episodes, answers per "
              "episode): "
              + "; ".join(f"{r['history_events_from']}: {r['min_gap_ms']:.0f} / {r['median_gap_ms']:.0f} ms, "
                          f"{r['answers_per_episode']:.1f}" for r in episode_rows))
        timers = sum(b - a for a, b in phases.timers)
        print(f"  retry timers: {len(phases.timers)} ({timers:.1f} s); orchestrator time between one round's "
              f"last answer and the next dispatch, whole run: {between:.2f} s over {len(ordered)} rounds")

    # Storage at the app's clients.
    items_n = max(len(plan_items), 1)
    tables = [c for c in obs.storage if c.service == "table"]
    blobs = [c for c in obs.storage if c.service == "blob"]
    print(f"\napp storage, POST to terminal: {len(tables)} table transactions "
          f"({sum(c.operations for c in tables)} operations), {len(blobs)} blob requests; per plan item "
          f"{len(tables) / items_n:.2f} table, {len(blobs) / items_n:.2f} blob (includes {obs.polls} monitor "
          "polls)")
    kinds: Counter[tuple[str, str, str]] = Counter((c.service, c.resource, c.method) for c in obs.storage)
    for (service, resource, method), n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {service:5s} {resource:40s} {method:7s} {n:6d}  = {n / items_n:.3f} per item")
    by_kind: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    for call in obs.timed:
        by_kind[(call.service, call.resource, call.method)].append(call.seconds)
    total_storage = sum(c.seconds for c in obs.timed)
    print(f"storage round trips (proxy -> Azurite), POST to terminal: {len(obs.timed)} calls, "
          f"{total_storage:.1f} s in all; per kind: count, median, p90 (ms)")
    latency: dict[str, Any] = {}
    for (service, resource, method), values in sorted(by_kind.items(), key=lambda kv: -sum(kv[1])):
        values.sort()
        p90 = values[int(len(values) * 0.9)]
        latency[f"{service} {resource} {method}"] = {"count": len(values), "sum_s": round(sum(values), 2),
                                                     "median_ms": round(statistics.median(values) * 1000, 1),
                                                     "p90_ms": round(p90 * 1000, 1)}
        median = statistics.median(values) * 1000
        print(f"  {service:5s} {resource:30s} {method:7s} {len(values):6d}  median {median:6.1f}"
              f"  p90 {p90 * 1000:6.1f}  sum {sum(values):6.1f} s")
    cpu_line = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in obs.cpu.items())
    print(f"CPU used from the POST to the monitor's 200: {cpu_line}")

    result = {
        "run_id": run["id"], "status": run["status"], "counts": counts, "plan_summary": summary,
        "assignment_plan": dict(assign_plan), "outcomes": dict(actions), "changed_objects": changed_n,
        "items": len(plan_items), "wall_s": round(wall, 2), "monitor_wall_s": round(obs.monitor_wall, 2),
        "graph_requests": len(log), "writes": len(writes), "throttled": throttled,
        "binding_family": binding, "write_floor_s": round(write_floor, 2), "floor_s": round(floor, 2),
        "wall_over_write_floor": round(ratio, 3) if ratio else None,
        "families": families, "phases": phase_rows,
        "retry_timers": len(phases.timers), "episodes": len(phases.episodes), "episode_gaps": episode_rows,
        "storage": {f"{s} {r} {m}": n for (s, r, m), n in kinds.items()},
        "table_transactions": len(tables), "blob_requests": len(blobs), "storage_latency": latency,
        "cpu_s": {name: round(seconds, 2) for name, seconds in obs.cpu.items()},
        "capture_s": round(scene.capture_s, 2),
    }
    if ratio is not None and ratio > TARGET_RATIO:
        defects.append(f"wall / write floor {ratio:.3f} is above the target {TARGET_RATIO}")
    return result, defects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restore_execute",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=300,
                        help="policies of the generated tenant (default 300)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the generated tenant (default 42)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="the simulator's throttle scale (default 1: the published limits; see above)")
    parser.add_argument("--change", choices=("delete", "edit"), default="delete",
                        help="what happens to the captured objects before the restore (default delete)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between monitor polls (default 1)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds to wait for each run (default 1800)")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--profile-host", type=Path, metavar="FILE",
                        help="sample the durable host with py-spy during the restore (collapsed stacks)")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable (default: py-spy on PATH)")
    args = parser.parse_args(argv)
    if args.policies < 1:
        parser.error("--policies must be positive")
    if args.scale <= 0:
        parser.error("--scale must be positive")

    began = time.perf_counter()
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    demo_secret = secrets.token_urlsafe(24)
    with timed_stack(demo_secret) as (info, proxy, azurite_pid), sim_client(info) as sim:
        print(f"stack up in {time.perf_counter() - began:.1f} s (load average before: {load_before}); "
              f"{args.policies} generated policies, change '{args.change}', throttle scale {args.scale:g}")
        scene, admin = set_scene(info, sim, demo_secret, policies=args.policies, seed=args.seed,
                                 change=args.change, poll=args.poll, timeout=args.timeout)
        print(f"captured in {scene.capture_s:.1f} s (throttling off); changed "
              f"{sum(len(v) for v in scene.changed.values())} objects: "
              f"{ {k: len(v) for k, v in sorted(scene.changed.items())} }")
        observed = run_restore(info, proxy, sim, scene, admin, scale=args.scale, poll=args.poll,
                               timeout=args.timeout,
                               cpu_pids={"durable host": info.pids["dfhost"],
                                         "simulator": info.pids["graphsim"], "azurite": azurite_pid,
                                         "this process (client, storage proxy)": os.getpid()},
                               profile=args.profile_host, py_spy=args.py_spy)
    result, defects = report(scene, observed, scale=args.scale)
    if args.profile_host and args.profile_host.exists():
        print(f"\ndurable host during the restore (py-spy, {SAMPLE_RATE} samples/s; seconds of thread time):")
        rows = profile_summary(args.profile_host)
        for place, seconds, share in rows:
            print(f"  {seconds:6.1f} s {share * 100:5.1f}%  {place}")
        result["host_profile"] = [{"place": place, "seconds": round(seconds, 2), "share": round(share, 3)}
                                  for place, seconds, share in rows]
    load_after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average after: {load_after}")
    for defect in defects:
        print(f"DEFECT: {defect}")
    if args.out:
        result.update(policies=args.policies, seed=args.seed, scale=args.scale, change=args.change,
                      defects=defects, load_before=load_before, load_after=load_after)
        args.out.write_text(json.dumps(result, indent=2))
        # The raw material, for a closer look: the simulator's log, the orchestration history, the plan.
        raw = {"graph_log": observed.graph_log, "history": observed.history, "plan": observed.plan,
               "run_items": observed.run_items, "posted_at": observed.posted_at, "run": observed.run}
        args.out.with_suffix(".raw.json").write_text(json.dumps(raw))
    return 1 if defects else 0


if __name__ == "__main__":
    raise SystemExit(main())
