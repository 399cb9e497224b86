"""The local demo: a policy snapshot captured through the public HTTP API, end to end.

Runs against a stack started with ``python -m localdev.stack up --background``:

1. mints a ``Platform.Admin`` app token and an operator user token at the simulator's Entra endpoint,
2. registers the demo customer tenant (``PUT /api/tenants/{id}``) and grants the operator,
3. lists the tenant's settings catalog policies live from Graph,
4. starts a snapshot (``POST .../snapshots``), follows the monitor URL with a progress display,
5. backs up the whole tenant into a backup set,
6. has someone delete a policy and edit another by hand (through the simulator's control API), previews the
   restore (read-only), restores as an admin and shows what came back,
7. prints where to look.
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
DEMO_TENANT_ADMIN_OID = "66666666-6666-4666-8666-666666666666"


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
        tenant_admin_token = mint_token(sim, oid=DEMO_TENANT_ADMIN_OID, name="Ada Admin")
    with httpx.Client(base_url=info.api_base_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {admin_token}"}) as admin:
        print(f"1. Registering the demo tenant {tenant} (as Platform.Admin)")
        _check(admin.put(f"/tenants/{tenant}", json=tenant_registration("Contoso (demo)")), 200, 201)
        print(f"2. Granting the operator {DEMO_OPERATOR_OID} on it")
        _check(admin.put(f"/tenants/{tenant}/grants/{DEMO_OPERATOR_OID}", json={"role": "operator"}),
               200, 201)
        print(f"   and the tenant admin {DEMO_TENANT_ADMIN_OID}, who may restore")
        _check(admin.put(f"/tenants/{tenant}/grants/{DEMO_TENANT_ADMIN_OID}", json={"role": "admin"}),
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
        restore = _restore_after_an_accident(info, api, tenant, set_id, tenant_admin_token)
        print("\nWhere to look:")
        print(f"  backup set:    GET {backup_set['links']['self']} (and .../changes)")
        print(f"  run:           GET {run['links']['self']}")
        print(f"  items:         GET {run['links']['items']}")
        print(f"  restore plan:  GET {restore['links']['self']}/preview")
        print(f"  audit:         GET {info.api_base_url}/tenants/{tenant}/audit?runId={restore['id']}")
        print(f"  notifications: GET {info.api_base_url}/notifications?unread=true")
        print(f"  progress:      GET {info.api_base_url}/progress")
        # The token rides in the fragment, which the browser keeps to itself (never sent, never logged).
        print(f"  progress page: {info.api_base_url}/progress/page#token={operator_token}")
        print(f"  logs:          {', '.join(info.logs.values())}")
        print("  (send 'Authorization: Bearer <token>'; mint one with POST "
              f"{info.simulator_base_url}/_sim/tokens)")
    ok = all(r["status"] == "succeeded" for r in (run, backup, restore))
    return 0 if ok else 2


def _restore_after_an_accident(info: StackInfo, api: httpx.Client, tenant: str, set_id: str,
                               admin_token: str) -> dict[str, Any]:
    """Someone deletes a policy and edits another; a preview shows exactly that, a restore undoes it."""
    with sim_client(info) as sim:
        configs = sim.get(f"/_sim/tenants/{tenant}/objects/deviceConfiguration").json()["value"]
        catalog = sim.get(f"/_sim/tenants/{tenant}/objects/settingsCatalog").json()["value"]
        gone, edited = configs[-1], catalog[0]
        print(f"8. Meanwhile someone deletes '{gone['displayName']}' and edits the description of "
              f"'{edited['name']}' in the Intune portal")
        sim.post(f"/_sim/tenants/{tenant}/mutations",
                 json={"op": "delete", "type": "deviceConfiguration", "id": gone["id"]}).raise_for_status()
        sim.post(f"/_sim/tenants/{tenant}/mutations", json={
            "op": "edit", "type": "settingsCatalog", "id": edited["id"],
            "patch": {"description": "changed by hand"}}).raise_for_status()
    print("9. Previewing a restore of the backup set (read-only: nothing is written to the tenant)")
    started = api.post(f"/tenants/{tenant}/restores/previews", json={"backupSetId": set_id})
    preview = follow(api, _check(started, 202)["links"]["monitor"])
    plan = _check(api.get(f"/tenants/{tenant}/runs/{preview['id']}/preview"), 200)
    print(f"   plan: {plan['summary']}")
    for item in plan["items"]:
        if item["action"] not in ("unchanged", "unsupported"):
            changed = ", ".join(c["path"] for c in item["changes"][:3])
            print(f"   {item['action']:<7} {item['policyType']:<22} {item['displayName']}"
                  + (f" ({changed})" if changed else ""))
    print("10. Restoring exactly that plan, as the tenant admin")
    with httpx.Client(base_url=info.api_base_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {admin_token}"}) as admin_api:
        started = admin_api.post(f"/tenants/{tenant}/restores",
                                 json={"backupSetId": set_id, "previewRunId": preview["id"]},
                                 headers={"Idempotency-Key": f"demo-{uuid.uuid4()}"})
        restore = follow(admin_api, _check(started, 202)["links"]["monitor"])
        print(f"   Outcome: {restore['status']}  counts={restore['counts']}")
        outcomes = _check(admin_api.get(restore["links"]["items"], params={"top": 1000}), 200)
        for item in outcomes["items"]:
            if item["action"] in ("created", "updated", "failed"):
                print(f"   {item['action']:<7} {item['policyType']:<22} {item['displayName']} -> "
                      f"{item.get('targetId')}")
        audit = _check(admin_api.get(f"/tenants/{tenant}/audit", params={"runId": restore["id"]}), 200)
        print(f"   {len(audit['items'])} audit events for the restore (one per write, one for the run)")
    return restore


if __name__ == "__main__":
    sys.exit(main())
