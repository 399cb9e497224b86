"""Redaction holds for handlers added after start-up: the Azure Monitor OpenTelemetry exporter in particular.

In Azure the app's logs leave through an OpenTelemetry ``LoggingHandler`` attached after the app has started,
and records come from every logger (ours, azure-core, MSAL, httpx). Here that handler is attached after the
app installed redaction, to a logger of its own as ``configure_azure_monitor(logger_name=...)`` does (so no
handler present at start-up sees the records first); its records are captured in memory and turned into the
Application Insights envelopes the Azure Monitor exporter would send (nothing leaves the process), and no
credential may be in them.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from shared import container
from shared.redaction import REDACTED

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0aWQiOiJ0ZW5hbnQifQ.c2lnbmF0dXJlLXZhbHVl"
OPAQUE_BEARER = "opaqueBearerValue0123456789"
CLIENT_SECRET = "Zx8Q~clientSecretValue_987"
SAS_SIGNATURE = "S3cretSigValue%2Fabc%3D"
SECRETS = (JWT, OPAQUE_BEARER, CLIENT_SECRET, SAS_SIGNATURE)
# Shape only; no network is used: envelopes are built, never sent.
CONNECTION_STRING = ("InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                     "IngestionEndpoint=https://localhost")


@dataclass
class Telemetry:
    """What left the process: OpenTelemetry log records and the Application Insights envelopes."""

    records: list[ReadableLogRecord]
    envelopes: list[dict[str, Any]]

    def text(self) -> str:
        parts = []
        for readable in self.records:
            record = readable.log_record
            parts.append(json.dumps({"body": record.body, "attributes": dict(record.attributes or {})},
                                    default=str))
        parts.extend(json.dumps(envelope, default=str) for envelope in self.envelopes)
        return "\n".join(parts)

    def exception_details(self) -> list[dict[str, Any]]:
        return [detail for envelope in self.envelopes
                for detail in envelope["data"]["baseData"].get("exceptions", [])]


@pytest.fixture
def exporter_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InMemoryLogRecordExporter,
                                                                         AzureMonitorLogExporter]]:
    """The app installs redaction at start-up; then an Azure Monitor log pipeline is attached to the root."""
    for switch in ("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
                   "APPLICATIONINSIGHTS_SDKSTATS_DISABLED"):
        monkeypatch.setenv(switch, "true")
    root = logging.getLogger()
    exported = logging.getLogger("tests.exporters")
    saved_factory = logging.getLogRecordFactory()
    saved_root_filters = list(root.filters)
    saved_handler_filters = {handler: list(handler.filters) for handler in root.handlers}

    container._install_redaction()  # what the app does when it starts

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's handler is deprecated, still shipped
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    exported.addHandler(handler)
    exported.setLevel(logging.INFO)
    exported.propagate = False
    azure_monitor = AzureMonitorLogExporter(connection_string=CONNECTION_STRING, disable_offline_storage=True)
    try:
        yield memory, azure_monitor
    finally:
        exported.removeHandler(handler)
        exported.setLevel(logging.NOTSET)
        exported.propagate = True
        provider.shutdown()
        azure_monitor.shutdown()
        logging.setLogRecordFactory(saved_factory)
        root.filters[:] = saved_root_filters
        for known, filters in saved_handler_filters.items():
            known.filters[:] = filters


def _exported(memory: InMemoryLogRecordExporter, azure_monitor: AzureMonitorLogExporter) -> Telemetry:
    records = list(memory.get_finished_logs())
    envelopes = [azure_monitor._log_to_envelope(record).as_dict() for record in records]
    return Telemetry(records=records, envelopes=envelopes)


def _assert_no_secret(telemetry: Telemetry) -> None:
    text = telemetry.text()
    assert telemetry.records, "the exporter received nothing"
    for secret in SECRETS:
        assert secret not in text
    assert REDACTED in text


def test_a_bearer_token_in_the_message_never_reaches_the_exporter(exporter_handler: Any) -> None:
    message = f"graph call failed: Authorization: Bearer {JWT} client_secret={CLIENT_SECRET}"
    logging.getLogger("tests.exporters").warning(message)
    telemetry = _exported(*exporter_handler)
    _assert_no_secret(telemetry)
    assert "graph call failed" in telemetry.text()


def test_secrets_in_log_arguments_never_reach_the_exporter(exporter_handler: Any) -> None:
    logging.getLogger("tests.exporters").info(
        "token request %s returned %s (blob %s)", {"headers": {"Authorization": f"Bearer {OPAQUE_BEARER}"}},
        {"access_token": JWT}, f"https://acct.blob.core.windows.net/c/b?sv=2024&sig={SAS_SIGNATURE}")
    telemetry = _exported(*exporter_handler)
    _assert_no_secret(telemetry)
    assert "token request" in telemetry.text()


def _fail_with_chained_secrets() -> None:
    try:
        raise ValueError(f"MSAL said: client_secret={CLIENT_SECRET}")
    except ValueError as cause:
        error = RuntimeError(f"POST https://graph/x failed with Authorization: Bearer {JWT}")
        error.add_note(f"retrying with token={OPAQUE_BEARER}")
        raise error from cause


def test_an_exception_traceback_is_exported_without_its_secrets(exporter_handler: Any) -> None:
    try:
        _fail_with_chained_secrets()
    except RuntimeError:
        logging.getLogger("tests.exporters").exception("capture failed")
    telemetry = _exported(*exporter_handler)
    _assert_no_secret(telemetry)
    # Still an exception in Application Insights, with its type, redacted text and frames.
    [detail] = telemetry.exception_details()
    assert detail["typeName"] == "RuntimeError"
    assert detail["hasFullStack"] is True
    assert "_fail_with_chained_secrets" in detail["stack"]
    assert "ValueError" in detail["stack"]  # the cause is still shown
    assert f"failed with Authorization: {REDACTED}" in detail["stack"]


def test_records_of_child_loggers_are_redacted_for_a_handler_added_later(exporter_handler: Any) -> None:
    child = logging.getLogger("tests.exporters.graph.client")
    child.warning("retrying with %s", f"authorization={OPAQUE_BEARER}", stack_info=True)
    child.error("token endpoint answered %s", f'{{"id_token": "{JWT}"}}', exc_info=True)
    telemetry = _exported(*exporter_handler)
    assert len(telemetry.records) == 2
    _assert_no_secret(telemetry)


def test_installing_twice_redacts_once_and_keeps_plain_messages(exporter_handler: Any) -> None:
    from shared.redaction import install_log_redaction

    install_log_redaction()
    factory = logging.getLogRecordFactory()
    install_log_redaction()
    assert logging.getLogRecordFactory() is factory
    logging.getLogger("tests.exporters").info("policy %s captured (%d%% done)", "Win - Baseline", 100)
    [record] = _exported(*exporter_handler).records
    assert record.log_record.body == "policy Win - Baseline captured (100% done)"
