"""Fixtures for the sample-app acceptance tests.

Each test module defines a module-scoped ``host`` fixture (one host per sample app, shared by the
module's tests); ``client`` is an HTTP client on that host.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture
def client(host: Any) -> Iterator[httpx.Client]:
    """HTTP client for the sample app's host (relative URLs resolve against ``/``)."""
    with httpx.Client(base_url=host.base_url, timeout=15.0) as http:
        yield http
