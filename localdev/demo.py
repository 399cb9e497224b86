"""The local demo: a policy snapshot captured through the public HTTP API, end to end.

Runs against a stack started with ``python -m localdev.stack up --background``:

1. mints a ``Platform.Admin`` app token and an operator user token at the simulator's Entra endpoint,
2. registers the demo customer tenant (``PUT /api/tenants/{id}``) and grants the operator,
3. lists the tenant's settings catalog policies live from Graph,
4. starts a snapshot (``POST .../snapshots``), follows the monitor URL with a progress display,
5. prints the outcome and where to look.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import httpx

from localdev.stack import STATE_FILE, StackInfo, mint_token, sim_client, tenant_registration

DEMO_OPERATOR_OID = "44444444-4444-4444-8444-444444444444"
DEMO_ADMIN_APP_OID = "55555555-5555-4555-8555-555555555555"


def _check(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        raise SystemExit(f"{response.request.method} {response.request.url} answered "
                         f"{response.status_code}: {response.text[:500]}")
    return response.json() if response.content else {}


def _bar(fraction: float, width: int = 30) -> str:
    filled = round(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + "]"


def follow(api: httpx.Client, monitor_url: str, *, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the monitor URL as a Logic App would, showing progress until the run is terminal."""
    deadline = time.monotonic() + timeout
    url = monitor_url
    while time.monotonic() < deadline:
        response = api.get(url)
        run = _check(response, 200, 202)
        counts = run.get("counts") or {}
        total = counts.get("total") or 0
        done = (counts.get("succeeded") or 0) + (counts.get("failed") or 0) + (counts.get("skipped") or 0)
        fraction = done / total if total else (1.0 if response.status_code == 200 else 0.0)
        print(f"\r  {run['status']:<10} {_bar(fraction)} {done}/{total} items   ", end="", flush=True)
        if response.status_code == 200:
            print()
            return run
        url = response.headers.get("Location", url)
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 2.0))
    print()
    raise SystemExit(f"the run did not finish within {timeout:.0f}s")


def main() -> int:
    info = StackInfo.load()
    if info is None:
        print(f"No local stack found ({STATE_FILE}). Start one: python -m localdev.stack up --background")
        return 1
    tenant = info.demo_tenant_id
    with sim_client(info) as sim:
        admin_token = mint_token(sim, oid=DEMO_ADMIN_APP_OID, idtyp="app", name="Provisioning pipeline",
                                 roles=["Platform.Admin"])
        operator_token = mint_token(sim, oid=DEMO_OPERATOR_OID, name="Dana Operator")
    with httpx.Client(base_url=info.api_base_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        print(f"1. Registering the demo tenant {tenant} (as Platform.Admin)")
        _check(admin.put(f"/tenants/{tenant}", json=tenant_registration("Contoso (demo)")), 200, 201)
        print(f"2. Granting the operator {DEMO_OPERATOR_OID} on it")
        _check(admin.put(f"/tenants/{tenant}/grants/{DEMO_OPERATOR_OID}", json={"role": "operator"}),
               200, 201)

    with httpx.Client(base_url=info.api_base_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {operator_token}"}) as api:
        print("3. Settings catalog policies in the tenant (live from Graph):")
        policies = _check(api.get(f"/tenants/{tenant}/policies", params={"type": "settingsCatalog"}), 200)
        items = policies.get("items", [])
        for policy in items:
            print(f"     {policy['id']}  {policy['displayName']}")
        if not items:
            raise SystemExit("the demo tenant has no settings catalog policy")
        chosen = items[0]
        print(f"4. Capturing a snapshot of '{chosen['displayName']}'")
        started = api.post(f"/tenants/{tenant}/policies/settingsCatalog/{chosen['id']}/snapshots",
                           headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
        run = _check(started, 202)
        print(f"   run {run['id']} {run['status']}; monitor: {started.headers['Location']}")
        run = follow(api, started.headers["Location"])
        print(f"5. Outcome: {run['status']}  counts={run['counts']}")
        if run.get("failure"):
            print(f"   failure: {run['failure']['code']}: {run['failure']['message']}")
        outcome = _check(api.get(run["links"]["items"]), 200)
        for item in outcome.get("items", []):
            print(f"   item {item['displayName']}: {item['action']} / {item['status']}"
                  + (f" ({item['error']['code']})" if item.get("error") else ""))
        print("6. Backing up the whole tenant: a backup set of every policy type, with assignments and "
              "foundations")
        started = api.post(f"/tenants/{tenant}/backup-sets",
                           json={"name": "Demo full backup", "selection": {"all": True}},
                           headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
        backup = _check(started, 202)
        set_id = backup["backupSet"]["id"]
        print(f"   run {backup['id']} {backup['status']}; backup set {set_id}")
        backup = follow(api, started.headers["Location"])
        backup_set = _check(api.get(f"/tenants/{tenant}/backup-sets/{set_id}", params={"top": 5}), 200)
        print(f"7. Outcome: {backup['status']}  counts={backup['counts']}  set={backup_set['status']}  "
              f"changes against the previous complete set: {backup_set.get('changes')}")
        for item in backup_set.get("items", []):
            print(f"   {item['policyType']:<28} {item.get('displayName') or item['sourceId']}")
        print(f"   ... {backup_set.get('itemCount')} items in all; each one's captured JSON at "
              f"GET {backup_set['links']['self']}/items/{{itemId}}")
        print("\nWhere to look:")
        print(f"  backup set:    GET {backup_set['links']['self']} (and .../changes)")
        print(f"  run:           GET {run['links']['self']}")
        print(f"  items:         GET {run['links']['items']}")
        print(f"  notifications: GET {info.api_base_url}/notifications?unread=true")
        print(f"  progress:      GET {info.api_base_url}/progress")
        print(f"  logs:          {', '.join(info.logs.values())}")
        print("  (send 'Authorization: Bearer <token>'; mint one with POST "
              f"{info.simulator_base_url}/_sim/tokens)")
    return 0 if run["status"] == "succeeded" and backup["status"] == "succeeded" else 2


if __name__ == "__main__":
    sys.exit(main())
