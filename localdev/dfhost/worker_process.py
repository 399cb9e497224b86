"""An extra worker process of the local host: loads the app and runs the invocations the engine sends.

In Azure, ``FUNCTIONS_WORKER_PROCESS_COUNT`` starts several Python workers per host instance and the
host spreads invocations across them; each worker has its own interpreter, so its own caches, Graph
clients and in-process budgets. ``serve --workers N`` gives the local host the same shape: the front
end is the first worker, and this module is each of the others. It never serves HTTP or timers; it
answers ``run_activity`` and ``run_orchestrator`` calls on one socket to the engine process
(:class:`~localdev.dfhost.engine_process.FunctionServer`), with the app settings it inherited from
the front end.

It stops when the engine closes its socket (the host stopped or crashed), and dies with the front
end (``PR_SET_PDEATHSIG`` and a parent check). SIGINT is left to the front end; SIGTERM sent to the
whole process group gives the front end time to stop the host in order first.

    python -m localdev.dfhost.worker_process --fd N --parent PID --app DIR   (started by EngineProcess)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from localdev.dfhost.config import load_host_config
from localdev.dfhost.engine_process import (
    TERM_GRACE_SECONDS,
    Channel,
    FunctionServer,
    die_with_parent,
    watch_parent,
)
from localdev.dfhost.registry import load_registry

__all__ = ["main"]


async def _worker_main(fd: int, parent: int, app_dir: Path, replay_threads: int) -> int:
    from localdev.dfhost.cli import thread_pool_size

    loop = asyncio.get_running_loop()
    config = load_host_config(app_dir)
    # The worker runs with the app folder as working directory, as the front end does.
    os.chdir(app_dir)
    registry = load_registry(app_dir)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=thread_pool_size(config),
                                                 thread_name_prefix="dfhost-fn"))
    functions = FunctionServer(registry, replay_threads)
    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd))
    channel = Channel(reader, writer, functions.handle)
    channel.start()
    terminated = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, loop.call_later, TERM_GRACE_SECONDS, terminated.set)
    parent_gone = asyncio.Event()
    waits = [loop.create_task(coro) for coro in (channel.closed.wait(), terminated.wait(),
                                                 parent_gone.wait(),
                                                 watch_parent(parent, parent_gone))]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    # Whatever still runs here is abandoned, as in a crash: the engine runs it again.
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of an extra worker process (started by ``EngineProcess``)."""
    parser = argparse.ArgumentParser(prog="python -m localdev.dfhost.worker_process")
    parser.add_argument("--fd", type=int, required=True, help="socket to the engine process")
    parser.add_argument("--parent", type=int, required=True, help="front-end process id")
    parser.add_argument("--app", type=Path, required=True, help="function app folder")
    parser.add_argument("--replay-threads", type=int, default=4,
                        help="threads for orchestrator replays")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from localdev.dfhost.cli import setup_logging

    setup_logging()
    return asyncio.run(_worker_main(args.fd, args.parent, args.app.resolve(), args.replay_threads))


if __name__ == "__main__":
    sys.exit(main())
