"""The control API, seeds and the state file."""

from __future__ import annotations

import time

import httpx
import pytest

from localdev.graphsim.seed import build_tenant
from localdev.graphsim.state import SimState, Tenant
from shared.graph.catalog import CATALOG

DM = "/deviceManagement"
ALL_TYPES = ["settingsCatalog", "deviceConfiguration", "updateRing", "compliancePolicy",
             "administrativeTemplate", "powerShellScript", "remediationScript",
             "endpointSecurityIntent", "featureUpdateProfile", "qualityUpdateProfile",
             "appProtectionPolicy", "appConfigurationPolicy", "enrollmentConfiguration",
             "autopilotProfile", "assignmentFilter", "scopeTag", "notificationTemplate",
             "deviceCategory",
             "complianceSettingsPolicy", "complianceScript", "macOSShellScript", "customAttributeScript",
             "driverUpdateProfile", "roleDefinition", "roleAssignment", "termsAndConditions",
             "brandingProfile", "deviceManagementPartner", "remoteAssistancePartner",
             "reusablePolicySetting", "policySet", "conditionalAccessPolicy", "namedLocation",
             "authenticationStrengthPolicy"]


def test_health(sim):
    assert sim.control.health() == {"status": "ok"}


def test_demo_tenant_has_every_type(sim, tenant_id):
    counts = next(t for t in sim.control.tenants() if t["tenantId"] == tenant_id)["counts"]
    assert all(counts[key] >= 1 for key in ALL_TYPES)


def _ids_by_name(tenant: Tenant, coll: str) -> dict[str, str]:
    return {o.get("displayName") or o["name"]: o["id"] for o in tenant.items(coll)}


def test_demo_seeds_are_deterministic_and_differ_across_seeds():
    one = build_tenant("demo", tenant_id="a", seed=1)
    again = build_tenant("demo", tenant_id="b", seed=1)
    other = build_tenant("demo", tenant_id="c", seed=2)
    for coll in ("groups", "assignmentFilters", "roleScopeTags", "configurationPolicies"):
        assert _ids_by_name(one, coll) == _ids_by_name(again, coll)
    for coll in ("groups", "assignmentFilters"):
        assert _ids_by_name(one, coll).keys() == _ids_by_name(other, coll).keys()
        assert not set(_ids_by_name(one, coll).values()) & set(_ids_by_name(other, coll).values())
    tags_one, tags_other = _ids_by_name(one, "roleScopeTags"), _ids_by_name(other, "roleScopeTags")
    assert tags_one["Default"] == tags_other["Default"] == "0"
    assert all(tags_one[n] != tags_other[n] for n in tags_one if n != "Default")

    def custom_admx(tenant: Tenant) -> dict[str, str]:
        return {d["displayName"]: d["id"] for d in tenant.items("groupPolicyDefinitions")
                if d["policyType"] == "admxIngested"}

    assert custom_admx(one).keys() == custom_admx(other).keys()
    assert not set(custom_admx(one).values()) & set(custom_admx(other).values())

    def builtin_admx(tenant: Tenant) -> set[str]:
        return {d["id"] for d in tenant.items("groupPolicyDefinitions")
                if d["policyType"] == "admxBacked"}

    assert builtin_admx(one) == builtin_admx(other)


def test_generated_tenant_is_fast_deterministic_and_spread_over_types():
    started = time.perf_counter()
    big = build_tenant("generated", tenant_id="g", seed=5, policies=5000)
    elapsed = time.perf_counter() - started
    assert elapsed < 10  # generous bound for a shared CI machine; typical is ~1 s
    counts = big.counts()
    # Types sharing a collection (apps, Apple update policies) are told apart as the catalog does.
    exact = {key: sum(1 for o in big.objects_of_type(key) if CATALOG[key].keeps(o)) for key in CATALOG}
    assert sum(exact.values()) >= 5000
    assert all(exact[key] >= 1 for key in CATALOG)
    assert all(counts[key] >= 50 for key in ALL_TYPES[:18] if key != "scopeTag")
    # The tenant-administration and Entra families are smaller in real tenants, and weighted so here.
    assert all(counts[key] >= 20 for key in ALL_TYPES[18:])
    small_a = build_tenant("generated", tenant_id="x", seed=9, policies=60)
    small_b = build_tenant("generated", tenant_id="y", seed=9, policies=60)
    assert list(small_a.coll("deviceConfigurations")) == list(small_b.coll("deviceConfigurations"))


