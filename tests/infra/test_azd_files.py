"""azure.yaml and main.parameters.json wire azd to the templates and the hooks."""

from __future__ import annotations

import json
import re

from tests.infra.bicep_model import REPO_ROOT, Infra

AZURE_YAML = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")


def _block(text: str, key: str, indent: int) -> str:
    """The lines under ``key:`` at ``indent`` spaces (a minimal YAML reader for this file's shape)."""
    match = re.search(
        rf"^{' ' * indent}{re.escape(key)}:\s*\n((?:{' ' * (indent + 2)}.*\n|\s*\n)*)", text, re.M
    )
    assert match, f"azure.yaml has no '{key}:' at indent {indent}"
    return match.group(1)


def test_api_service_is_the_repository_root_as_a_python_function_app() -> None:
    api = _block(_block(AZURE_YAML, "services", 0), "api", 2)
    assert re.search(r"^    project: \.\s*$", api, re.M)
    assert re.search(r"^    language: python\s*$", api, re.M)
    assert re.search(r"^    host: function\s*$", api, re.M)


def test_infra_points_at_main_bicep(infra: Infra) -> None:
    block = _block(AZURE_YAML, "infra", 0)
    assert re.search(r"^  provider: bicep\s*$", block, re.M)
    assert re.search(r"^  path: infra\s*$", block, re.M)
    assert re.search(r"^  module: main\s*$", block, re.M)
    assert infra.main.path == REPO_ROOT / "infra" / "main.bicep"


def test_package_hooks_switch_host_json_and_put_it_back() -> None:
    hooks = _block(_block(_block(AZURE_YAML, "services", 0), "api", 2), "hooks", 4)
    apply = _block(hooks, "prepackage", 6)
    restore = _block(hooks, "postpackage", 6)
    for platform in ("posix", "windows"):
        assert "infra/scripts/durable_backend.py apply" in _block(apply, platform, 8)
        assert "infra/scripts/durable_backend.py restore" in _block(restore, platform, 8)
    assert (REPO_ROOT / "infra" / "scripts" / "durable_backend.py").is_file()


def test_parameters_file_feeds_every_required_parameter(infra: Infra) -> None:
    values = json.loads((infra.root / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = infra.main.parameters
    assert set(values) <= set(declared), "main.parameters.json sets parameters main.bicep does not declare"
    for name, parameter in declared.items():
        if parameter.get("default") is None:
            assert name in values, f"required parameter {name} is not fed by main.parameters.json"
    text = json.dumps(values)
    for variable in ("AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID"):
        assert "${" + variable + "}" in text
    assert values["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert values["location"]["value"] == "${AZURE_LOCATION}"
    assert values["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
