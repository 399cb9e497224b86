"""Command line of the local Durable Functions host.

``python -m localdev.dfhost serve --app <dir> [--port 7071] [--rpc-port N] [--storage <conn>]
[--hub NAME] [--clock real|virtual] [--engine thread|process] [--workers N] [--durable-apart]``.
Bad input (missing folder, import error, no app object, a bad worker count) exits with code 2 and
says why; SIGTERM and SIGINT stop the host cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from localdev.dfhost.config import ConfigError, HostConfig, load_host_config, load_local_settings
from localdev.dfhost.registry import (
    ACTIVITY,
    HTTP,
    ORCHESTRATION,
    AppLoadError,
    Registry,
    load_registry,
)
from localdev.procs import free_port, port_open
from shared.redaction import RedactingFilter, install_log_redaction, redact

__all__ = ["main"]

logger = logging.getLogger("localdev.dfhost")

EXIT_BAD_INPUT = 2
DEFAULT_RPC_PORT = 17071
STORAGE_SETTING = "AzureWebJobsStorage"
# Where the durable engine runs when --engine is not given: this environment variable, else
# DEFAULT_ENGINE.
ENGINE_SETTING = "DFHOST_ENGINE"
ENGINE_MODES = ("thread", "process")
DEFAULT_ENGINE = "process"
# Worker processes when --workers is not given: this app setting (Azure's), else 1. Azure allows 1-10.
WORKERS_SETTING = "FUNCTIONS_WORKER_PROCESS_COUNT"
MAX_WORKERS = 10
# Orchestrators and activities only in the extra worker processes when --durable-apart is not given
# and this environment variable is "true".
DURABLE_APART_SETTING = "DFHOST_DURABLE_APART"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localdev.dfhost",
                                     description="Local Durable Functions host")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="load a function app and serve it")
    serve.add_argument("--app", required=True, type=Path, help="function app folder")
    serve.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071)")
    serve.add_argument("--rpc-port", type=int, default=None,
                       help="durable client RPC port (default 17071, or a free one if busy)")
    serve.add_argument("--storage", default=None,
                       help="storage connection string (default: env AzureWebJobsStorage)")
    serve.add_argument("--hub", default=None,
                       help="task hub (default: host.json durableTask.hubName or TestHubName)")
    serve.add_argument("--clock", choices=["real", "virtual"], default="real")
    serve.add_argument("--engine", choices=ENGINE_MODES, default=None,
                       help="run the durable engine in its own process (as the Functions host "
                            "does) or on a thread of this one (default: env DFHOST_ENGINE or "
                            f"{DEFAULT_ENGINE})")
    serve.add_argument("--workers", type=int, default=None,
                       help="worker processes that run the app's functions, this one included "
                            f"(1-{MAX_WORKERS}; default: the app setting {WORKERS_SETTING} or 1; "
                            "more than 1 needs --engine process)")
    serve.add_argument("--durable-apart", action="store_true", default=None,
                       help="run orchestrators and activities in the other worker processes only, "
                            "none in the one serving HTTP, as Flex Consumption scales durable "
                            f"triggers apart from HTTP (needs --workers 2 or more; default: env "
                            f"{DURABLE_APART_SETTING})")
    return parser


def _worker_count(args: argparse.Namespace) -> int:
    """The worker process count from ``--workers`` or the app setting; ConfigError when invalid."""
    if args.workers is not None:
        value = str(args.workers)
    else:
        value = os.environ.get(WORKERS_SETTING, "").strip() or "1"
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        raise ConfigError(f"the worker process count ({WORKERS_SETTING} or --workers) must be a "
                          f"whole number from 1 to {MAX_WORKERS}")
    if int(value) > 1 and args.engine != "process":
        raise ConfigError("more than one worker process needs the engine in its own process "
                          "(--engine process)")
    if args.durable_apart is None:
        args.durable_apart = os.environ.get(DURABLE_APART_SETTING, "").strip().lower() == "true"
    if args.durable_apart and int(value) < 2:
        raise ConfigError("durable functions apart from HTTP need a second worker process "
                          f"(--workers 2 or {WORKERS_SETTING}=2)")
    return int(value)


def setup_logging() -> None:
    """Log to stderr, redacted (the host process and its engine process alike)."""
    # Records are redacted as they are made (any logger, any handler added later); the handler's filter also
    # covers records made before that, such as ones rebuilt with logging.makeLogRecord.
    install_log_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Request logs of the Azure SDK are noise here (and can carry SAS query strings).
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _storage(arg: str | None) -> str | None:
    value = arg or os.environ.get(STORAGE_SETTING) or None
    if value and value.strip().lower() == "usedevelopmentstorage=true":
        from localdev.azurite import connection_string

        value = connection_string(10000, 10001, 10002)
    if value:
        # The app's own code reads the same setting the host uses.
        os.environ[STORAGE_SETTING] = value
    return value


def _describe(registry: Registry, base_url: str, prefix: str) -> list[str]:
    from localdev.dfhost.http_api import compile_routes

    lines = ["Functions:"]
    for route in compile_routes(registry):
        methods = ",".join(sorted(route.methods)) if route.methods else "ALL"
        path = "/".join(p for p in (prefix, route.template.template.strip("/")) if p)
        lines.append(f"    {route.spec.name}: [{methods}] {base_url}/{path}")
    for spec in registry.functions.values():
        if spec.trigger_type != HTTP:
            lines.append(f"    {spec.name}: {spec.trigger_type}")
    return lines


def thread_pool_size(config: HostConfig) -> int:
    """Threads of a worker's default executor (sync functions run there)."""
    # The Python worker honours PYTHON_THREADPOOL_THREAD_COUNT for sync functions; the asyncio
    # default (cores + 4) would cap sync activities below maxConcurrentActivityFunctions.
    configured = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(32, config.max_concurrent_activities + 8)


