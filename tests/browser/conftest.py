"""A real headless browser: Chromium and its driver from Debian packages, driven through Selenium.

CI runs as root on a fresh machine, so the session installs the two packages when they are missing; when
that is impossible the tests fail with the reason (a browser test that silently skips proves nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.e2e.conftest import stack  # noqa: F401 - the whole local stack, as the e2e tests start it

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DEBIAN_PACKAGES = ("chromium", "chromium-driver")


def _binaries() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _install_from_debian() -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"Chromium is missing and cannot be installed here (needs root and apt-get): install the "
                    f"Debian packages {' '.join(DEBIAN_PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of the Chromium browser and of its matching driver, installed when missing."""
    found = _binaries()
    if found is None:
        _install_from_debian()
        found = _binaries()
    if found is None:
        pytest.fail(f"the Debian packages {' '.join(DEBIAN_PACKAGES)} installed no chromium/chromedriver")
    return found


@pytest.fixture
def browser(chromium: tuple[str, str]) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium per test (its own profile, so no session storage is shared)."""
    browser_path, driver_path = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    # Root in a container has no user namespace for Chromium's sandbox; the pages are our own.
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,900", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts() -> Path:
    """Where tests leave what a person may want to look at afterwards (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
