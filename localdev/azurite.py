"""Start and stop Azurite (the pinned npm package) on loopback for the local stack and the tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from localdev.procs import ROOT, free_port, stop_process, wait_for_port

__all__ = ["Azurite", "connection_string", "start_azurite"]

ACCOUNT = "devstoreaccount1"
# The well-known Azurite development key: public, documented, and only ever valid against the emulator.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def connection_string(blob_port: int, queue_port: int, table_port: int) -> str:
    """Connection string for an Azurite listening on 127.0.0.1 with the given ports."""
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{ACCOUNT};QueueEndpoint={base}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    """A running Azurite process."""

    pid: int
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        """Connection string for this instance."""
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    def stop(self) -> None:
        """Stop the process group."""
        stop_process(self.pid)


def azurite_bin() -> Path:
    """Path of the Azurite entry point installed by ``npm ci``."""
    path = ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
    if not path.exists():
        raise FileNotFoundError(
            f"Azurite is not installed ({path} missing). Run `npm ci` in {ROOT} "
            "(scripts/bootstrap.sh does it)."
        )
    return path


def start_azurite(*, location: Path | None = None, ports: tuple[int, int, int] | None = None,
                  log: Path | None = None, timeout: float = 60.0) -> Azurite:
    """Start Azurite bound to 127.0.0.1 and wait until all three services listen.

    Args:
        location: data folder; ``None`` keeps everything in memory (tests).
        ports: blob, queue and table ports; free ports are chosen when omitted.
        log: file that receives Azurite's output.
        timeout: seconds to wait for the ports.

    Returns:
        The running instance; call ``stop()`` when done.
    """
    blob, queue, table = ports or (free_port(), free_port(), free_port())
    args = ["node", str(azurite_bin()), "--disableTelemetry", "--silent", "--skipApiVersionCheck",
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
            "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)]
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=ROOT)
    try:
        for port in (blob, queue, table):
            wait_for_port(port, timeout=timeout, proc=proc, what="Azurite", log=log)
    except BaseException:
        stop_process(proc.pid)
        raise
    return Azurite(pid=proc.pid, blob_port=blob, queue_port=queue, table_port=table)
