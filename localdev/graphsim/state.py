"""In-memory state of the simulator: tenants, their objects and app registrations."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localdev.graphsim.catalog import CLAIMED_ELSEWHERE, MANAGED_APP_POLICY_MEMBERS, TYPE_KEYS

__all__ = ["AppRegistration", "SimState", "Tenant"]

Obj = dict[str, Any]


@dataclass
class AppRegistration:
    """An app registration (service principal) with application permissions in one tenant."""

    client_id: str
    roles: list[str]
    secret: str | None = None
    certificate_pem: str | None = None
    consented: bool = True


@dataclass
class Tenant:
    """One customer tenant: collections by Graph segment name, each ``id -> object``."""

    id: str
    display_name: str
    seed: int = 0
    colls: dict[str, dict[str, Obj]] = field(default_factory=dict)
    apps: dict[str, AppRegistration] = field(default_factory=dict)
    next_scope_tag: int = 1

    def coll(self, name: str) -> dict[str, Obj]:
        """The objects of a collection (created empty on first use)."""
        return self.colls.setdefault(name, {})

    def find(self, name: str, obj_id: str) -> Obj | None:
        """One object of a collection, or ``None``."""
        if name == "managedAppPolicies":
            for member in MANAGED_APP_POLICY_MEMBERS:
                hit = self.coll(member).get(obj_id)
                if hit is not None:
                    return hit
            return None
        return self.coll(name).get(obj_id)

    def items(self, name: str) -> list[Obj]:
        """All objects of a collection, in creation order."""
        if name == "managedAppPolicies":
            return [o for member in MANAGED_APP_POLICY_MEMBERS for o in self.coll(member).values()]
        return list(self.coll(name).values())

    def objects_of_type(self, type_key: str) -> list[Obj]:
        """Objects for a project catalog key (``settingsCatalog``, ``updateRing``, ...)."""
        spec = TYPE_KEYS[type_key]
        found = [o for name in spec.collections for o in self.coll(name).values()]
        if spec.odata_types:
            found = [o for o in found if o.get("@odata.type") in spec.odata_types]
        elif type_key in CLAIMED_ELSEWHERE:
            # A collection shared with keys that name their subtypes (Apple update policies live among the
            # device configurations): those objects belong to the other key, as in the project catalog.
            found = [o for o in found if o.get("@odata.type") not in CLAIMED_ELSEWHERE[type_key]]
        if spec.update_ring is None:
            return found
        ring = "#microsoft.graph.windowsUpdateForBusinessConfiguration"
        return [o for o in found if (o.get("@odata.type") == ring) == spec.update_ring]

    def counts(self) -> dict[str, int]:
        """Number of objects per project catalog key."""
        return {key: len(self.objects_of_type(key)) for key in TYPE_KEYS}


@dataclass
class SimState:
    """Every tenant plus the switches that change how Graph behaves."""

    tenants: dict[str, Tenant] = field(default_factory=dict)
    strict: bool = True
    state_file: Path | None = None
    dirty: bool = False

    def reset(self) -> None:
        """Back to no tenants."""
        self.tenants.clear()
        self.mark_dirty()

    def mark_dirty(self) -> None:
        """Note a change so the persister writes the state file."""
        self.dirty = True

    def save(self) -> None:
        """Write all tenants to the state file (atomic rename) if one is configured."""
        if self.state_file is None:
            return
        self.dirty = False
        data = {tid: {"id": t.id, "display_name": t.display_name, "seed": t.seed,
                      "colls": t.colls, "next_scope_tag": t.next_scope_tag,
                      "apps": {cid: asdict(a) for cid, a in t.apps.items()}}
                for tid, t in self.tenants.items()}
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, self.state_file)

    def load(self) -> None:
        """Read tenants back from the state file, when it exists."""
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        for tid, raw in data.items():
            self.tenants[tid] = Tenant(
                id=raw["id"], display_name=raw["display_name"], seed=raw.get("seed", 0),
                colls=raw["colls"], next_scope_tag=raw.get("next_scope_tag", 1),
                apps={cid: AppRegistration(**a) for cid, a in raw.get("apps", {}).items()})