def test_mutations_and_objects(sim, graph, tenant_id):
    control = sim.control
    client = graph()
    category = control.objects(tenant_id, "deviceCategory")[0]
    edited = control.mutate(tenant_id, "edit", "deviceCategory", obj_id=category["id"],
                            patch={"description": "changed by admin"})
    assert edited["description"] == "changed by admin"
    read = client.get(f"{DM}/deviceCategories/{category['id']}").json()
    assert read["description"] == "changed by admin"

    policy = control.objects(tenant_id, "settingsCatalog")[0]
    assert "settings" in policy
    assert "assignments" in policy
    bumped = control.mutate(tenant_id, "edit", "settingsCatalog", obj_id=policy["id"],
                            patch={"name": "Renamed"})
    assert bumped["lastModifiedDateTime"] > policy["lastModifiedDateTime"]

    added = control.mutate(tenant_id, "add", "deviceConfiguration", obj={
        "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
        "displayName": "Added by admin"})
    assert client.get(f"{DM}/deviceConfigurations/{added['id']}").status_code == 200
    control.mutate(tenant_id, "delete", "deviceConfiguration", obj_id=added["id"])
    assert client.get(f"{DM}/deviceConfigurations/{added['id']}").status_code == 404
    rings = control.objects(tenant_id, "updateRing")
    assert rings
    assert all(r["@odata.type"].endswith("windowsUpdateForBusinessConfiguration")
                         for r in rings)


def test_request_log_and_counters(sim, graph, tenant_id):
    client = graph()
    since = time.time()
    client.get(f"{DM}/deviceCategories")
    client.post(f"{DM}/deviceCategories", json={"displayName": "n"})
    log = sim.control.requests(tenant=tenant_id, since=since)
    assert [(e["method"], e["status"]) for e in log] == [("GET", 200), ("POST", 201)]
    assert log[0]["bucket"] == "enrollment"
    assert log[0]["app"]
    assert sim.control.requests(tenant=tenant_id, since=since, limit=1) == log[-1:]
    counters = sim.control.counters()
    row = counters["appTenant"][f"{log[0]['app']}/{tenant_id}"]
    assert row["reads"] >= 1
    assert row["writes"] == 1
    assert counters["tenant"][tenant_id]["writes"] >= 1


def test_control_api_validates_input(sim):
    with pytest.raises(httpx.HTTPStatusError):
        sim.control.create_tenant("unknown-preset")
    with pytest.raises(httpx.HTTPStatusError):
        sim.control.create_app("00000000-0000-0000-0000-000000000000", roles=[])


def test_state_file_round_trip(tmp_path):
    state = SimState(state_file=tmp_path / "state.json")
    state.tenants["t1"] = build_tenant("demo", tenant_id="t1", seed=3)
    state.save()
    assert not state.dirty
    loaded = SimState(state_file=tmp_path / "state.json")
    loaded.load()
    assert loaded.tenants["t1"].counts() == state.tenants["t1"].counts()
    assert loaded.tenants["t1"].next_scope_tag == state.tenants["t1"].next_scope_tag


def test_reset_empties_everything(sim):
    # Runs last in this module on purpose: other modules create their own tenants per test.
    sim.control.create_tenant("empty")
    sim.control.set_faults([{"kind": "500"}])
    sim.control.reset()
    assert sim.control.tenants() == []
    assert sim.control.faults() == []
    assert sim.control.requests() == []


def test_state_file_survives_a_restart(tmp_path):
    from localdev.graphsim.testing import running_simulator

    state_file = tmp_path / "sim-state.json"
    with running_simulator(state_file=state_file) as first:
        tenant = first.control.create_tenant("demo", seed=4)["tenantId"]
        first.control.mutate(tenant, "edit", "deviceCategory",
                             obj_id=first.control.objects(tenant, "deviceCategory")[0]["id"],
                             patch={"description": "kept"})
    with running_simulator(state_file=state_file) as second:
        categories = second.control.objects(tenant, "deviceCategory")
        assert categories[0]["description"] == "kept"


def test_objects_of_types_sharing_a_collection_are_told_apart(sim, tenant_id):
    # Device configurations hold the iOS and macOS update policies, and mobileApps both app types: the
    # control API answers each type with its own objects only, as the catalog captures them.
    control = sim.control
    apple = {"#microsoft.graph.iosUpdateConfiguration", "#microsoft.graph.macOSSoftwareUpdateConfiguration"}
    configurations = control.objects(tenant_id, "deviceConfiguration")
    assert configurations
    assert not {c["@odata.type"] for c in configurations} & apple
    assert {p["@odata.type"] for p in control.objects(tenant_id, "iosUpdatePolicy")} == {
        "#microsoft.graph.iosUpdateConfiguration"}
    assert {p["@odata.type"] for p in control.objects(tenant_id, "macOSUpdatePolicy")} == {
        "#microsoft.graph.macOSSoftwareUpdateConfiguration"}
    for key in ("mobileApp", "contentApp"):
        objects = control.objects(tenant_id, key)
        assert objects
        assert all(CATALOG[key].keeps(o) for o in objects), key
    store = {o["id"] for o in control.objects(tenant_id, "mobileApp")}
    assert not store & {o["id"] for o in control.objects(tenant_id, "contentApp")}
