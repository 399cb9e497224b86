"""What "a captured object equals the simulator's object" means, for every catalog type.

One definition for the Graph-level tests (our reader over HTTPS) and the end-to-end tests (a backup set's
items through the public API). Both sides are brought to the same shape before they are compared:

- annotations Graph adds to an answer (``@odata.context``, ``...@odata.context`` of expanded navigations)
  are dropped; the ``@odata.type`` discriminator is kept;
- the simulator's private bookkeeping keys (``_definitionId``, ``_categoryId``...) are dropped;
- where the capture expands a reference the simulator stores as an id (GPO definitions and presentations,
  the role and scope tags of a role assignment), the simulator's side is expanded from the objects it holds,
  as Graph's ``$expand`` returns them;
- navigation collections the catalog never reads are left out of the simulator's side;
- secrets the catalog redacts are ``None`` on the simulator's side too (callers check the redaction itself);
- a tenant-wide setting Graph gives no id keeps the simulator's control handle out of the comparison.

Service stamps (``createdDateTime``, ``lastModifiedDateTime``, ``version``) are compared as they are: nothing
changes the tenant between the capture and the comparison, so a stamp that differs is a capture that differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shared.graph import PolicyType

# The simulator's objects of a catalog key or of a raw collection (``groupPolicyDefinitions``).
Held = Callable[[str], list[dict[str, Any]]]

# Navigation collections the simulator stores inline that the catalog deliberately does not read: who
# accepted the terms is user activity, not configuration, and which policies reference a reusable
# setting is computed by Graph from those policies.
NOT_CAPTURED: Mapping[str, tuple[str, ...]] = {
    "termsAndConditions": ("acceptanceStatuses",),
    "reusablePolicySetting": ("referencingConfigurationPolicies",),
}
# The role assignment's read step expands ``roleDefinition($select=id,displayName)``.
_ROLE_DEFINITION_SELECT = ("@odata.type", "id", "displayName")


def without_annotations(value: Any) -> Any:
    """``value`` without response annotations (``@odata.type`` kept) and the simulator's ``_`` keys."""
    if isinstance(value, dict):
        return {k: without_annotations(v) for k, v in value.items()
                if not k.startswith("_") and ("@odata." not in k or k == "@odata.type")}
    if isinstance(value, list):
        return [without_annotations(v) for v in value]
    return value


def held_by_id(objects: Iterable[dict[str, Any]], policy_type: PolicyType) -> dict[str, dict[str, Any]]:
    """The simulator's objects a capture of ``policy_type`` lists, by the id the reader names them with."""
    # A singleton without an id of its own is known by its type key, as the reader names it.
    return {o.get("id") or policy_type.key: o for o in objects if policy_type.keeps(o)}


def _by_id(objects: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(o["id"]): o for o in objects}


def _expanded_gpo_values(values: list[dict[str, Any]], held: Held) -> list[dict[str, Any]]:
    definitions = _by_id(held("groupPolicyDefinitions"))
    out = []
    for value in values:
        definition = definitions[value["_definitionId"]]
        presentations = _by_id(definition.get("presentations", []))
        expanded = dict(value)
        # $expand=definition returns the definition without its own navigation (presentations).
        expanded["definition"] = {k: v for k, v in definition.items() if k != "presentations"}
        expanded["presentationValues"] = [{**p, "presentation": presentations[p["_presentationId"]]}
                                          for p in value.get("presentationValues", [])]
        out.append(expanded)
    return out


def _expanded_role_assignment(obj: dict[str, Any], held: Held) -> dict[str, Any]:
    roles = _by_id(held("roleDefinition"))
    tags = _by_id(held("scopeTag"))
    out = dict(obj)
    role = roles[obj["roleDefinition"]["id"]]
    out["roleDefinition"] = {k: role[k] for k in _ROLE_DEFINITION_SELECT if k in role}
    out["roleScopeTags"] = [{k: v for k, v in tags[t["id"]].items() if k != "assignments"}
                            for t in obj.get("roleScopeTags", [])]
    return out


def comparable_capture(body: Mapping[str, Any]) -> dict[str, Any]:
    """A captured object as it is compared."""
    return dict(without_annotations(dict(body)))


def comparable_held(obj: Mapping[str, Any], policy_type: PolicyType, held: Held, *,
                    captured: Mapping[str, Any]) -> dict[str, Any]:
    """The simulator's object as a full capture of it must read, in the capture's shape."""
    out = dict(obj)
    for nav in NOT_CAPTURED.get(policy_type.key, ()):
        out.pop(nav, None)
    if policy_type.key == "administrativeTemplate":
        out["definitionValues"] = _expanded_gpo_values(out.get("definitionValues", []), held)
    if policy_type.key == "roleAssignment":
        out = _expanded_role_assignment(out, held)
    for secret in policy_type.redact_on_capture:
        if secret in out:
            out[secret] = None
    if policy_type.singleton and "id" not in captured:
        # Graph gives tenant-wide settings no id; the simulator keeps one for its control API only.
        out.pop("id", None)
    return dict(without_annotations(out))


def differences(captured: Any, held: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as readable paths (empty when equal)."""
    if isinstance(captured, dict) and isinstance(held, dict):
        found: list[str] = []
        for key in sorted(set(captured) | set(held)):
            here = f"{path}/{key}"
            if key not in held:
                found.append(f"{here}: only in the capture")
            elif key not in captured:
                found.append(f"{here}: missing from the capture")
            else:
                found.extend(differences(captured[key], held[key], here))
        return found
    if isinstance(captured, list) and isinstance(held, list):
        if len(captured) != len(held):
            return [f"{path}: {len(captured)} captured, {len(held)} held"]
        return [d for i, (c, h) in enumerate(zip(captured, held, strict=True))
                for d in differences(c, h, f"{path}[{i}]")]
    return [] if captured == held else [f"{path}: captured {captured!r:.80}, held {held!r:.80}"]


def capture_differences(body: Mapping[str, Any], obj: Mapping[str, Any], policy_type: PolicyType,
                        held: Held) -> list[str]:
    """How a capture differs from the simulator's object after normalisation (empty when it is equal)."""
    return differences(comparable_capture(body), comparable_held(obj, policy_type, held, captured=body))
