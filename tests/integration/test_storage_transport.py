"""The storage clients read the process environment once, when they are built, not on every call, and still
honour what it configures: a CA bundle variable and proxy variables.

Reading the environment on every call (proxy variables, ``NO_PROXY`` matching, ``.netrc``) was about a seventh
of the CPU of a point get (``benchmarks/storage_call_cpu.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from shared.storage import StorageFactory


class _CountingEnviron(os._Environ):  # type: ignore[type-arg]  # os._Environ is generic only in typeshed
    """``os.environ`` that counts full scans (``requests`` iterates it to find proxy variables)."""

    scans = 0

    def __iter__(self) -> Iterator[str]:
        type(self).scans += 1
        return super().__iter__()


@pytest.fixture
def counting_environ(monkeypatch: pytest.MonkeyPatch) -> type[_CountingEnviron]:
    env = os.environ
    counting = _CountingEnviron(env._data, env.encodekey, env.decodekey,  # type: ignore[attr-defined]
                                env.encodevalue, env.decodevalue)  # type: ignore[attr-defined]
    _CountingEnviron.scans = 0
    monkeypatch.setattr(os, "environ", counting)
    return _CountingEnviron


def _transport_of(factory: StorageFactory) -> Any:
    return factory._table_service._client._client._pipeline._transport  # the SDK client's own transport


def test_storage_calls_do_not_scan_the_environment(storage: StorageFactory,
                                                   counting_environ: type[_CountingEnviron],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    table = storage.table("runs")
    table.upsert_entity({"PartitionKey": "t", "RowKey": "r", "Value": "v"})
    counting_environ.scans = 0

    for _ in range(5):
        assert table.get_entity(partition_key="t", row_key="r")["Value"] == "v"

    assert counting_environ.scans == 0


def test_a_ca_bundle_variable_is_still_used_for_certificate_checks(azurite_connection_string: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/our-ca.pem")
    factory = StorageFactory.from_connection_string(azurite_connection_string)
    try:
        assert _transport_of(factory).connection_config.verify == "/etc/ssl/certs/our-ca.pem"
    finally:
        factory.close()


def test_a_proxy_variable_keeps_the_session_reading_the_environment(azurite_connection_string: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    factory = StorageFactory.from_connection_string(azurite_connection_string)
    try:
        transport = _transport_of(factory)
        transport.open()
        assert transport.session.trust_env is True
    finally:
        factory.close()