async def _serve(args: argparse.Namespace, config: HostConfig, registry: Registry,
                 storage: str | None, workers: int) -> int:
    from localdev.dfhost.engine import Engine, EngineOptions
    from localdev.dfhost.engine_client import EngineClient
    from localdev.dfhost.engine_process import EngineProcess
    from localdev.dfhost.engine_thread import EngineThread, WorkerInvoker
    from localdev.dfhost.http_api import HostHttp, build_main_app, build_rpc_app
    from localdev.dfhost.triggers import TriggerRunner

    hub = args.hub or config.hub_name
    rpc_port = args.rpc_port
    if rpc_port is None:
        rpc_port = DEFAULT_RPC_PORT if not port_open(DEFAULT_RPC_PORT) else free_port()
    options = EngineOptions(
        hub=hub, max_concurrent_activities=config.max_concurrent_activities,
        max_concurrent_orchestrations=config.max_concurrent_orchestrations,
        overridable_existing_instance_states=config.overridable_existing_instance_states,
        max_orchestration_actions=config.max_orchestration_actions, clock=args.clock)
    stop = asyncio.Event()
    engine_lost = False

    def lose_engine() -> None:
        nonlocal engine_lost
        engine_lost = True
        stop.set()

    # This loop is the worker's: HTTP, timer, queue and activity functions run here (sync ones
    # in its thread pool). The engine (episodes, storage writes, timers) runs apart, so it never
    # holds up a request: in a process of its own, which calls back here to run orchestrator
    # replays and activities as the Functions host does, or on a thread with its own loop.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(max_workers=thread_pool_size(config),
                                                 thread_name_prefix="dfhost-fn"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    replay_threads = config.max_concurrent_orchestrations + 2
    engine_runner: EngineProcess | EngineThread
    if args.engine == "process":
        engine_runner = EngineProcess(registry, connection_string=storage, options=options,
                                      replay_threads=replay_threads, on_lost=lose_engine,
                                      worker_processes=workers, app_dir=registry.app_dir,
                                      durable_apart=bool(args.durable_apart))
    else:
        invoker = WorkerInvoker(registry, loop)
        engine_runner = EngineThread(
            lambda: Engine(invoker=invoker, connection_string=storage, options=options),
            replay_threads=replay_threads)
    try:
        engine: EngineClient = await engine_runner.start()
    except Exception as exc:  # noqa: BLE001 - report unreachable storage in one line
        print(f"error: the durable engine could not start: {redact(str(exc))}", file=sys.stderr,
              flush=True)
        await engine_runner.stop()
        return 1
    host = HostHttp(registry=registry, engine=engine, hub=hub, route_prefix=config.route_prefix,
                    port=args.port, rpc_port=rpc_port)
    runners = [web.AppRunner(build_main_app(host), access_log=None),
               web.AppRunner(build_rpc_app(host), access_log=None)]
    triggers = TriggerRunner(registry=registry, client_json=host.client_json,
                             queues=config.queues)
    try:
        for runner, port in zip(runners, (args.port, rpc_port), strict=True):
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
            except OSError as exc:
                print(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                      file=sys.stderr, flush=True)
                return EXIT_BAD_INPUT
        triggers.start()
        base_url = f"http://127.0.0.1:{args.port}"
        for line in _describe(registry, base_url, config.route_prefix):
            print(line)
        print(f"Task hub: {hub} (clock: {args.clock}, engine: {args.engine}, workers: {workers}, storage: "
              f"{'Azure Storage' if storage else 'in memory'})")
        print(f"Durable RPC: http://127.0.0.1:{rpc_port}/durabletask/")
        print(f"Host running: {base_url}", flush=True)
        await stop.wait()
        logger.info("Stopping the host")
    finally:
        await triggers.stop()
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        # The engine stops while this loop still runs: cancelling its in-flight activities
        # needs the worker loop.
        await engine_runner.stop()
        logger.info("Host stopped")
    return 1 if engine_lost else 0


def serve(args: argparse.Namespace) -> int:
    """Run ``serve`` until SIGTERM/SIGINT; return the exit code."""
    app_dir: Path = args.app.resolve()
    try:
        if not app_dir.is_dir():
            raise AppLoadError(f"App folder not found: {app_dir}")
        config = load_host_config(app_dir)
        load_local_settings(app_dir)
        workers = _worker_count(args)
        storage = _storage(args.storage)
        # The worker runs with the app folder as working directory.
        os.chdir(app_dir)
        registry = load_registry(app_dir)
    except (AppLoadError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    counts = {t: len(registry.of_type(t)) for t in (HTTP, ORCHESTRATION, ACTIVITY)}
    logger.info("Loaded %d functions from %s (%s)", len(registry.functions), app_dir,
                ", ".join(f"{k}={v}" for k, v in counts.items()))
    return asyncio.run(_serve(args, config, registry, storage, workers))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m localdev.dfhost``."""
    args = _parser().parse_args(argv)
    if getattr(args, "engine", "") is None:
        args.engine = os.environ.get(ENGINE_SETTING, "").strip().lower() or DEFAULT_ENGINE
        if args.engine not in ENGINE_MODES:
            print(f"error: {ENGINE_SETTING} must be one of {', '.join(ENGINE_MODES)}",
                  file=sys.stderr, flush=True)
            return EXIT_BAD_INPUT
    setup_logging()
    if args.command == "serve":
        return serve(args)
    return EXIT_BAD_INPUT
