"""host.json follows the durableBackend parameter: both variants agree with the templates and the hooks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.infra import checks
from tests.infra.bicep_model import REPO_ROOT, Infra

HOST_JSON = REPO_ROOT / "host.json"


def _host() -> dict[str, Any]:
    host: dict[str, Any] = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    return host


def test_script_knows_exactly_the_backends_the_templates_allow(
    infra: Infra, durable_backend: ModuleType
) -> None:
    api_parameter = infra.file("app/api.bicep").parameters["durableBackend"]
    api_allowed = next(d["argument"] for d in api_parameter["decorators"] if d["type"] == "allowed")
    assert list(durable_backend.BACKENDS) == checks.durable_backends(infra) == api_allowed


def test_default_backend_is_what_the_checked_in_host_json_configures(
    infra: Infra, durable_backend: ModuleType
) -> None:
    default = infra.main.parameters["durableBackend"]["default"]
    parameters = json.loads((infra.root / "main.parameters.json").read_text(encoding="utf-8"))
    assert parameters["parameters"]["durableBackend"]["value"] == "${DURABLE_BACKEND=" + default + "}"
    assert default == durable_backend.AZURE_STORAGE
    assert _host()["extensions"]["durableTask"]["storageProvider"]["type"] == default
    assert durable_backend.render_host_json(_host(), default) == _host()


def test_scheduler_variant_changes_only_the_storage_provider(durable_backend: ModuleType) -> None:
    host = _host()
    rendered = durable_backend.render_host_json(host, durable_backend.DURABLE_TASK_SCHEDULER)

    provider = rendered["extensions"]["durableTask"].pop("storageProvider")
    host["extensions"]["durableTask"].pop("storageProvider")
    assert rendered == host
    assert provider == {
        "type": "azureManaged",
        "connectionStringName": durable_backend.DURABLE_TASK_SCHEDULER_SETTING,
    }


@pytest.mark.parametrize("backend", ["AzureStorage", "DurableTaskScheduler"])
def test_each_variant_points_at_settings_the_templates_provide(
    infra: Infra, durable_backend: ModuleType, backend: str
) -> None:
    provider = durable_backend.render_host_json(_host(), backend)["extensions"]["durableTask"][
        "storageProvider"
    ]
    settings = checks.app_settings(infra, backend)
    if backend == "AzureStorage":
        connection = provider["connectionName"]
        assert settings[f"{connection}__credential"] == "managedidentity"
        assert durable_backend.DURABLE_TASK_SCHEDULER_SETTING not in settings
    else:
        value = settings[provider["connectionStringName"]]
        assert "Authentication=ManagedIdentity" in value
        assert "ClientID=" in value
        assert "AccountKey" not in value


def test_hub_name_is_shared_by_both_variants_and_the_scheduler(
    infra: Infra, durable_backend: ModuleType
) -> None:
    hubs = {
        durable_backend.render_host_json(_host(), b)["extensions"]["durableTask"]["hubName"]
        for b in durable_backend.BACKENDS
    }
    assert hubs == {infra.main.parameters["taskHubName"]["default"]}
    # Task hub names of the Durable Task Scheduler: letters, digits and dashes, 3-64 characters.
    assert re.fullmatch(r"[A-Za-z0-9-]{3,64}", hubs.pop())


def _project(tmp_path: Path) -> Path:
    (tmp_path / "host.json").write_bytes(HOST_JSON.read_bytes())
    return tmp_path


def test_apply_then_restore_leaves_the_checked_in_file(tmp_path: Path, durable_backend: ModuleType) -> None:
    root = _project(tmp_path)

    assert durable_backend.apply(root, "DurableTaskScheduler") is True
    packaged = json.loads((root / "host.json").read_text(encoding="utf-8"))
    assert packaged["extensions"]["durableTask"]["storageProvider"]["type"] == "azureManaged"

    assert durable_backend.restore(root) is True
    assert (root / "host.json").read_bytes() == HOST_JSON.read_bytes()
    assert durable_backend.restore(root) is False


def test_apply_after_a_failed_package_starts_from_the_checked_in_file(
    tmp_path: Path, durable_backend: ModuleType
) -> None:
    root = _project(tmp_path)
    durable_backend.apply(root, "DurableTaskScheduler")  # packaging failed: restore never ran

    assert durable_backend.apply(root, "AzureStorage") is False
    assert (root / "host.json").read_bytes() == HOST_JSON.read_bytes()


def test_cli_uses_the_azd_variable_and_rejects_unknown_backends(
    tmp_path: Path,
    durable_backend: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = _project(tmp_path)
    monkeypatch.setenv("DURABLE_BACKEND", "DurableTaskScheduler")

    assert durable_backend.main(["apply", "--root", str(root)]) == 0
    assert "azureManaged" in (root / "host.json").read_text(encoding="utf-8")
    assert durable_backend.main(["restore", "--root", str(root)]) == 0
    assert durable_backend.main(["apply", "--root", str(root), "--backend", "Netherite"]) == 2
    assert "unknown Durable backend 'Netherite'" in capsys.readouterr().err
    assert (root / "host.json").read_bytes() == HOST_JSON.read_bytes()
