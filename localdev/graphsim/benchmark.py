"""Measure a full backup-style read of a generated tenant: ``python -m localdev.graphsim.benchmark``.

Prints the number of requests, the wall time and the request rate. Throttling stays off (its
published limits would dominate the time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx

from localdev.graphsim.testing import SimHandle, running_simulator

ROLES = [
    "DeviceManagementConfiguration.Read.All", "DeviceManagementApps.Read.All",
    "DeviceManagementServiceConfig.Read.All", "DeviceManagementRBAC.Read.All",
    "DeviceManagementScripts.Read.All", "DeviceManagementManagedDevices.Read.All",
    "Group.Read.All",
]
LISTS = [
    "deviceManagement/configurationPolicies", "deviceManagement/deviceConfigurations",
    "deviceManagement/deviceCompliancePolicies?$expand=scheduledActionsForRule($expand="
    "scheduledActionConfigurations)", "deviceManagement/groupPolicyConfigurations",
    "deviceManagement/deviceManagementScripts", "deviceManagement/deviceHealthScripts",
    "deviceManagement/intents", "deviceManagement/windowsFeatureUpdateProfiles",
    "deviceManagement/windowsQualityUpdateProfiles", "deviceAppManagement/managedAppPolicies",
    "deviceAppManagement/targetedManagedAppConfigurations?$expand=apps",
    "deviceManagement/deviceEnrollmentConfigurations",
    "deviceManagement/windowsAutopilotDeploymentProfiles", "deviceManagement/assignmentFilters",
    "deviceManagement/roleScopeTags", "deviceManagement/notificationMessageTemplates?$expand="
    "localizedNotificationMessages", "deviceManagement/deviceCategories", "groups",
]


class Reader:
    """Follows nextLinks with a bounded number of concurrent requests."""

    def __init__(self, client: httpx.AsyncClient, concurrency: int) -> None:
        self.client = client
        self.gate = asyncio.Semaphore(concurrency)
        self.requests = 0

    async def get(self, url: str) -> dict[str, Any]:
        async with self.gate:
            self.requests += 1
            response = await self.client.get(url)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def all_pages(self, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            body = await self.get(next_url)
            items.extend(body["value"])
            next_url = body.get("@odata.nextLink")
        return items


async def full_read(sim: SimHandle, token: str, concurrency: int) -> int:
    async with httpx.AsyncClient(base_url=f"{sim.base_url}/beta/", verify=sim.ssl_context(),
                                 headers={"Authorization": f"Bearer {token}"},
                                 timeout=60) as client:
        reader = Reader(client, concurrency)
        lists = await asyncio.gather(*(reader.all_pages(url) for url in LISTS))
        by_url = dict(zip(LISTS, lists, strict=True))
        tasks: list[Coroutine[Any, Any, object]] = []
        for policy in by_url[LISTS[0]]:
            tasks.append(reader.all_pages(
                f"deviceManagement/configurationPolicies/{policy['id']}/settings"))
        for coll in ("deviceManagementScripts", "deviceHealthScripts"):
            for item in by_url[f"deviceManagement/{coll}"]:
                tasks.append(reader.get(f"deviceManagement/{coll}/{item['id']}"))
        for intent in by_url["deviceManagement/intents"]:
            tasks.append(reader.all_pages(f"deviceManagement/intents/{intent['id']}/settings"))
        for gpo in by_url["deviceManagement/groupPolicyConfigurations"]:
            tasks.append(_gpo(reader, gpo["id"]))
        await asyncio.gather(*tasks)
        return reader.requests


async def _gpo(reader: Reader, gpo_id: str) -> None:
    base = f"deviceManagement/groupPolicyConfigurations/{gpo_id}/definitionValues"
    values = await reader.all_pages(f"{base}?$expand=definition")
    await asyncio.gather(*(reader.all_pages(f"{base}/{v['id']}/presentationValues?$expand="
                                            "presentation") for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with running_simulator() as sim:
        started = time.perf_counter()
        tenant = sim.control.create_tenant("generated", policies=args.policies, seed=args.seed)
        generated = time.perf_counter() - started
        app = sim.control.create_app(tenant["tenantId"], roles=ROLES)
        token = httpx.post(f"{sim.base_url}/{tenant['tenantId']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["clientId"],
            "client_secret": app["secret"], "scope": "https://graph.microsoft.com/.default"},
            verify=sim.ssl_context()).json()["access_token"]
        started = time.perf_counter()
        cpu_before = _cpu_seconds(sim.pid)
        requests = asyncio.run(full_read(sim, token, args.concurrency))
        elapsed = time.perf_counter() - started
        server_cpu = _cpu_seconds(sim.pid) - cpu_before
    print(f"generated {args.policies} policies via control API in {generated:.2f}s")
    print(f"full read: {requests} requests in {elapsed:.2f}s "
          f"({requests / elapsed:.0f} req/s, concurrency {args.concurrency}); simulator CPU "
          f"{server_cpu:.2f}s ({server_cpu / requests * 1000:.1f} ms/request)")


def _cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux), to tell server cost from machine load."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


if __name__ == "__main__":
    main()
