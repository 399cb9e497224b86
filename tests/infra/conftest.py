"""Fixtures for the offline infrastructure checks: the parsed templates and scratch copies to break."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tests.infra.bicep_model import INFRA_ROOT, REPO_ROOT, Infra, load_infra


@pytest.fixture(scope="session")
def infra() -> Infra:
    """The repository's templates, parsed once per session."""
    return load_infra(INFRA_ROOT)


@pytest.fixture
def infra_copy(tmp_path: Path) -> Path:
    """A scratch copy of ``infra/``, ``azure.yaml`` and ``host.json``; returns the copied infra folder."""
    shutil.copytree(INFRA_ROOT, tmp_path / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("azure.yaml", "host.json"):
        shutil.copyfile(REPO_ROOT / name, tmp_path / name)
    return tmp_path / "infra"


def load_script(name: str) -> ModuleType:
    """Import a script from ``infra/scripts`` (it is not a package: azd runs it as a file)."""
    path = INFRA_ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"infra_scripts_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def durable_backend() -> ModuleType:
    """``infra/scripts/durable_backend.py``."""
    return load_script("durable_backend")


@pytest.fixture(scope="session")
def register_apps() -> ModuleType:
    """``infra/scripts/register_apps.py``."""
    return load_script("register_apps")
