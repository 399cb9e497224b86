"""Session-wide fixtures shared by every test layer.

Azurite is started once per test session (in memory, on free loopback ports) unless
``AZURITE_CONNECTION_STRING`` points at one that is already running.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from localdev.azurite import start_azurite


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """Connection string of an Azurite for this test session."""
    existing = os.environ.get("AZURITE_CONNECTION_STRING")
    if existing:
        yield existing
        return
    azurite = start_azurite()
    try:
        yield azurite.connection_string
    finally:
        azurite.stop()


@pytest.fixture
def unique_name() -> str:
    """A short name that is unique per test, valid as a table or hub name (letters and digits)."""
    return "t" + uuid.uuid4().hex[:12]
