"""The live progress page in a real headless Chromium, against the whole local stack.

The page is opened the way the demo prints it (the caller's token in the URL fragment), a run is started
through the public API, and the page must show it appear, advance and finish, with the counts the API has;
a caller without a grant on that tenant must see nothing of it. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from tests.e2e.conftest import Api, Stack, wait_terminal

pytestmark = pytest.mark.e2e

STATUS_ORDER = {"queued": 0, "running": 1, "succeeded": 2, "partial": 2, "failed": 2, "cancelled": 2}


@dataclass(frozen=True)
class Seen:
    """One run's row as the page showed it at one moment."""

    status: str
    percent: str
    counts: str


def _page_url(stack: Stack, token: str) -> str:
    return f"{stack.info.api_base_url}/progress/page#token={token}"


def _wait(condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _signed_in(browser: webdriver.Chrome) -> bool:
    return "active" in browser.find_element(By.ID, "summary").text


def _row(browser: webdriver.Chrome, run_id: str) -> Any:
    rows = browser.find_elements(By.CSS_SELECTOR, f'li.run[data-run-id="{run_id}"]')
    return rows[0] if rows else None


def _seen(browser: webdriver.Chrome, run_id: str) -> Seen | None:
    row = _row(browser, run_id)
    if row is None:
        return None
    return Seen(status=row.get_attribute("data-status") or "",
                percent=row.get_attribute("data-percent") or "",
                counts=row.find_element(By.CLASS_NAME, "counts").text)


def _counts_text(counts: dict[str, int]) -> str:
    return (f"{counts['total']} done: {counts['succeeded']} succeeded, {counts['failed']} failed, "
            f"{counts['skipped']} skipped")


def _policies(api: Api, tenant: str, policy_type: str) -> list[dict[str, Any]]:
    response = api.get(f"/tenants/{tenant}/policies", params={"type": policy_type})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def _console_errors(browser: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_a_run_started_through_the_api_appears_advances_and_finishes_on_the_page(
        stack: Stack, browser: webdriver.Chrome, artifacts: Path) -> None:
    tenant = stack.new_customer_tenant()
    api, _ = stack.user(tenant, "operator", name="Page Operator")
    categories = _policies(api, tenant, "deviceCategory")
    slow = categories[0]
    browser.get(_page_url(stack, api.token))
    _wait(lambda: _signed_in(browser), what="the page to read /api/progress with the token")
    # The token left the address bar (and so the history) as soon as the page took it.
    assert "token" not in browser.current_url

    # Graph answers one policy slowly, so the run is in flight long enough to be watched.
    stack.sim.put("/_sim/faults", json={"rules": [
        {"kind": "slow", "delaySeconds": 6, "path": f"deviceCategories/{slow['id']}", "tenant": tenant},
    ]}).raise_for_status()
    seen: list[Seen] = []
    try:
        started = api.post(f"/tenants/{tenant}/backup-sets", headers={"Idempotency-Key": str(uuid.uuid4())},
                           json={"name": "Watched from the progress page", "includeFoundations": False,
                                 "selection": {"policies": [
                                     {"type": "deviceCategory", "id": c["id"]} for c in categories]}})
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                current = _seen(browser, run_id)
            except StaleElementReferenceException:
                continue
            if current is not None and (not seen or seen[-1] != current):
                seen.append(current)
                if len(seen) == 1:
                    browser.save_screenshot(str(artifacts / "progress-page-running.png"))
            if current is not None and current.status not in ("queued", "running"):
                break
            time.sleep(0.1)
    finally:
        stack.sim.delete("/_sim/faults")
    browser.save_screenshot(str(artifacts / "progress-page-finished.png"))

    done = api.get(f"/tenants/{tenant}/runs/{run_id}").json()
    assert done["status"] == "succeeded", (done, seen)
    assert seen, "the run never appeared on the page"
    # It appeared while still in flight, only ever moved forward, and ended as the API says, at 100 %.
    assert seen[0].status in ("queued", "running"), seen
    assert seen[0].percent != "100", seen
    ranks = [STATUS_ORDER[s.status] for s in seen]
    assert ranks == sorted(ranks), seen
    percents = [float(s.percent) for s in seen if s.percent]
    assert percents == sorted(percents), seen
    assert seen[-1] == Seen(status="succeeded", percent="100", counts=_counts_text(done["counts"])), seen
    assert done["counts"]["succeeded"] == len(categories)
    row = _row(browser, run_id)
    assert row.get_attribute("data-tenant-id") == tenant
    # The tenant is shown by name (from GET /api/tenants), the kind by its label.
    assert f"Customer {tenant[:8]}" in row.text
    assert "Backup set" in row.text

    # Its details (the run and its per-item outcomes) open in place.
    row.find_element(By.CLASS_NAME, "details-link").click()
    outcomes = _wait(lambda: row.find_elements(By.CSS_SELECTOR, ".details table.items tr")[1:],
                     what="the run's item outcomes")
    assert len(outcomes) == len(categories)
    assert {o.find_elements(By.TAG_NAME, "td")[3].text for o in outcomes} == {"succeeded"}
    browser.save_screenshot(str(artifacts / "progress-page-details.png"))
    assert not _console_errors(browser)


def test_a_caller_without_a_grant_on_a_tenant_sees_nothing_of_its_runs(
        stack: Stack, browser: webdriver.Chrome, artifacts: Path) -> None:
    hidden_tenant = stack.new_customer_tenant()
    visible_tenant = stack.new_customer_tenant()
    operator, _ = stack.user(hidden_tenant, "operator")
    reader, reader_oid = stack.user(visible_tenant, "reader", name="Other Tenant Reader")
    other_operator, _ = stack.user(visible_tenant, "operator")
    hidden = _start_snapshot(operator, hidden_tenant)
    visible = _start_snapshot(other_operator, visible_tenant)

    browser.get(_page_url(stack, reader.token))
    row = _wait(lambda: _row(browser, visible["id"]), what="the run of the tenant the reader may read")
    _wait(lambda: row.get_attribute("data-status") == "succeeded", what="that run to finish on the page")
    browser.save_screenshot(str(artifacts / "progress-page-other-tenant.png"))

    source = browser.page_source
    assert hidden["id"] not in source
    assert hidden_tenant not in source
    assert {r.get_attribute("data-tenant-id")
            for r in browser.find_elements(By.CSS_SELECTOR, "li.run")} == {visible_tenant}
    # The same page shows that run to a caller who may read its tenant, so its absence above is the grant's.
    browser.get("about:blank")
    browser.get(_page_url(stack, operator.token))
    _wait(lambda: _row(browser, hidden["id"]), what="the run, for a caller with a grant")
    assert reader_oid not in browser.page_source


def test_without_credentials_the_page_asks_to_sign_in_and_shows_no_run(
        stack: Stack, browser: webdriver.Chrome) -> None:
    tenant = stack.new_customer_tenant()
    operator, _ = stack.user(tenant, "operator")
    _start_snapshot(operator, tenant)

    page = httpx.get(f"{stack.info.api_base_url}/progress/page")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    browser.get(f"{stack.info.api_base_url}/progress/page")
    sign_in = browser.find_element(By.ID, "sign-in")
    _wait(sign_in.is_displayed, what="the sign-in form")
    assert browser.find_elements(By.CSS_SELECTOR, "li.run") == []
    # A pasted token works like one from the link.
    browser.find_element(By.ID, "token-input").send_keys(operator.token)
    browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, f'li.run[data-tenant-id="{tenant}"]'),
          what="the run after pasting a token")
    assert not sign_in.is_displayed()


def _start_snapshot(api: Api, tenant: str) -> dict[str, Any]:
    policy = _policies(api, tenant, "scopeTag")[0]
    started = api.post(f"/tenants/{tenant}/policies/scopeTag/{policy['id']}/snapshots")
    assert started.status_code == 202, started.text
    return wait_terminal(api, started.headers["Location"])
