"""A storage endpoint that stops answering, or answers "busy", fails every adapter call with
``StorageUnavailable`` (a retryable 503) within a bounded time, instead of holding it for the SDK's 300 s.

Storage is reached through a local TCP proxy in front of the session's Azurite. The proxy forwards until it is
told to hang (it keeps accepting connections and reading requests but never answers) or to be busy (it answers
every request with ``503 Server Busy``), which is what a wedged or overloaded storage endpoint looks like.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.domain import (
    CreatedBy,
    ItemOutcome,
    RunKind,
    RunRecord,
    RunTarget,
    derive_idempotency_key,
    new_run_id,
)
from shared.ports import ActiveEntry, RunClaim
from shared.storage import StorageFactory
from shared.storage.errors import StorageUnavailable
from shared.storage.factory import READ_TIMEOUT_SECONDS, RETRY_TOTAL

_BUSY_ANSWER = (b"HTTP/1.1 503 Server Busy\r\nContent-Type: application/xml\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n")


class StorageProxy:
    """A TCP proxy to one upstream port whose behaviour can be switched: ``forward``, ``hang`` or ``busy``."""

    def __init__(self, upstream_port: int) -> None:
        self.mode = "forward"
        self._upstream_port = upstream_port
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector, client, upstream:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.2):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = sock.recv(65536)
                    if not data:
                        return
                    if self.mode == "busy" and sock is client:
                        client.sendall(_BUSY_ANSWER)
                        return
                    if self.mode == "forward":
                        peers[sock].sendall(data)
                    # "hang": read and drop, so the caller's request is taken but never answered.


def _proxied(connection_string: str, blob: StorageProxy, table: StorageProxy) -> str:
    """The connection string with the blob and table endpoints moved to the proxies."""
    parts = dict(p.split("=", 1) for p in connection_string.strip(";").split(";"))
    for name, proxy in (("BlobEndpoint", blob), ("TableEndpoint", table)):
        url = urlsplit(parts[name])
        parts[name] = f"{url.scheme}://127.0.0.1:{proxy.port}{url.path}"
    return ";".join(f"{k}={v}" for k, v in parts.items()) + ";"


def _port(connection_string: str, endpoint: str) -> int:
    parts = dict(p.split("=", 1) for p in connection_string.strip(";").split(";"))
    port = urlsplit(parts[endpoint]).port
    assert port is not None
    return port


@pytest.fixture
def proxies(azurite_connection_string: str) -> Iterator[tuple[StorageProxy, StorageProxy]]:
    blob = StorageProxy(_port(azurite_connection_string, "BlobEndpoint"))
    table = StorageProxy(_port(azurite_connection_string, "TableEndpoint"))
    try:
        yield blob, table
    finally:
        blob.close()
        table.close()


def _factory(azurite_connection_string: str, proxies: tuple[StorageProxy, StorageProxy], unique_name: str,
             **client_options: Any) -> StorageFactory:
    blob, table = proxies
    return StorageFactory.from_connection_string(
        _proxied(azurite_connection_string, blob, table), table_prefix=unique_name,
        snapshot_container=unique_name, **client_options)


def _run(tenant_id: str) -> RunRecord:
    now = datetime.now(UTC)
    target = RunTarget(policy_type="settingsCatalog", policy_id=str(uuid.uuid4()))
    return RunRecord(id=new_run_id(now), tenant_id=tenant_id, kind=RunKind.POLICY_CAPTURE, target=target,
                     created_by=CreatedBy(id=str(uuid.uuid4()), name="Operator"), created_at=now,
                     derived_key=derive_idempotency_key(tenant_id, RunKind.POLICY_CAPTURE, target, {}))


def _adapter_calls(storage: StorageFactory, tenant_id: str, run: RunRecord,
                   content_hash: str) -> dict[str, Callable[[], object]]:
    """One call of each kind every adapter makes: point reads, paged queries, scans, writes, transactions,
    blob upload and download; over the tables and container the factory created while storage was up."""
    runs, items, tenants, grants = storage.runs(), storage.items(), storage.tenants(), storage.grants()
    blobs, notifications = storage.blobs(), storage.notifications()
    other = _run(tenant_id)
    return {
        "runs.get": lambda: runs.get(tenant_id=tenant_id, run_id=run.id),
        "runs.list (paged query)": lambda: runs.list(tenant_id=tenant_id),
        "runs.list_recent (scan)": lambda: runs.list_recent(tenant_id=tenant_id,
                                                            finished_since=datetime.now(UTC)),
        "runs.claim (transaction)": lambda: runs.claim(RunClaim(
            tenant_id=tenant_id, run=other, active=ActiveEntry(other.derived_key, other.id))),
        "items.upsert": lambda: items.upsert(tenant_id=tenant_id, run_id=run.id, outcome=ItemOutcome(
            item_id="i1", action="captured", status="succeeded")),
        "items.counts": lambda: items.counts(tenant_id=tenant_id, run_id=run.id),
        "notifications.list": lambda: notifications.list(principal_id=str(uuid.uuid4())),
        "tenants.get": lambda: tenants.get(tenant_id),
        "grants.list_for_tenant": lambda: grants.list_for_tenant(tenant_id),
        "blobs.put_json": lambda: blobs.put_json(tenant_id, b'{"other": true}'),
        "blobs.get_json": lambda: blobs.get_json(tenant_id, content_hash),
    }


def _seeded(storage: StorageFactory) -> tuple[str, RunRecord, str]:
    """A tenant with a run and a stored body, written while storage answers."""
    tenant_id = str(uuid.uuid4())
    run = _run(tenant_id)
    storage.runs().claim(RunClaim(tenant_id=tenant_id, run=run, active=ActiveEntry(run.derived_key, run.id)))
    content_hash, _, _ = storage.blobs().put_json(tenant_id, b'{"displayName": "x"}')
    assert storage.runs().get(tenant_id=tenant_id, run_id=run.id) is not None
    return tenant_id, run, content_hash


def _timed_failure(call: Callable[[], object]) -> tuple[float, StorageUnavailable]:
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        call()
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("mode", ["hang", "busy"])
def test_every_adapter_call_fails_with_storage_unavailable_within_the_client_timeouts(
        azurite_connection_string: str, proxies: tuple[StorageProxy, StorageProxy], unique_name: str,
        mode: str) -> None:
    # Timeouts scaled down (the production ones are measured below) so that a dozen calls stay quick.
    storage = _factory(azurite_connection_string, proxies, unique_name, connection_timeout=1, read_timeout=1)
    try:
        tenant_id, run, content_hash = _seeded(storage)
        calls = _adapter_calls(storage, tenant_id, run, content_hash)
        for proxy in proxies:
            proxy.mode = mode

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            outcomes = {name: pool.submit(_timed_failure, call) for name, call in calls.items()}
        for name, outcome in outcomes.items():
            elapsed, error = outcome.result()
            # Two attempts of at most 1 s each plus the blob SDK's backoff (at most 2 s).
            assert elapsed < 6, f"{name} took {elapsed:.1f}s"
            assert error.status == 503, name
            assert error.instance_code == "storage-unavailable", name
            assert error.retry_after >= 1, name
            # Nothing of the SDK's text (account, endpoint, table or blob names) is carried along.
            assert "devstoreaccount1" not in error.detail, name
            assert "127.0.0.1" not in error.detail, name
            assert error.__cause__ is None, name
            assert error.__suppress_context__, name

        for proxy in proxies:
            proxy.mode = "forward"
        # The same clients work again once storage answers: nothing was cached in a broken state.
        assert storage.runs().get(tenant_id=tenant_id, run_id=run.id) is not None
        assert storage.blobs().get_json(tenant_id, content_hash) == b'{"displayName": "x"}'
    finally:
        storage.close()


def test_a_hung_storage_fails_table_and_blob_calls_within_the_production_bound(
        azurite_connection_string: str, proxies: tuple[StorageProxy, StorageProxy], unique_name: str) -> None:
    storage = _factory(azurite_connection_string, proxies, unique_name)  # the production timeouts
    try:
        tenant_id, run, content_hash = _seeded(storage)
        runs, blobs = storage.runs(), storage.blobs()
        for proxy in proxies:
            proxy.mode = "hang"

        with ThreadPoolExecutor(max_workers=2) as pool:
            table_call = pool.submit(_timed_failure, lambda: runs.get(tenant_id=tenant_id, run_id=run.id))
            blob_call = pool.submit(_timed_failure, lambda: blobs.get_json(tenant_id, content_hash))
            table_elapsed, _ = table_call.result()
            blob_elapsed, _ = blob_call.result()

        # At most, every attempt waits for the read timeout (and the blob SDK backs off up to 2 s between);
        # with the SDK defaults a call would wait 300 s per attempt. Measured: about 16 to 22 s.
        bound = READ_TIMEOUT_SECONDS * (RETRY_TOTAL + 1) + 5
        assert table_elapsed < bound
        assert blob_elapsed < bound
        assert max(table_elapsed, blob_elapsed) < 30
    finally:
        storage.close()


def test_creating_tables_and_the_container_on_a_hung_storage_fails_within_the_bound(
        azurite_connection_string: str, proxies: tuple[StorageProxy, StorageProxy], unique_name: str) -> None:
    for proxy in proxies:
        proxy.mode = "hang"
    storage = _factory(azurite_connection_string, proxies, unique_name, connection_timeout=1, read_timeout=1)
    try:
        for first_use in (storage.runs, storage.tenants, storage.blobs):
            elapsed, _ = _timed_failure(first_use)
            assert elapsed < 6, f"{first_use.__name__} took {elapsed:.1f}s"
    finally:
        storage.close()
