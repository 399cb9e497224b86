"""Fan-out/fan-in samples: a directory backed up to Blob Storage (Azurite), and pure computation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.storage.blob import BlobServiceClient

from tests.samples.support import sample_host, start, wait_until_done

pytestmark = pytest.mark.azurite

BACKUP_CONTAINER = "backups"


@pytest.fixture(scope="module")
def host(azurite_connection_string: str) -> Iterator[Any]:
    with sample_host("fan_in_fan_out", azurite_connection_string) as running:
        yield running


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small site to back up: files of different sizes, some in nested folders."""
    root = tmp_path / "site"
    files = {
        "index.html": b"<html>" + b"x" * 1000 + b"</html>",
        "robots.txt": b"User-agent: *\n",
        "assets/logo.svg": b"<svg/>" * 300,
        "assets/css/site.css": b"body{}\n" * 77,
        "docs/empty.txt": b"",
        "docs/guide.md": bytes(range(256)) * 9,
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_backup_returns_the_total_bytes_and_uploads_every_file(
        client: httpx.Client, site: Path, azurite_connection_string: str) -> None:
    expected = {p.relative_to(site).as_posix(): p.read_bytes()
                for p in site.rglob("*") if p.is_file()}

    started = start(client, "/api/orchestrators/E2_BackupSiteContent", str(site))
    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed", final
    assert final["output"] == sum(len(data) for data in expected.values())
    container = BlobServiceClient.from_connection_string(
        azurite_connection_string).get_container_client(BACKUP_CONTAINER)
    prefix = f"{site.name}/"
    uploaded = {blob.name.removeprefix(prefix): blob.size
                for blob in container.list_blobs(name_starts_with=prefix)}
    assert uploaded == {name: len(data) for name, data in expected.items()}
    assert container.download_blob(f"{prefix}docs/guide.md").readall() == expected["docs/guide.md"]


def test_backup_without_a_directory_fails_with_the_reason(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/E2_BackupSiteContent", "")

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Failed"
    assert "A directory path is required as input" in final["output"]


def test_fan_out_fan_in_sums_the_default_five_values(client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/FanOutFanIn")

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == "Well that's nice 10"


def test_fan_out_fan_in_sums_the_requested_number_of_values(client: httpx.Client) -> None:
    # Values 0..5 only: 6 is the one value the echo activity rejects.
    started = start(client, "/api/orchestrators/FanOutFanIn", 6)

    final = wait_until_done(client, started)

    assert final["output"] == "Well that's nice 15"


def test_an_activity_failure_inside_the_fan_out_fails_the_orchestration(
        client: httpx.Client) -> None:
    started = start(client, "/api/orchestrators/FanOutFanIn", 8)

    final = wait_until_done(client, started)

    assert final["runtimeStatus"] == "Failed"
    assert "Bad Request" in final["output"]
    assert "ParrotValue" in final["output"]
