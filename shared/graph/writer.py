"""Writing Intune policies back, driven by the catalog: create, update, child writes and assignments.

The catalog says per type where an object is created (its collection, a platform collection, or a template
action), how it is updated (``PATCH`` or ``PUT``), which properties Graph refuses on a write, which parts
go through their own calls once the object exists (``child_writes``) and how assignments are written. The
bodies of those calls differ per action; they are built here, in one table keyed by the action's path,
instead of a module per type.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from shared.graph.catalog import CATALOG, PolicyType
from shared.graph.client import GraphResponse

__all__ = ["GraphWriteApi", "PolicyWriter", "app_category_names", "create_body", "unrestorable_properties",
           "update_body"]

logger = logging.getLogger(__name__)

# Properties of sub-objects the service assigns or stamps; never sent back.
_SUB_OBJECT_STAMPS = frozenset({"id", "createdDateTime", "lastModifiedDateTime", "version", "status",
                                "errorCode"})
_GRAPH = "https://graph.microsoft.com"
# An app's categories: references to the tenant's app categories, added one by one.
_CATEGORY_REFS = "categories/$ref"
_APP_CATEGORIES = "deviceAppManagement/mobileAppCategories"
# A WIP policy's AppLocker files: navigation collections, one POST per file.
_APPLOCKER_FILES = frozenset({"protectedAppLockerFiles", "exemptAppLockerFiles"})
_APPLOCKER_FIELDS = ("displayName", "fileHash", "file", "version")
# Child writes that POST a new member to a collection (not an action that replaces a whole part).
_COLLECTION_POSTS = frozenset({"localizedNotificationMessages", *_APPLOCKER_FILES})


class GraphWriteApi(Protocol):
    """The part of :class:`shared.graph.client.GraphClient` a writer uses (a fake implements it in tests)."""

    async def get(self, url: str, *, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a JSON object."""
        ...

    async def post(self, url: str, *, json_body: Any = None, idempotent: bool = False) -> GraphResponse:
        """POST."""
        ...

    async def patch(self, url: str, *, json_body: Any) -> GraphResponse:
        """PATCH."""
        ...

    async def put(self, url: str, *, json_body: Any) -> GraphResponse:
        """PUT."""
        ...

    async def delete(self, url: str) -> GraphResponse:
        """DELETE."""
        ...

    async def get_all(self, url: str, *, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """GET every page of a collection."""
        ...


def app_category_names(categories: Any) -> set[str]:
    """The names of the app categories in an app's ``categories`` (what a restore files it under)."""
    return {str(c["displayName"]) for c in categories or [] if isinstance(c, dict) and c.get("displayName")}


def _clean(value: Any) -> Any:
    """A sub-object without the ids and stamps the service assigns, nor annotations other than the type."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()
                if k not in _SUB_OBJECT_STAMPS and ("@odata." not in k or k == "@odata.type")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def create_body(policy_type: PolicyType, captured: Mapping[str, Any]) -> dict[str, Any]:
    """The captured object as Graph takes it on a create (read-only and separately written parts removed)."""
    strip = set(policy_type.all_strip_on_restore)
    return {k: v for k, v in captured.items()
            if k not in strip and ("@odata." not in k or k == "@odata.type")}


# Navigation properties written as ``@odata.bind`` references on a create: property -> collection.
_CREATE_BINDS = {"roleDefinition": "deviceManagement/roleDefinitions",
                 "roleScopeTags": "deviceManagement/roleScopeTags"}


def _binds(policy_type: PolicyType, captured: Mapping[str, Any]) -> dict[str, Any]:
    """``@odata.bind`` references for the navigation properties a create must name (role assignments)."""
    binds: dict[str, Any] = {}
    base = f"{_GRAPH}/{policy_type.api_version}"
    for prop, collection in _CREATE_BINDS.items():
        value = captured.get(prop)
        if isinstance(value, dict) and value.get("id"):
            binds[f"{prop}@odata.bind"] = f"{base}/{collection}('{value['id']}')"
        elif isinstance(value, list):
            binds[f"{prop}@odata.bind"] = [f"{base}/{collection}('{v['id']}')" for v in value
                                           if isinstance(v, dict) and v.get("id")]
    return binds


def unrestorable_properties(policy_type: PolicyType) -> frozenset[str]:
    """Top-level properties a restore cannot write: what it strips and writes through no other call.

    A difference there is Graph's to make (computed, read-only or tenant-bound values), so a plan ignores it.
    """
    written_otherwise = set(policy_type.child_writes) | set(_CREATE_BINDS)
    return frozenset(p for p in policy_type.strip_on_restore if p not in written_otherwise)


def update_body(policy_type: PolicyType, captured: Mapping[str, Any]) -> dict[str, Any]:
    """The captured object as Graph takes it on an update."""
    body = create_body(policy_type, captured)
    for key in policy_type.strip_on_update:
        body.pop(key, None)
    if policy_type.update_method == "PATCH":
        # A PATCH of the type discriminator is refused by some collections and changes nothing.
        body.pop("@odata.type", None)
    return body


def _definition_bind(definition_id: str) -> str:
    return f"{_GRAPH}/beta/deviceManagement/groupPolicyDefinitions('{definition_id}')"


def _definition_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """A captured GPO definition value as ``updateDefinitionValues`` adds it, bound to its definition."""
    definition = value.get("definition") or {}
    definition_id = str(definition.get("id", ""))
    presentations = []
    for presentation_value in value.get("presentationValues") or []:
        presentation = presentation_value.get("presentation") or {}
        body = {k: v for k, v in _clean(presentation_value).items() if k != "presentation"}
        body["presentation@odata.bind"] = (f"{_definition_bind(definition_id)}/presentations"
                                           f"('{presentation.get('id', '')}')")
        presentations.append(body)
    return {"enabled": bool(value.get("enabled", True)),
            "configurationType": value.get("configurationType", "policy"),
            "definition@odata.bind": _definition_bind(definition_id),
            "presentationValues": presentations}


ChildRequest = tuple[str, str, Any]  # (method, path relative to the item, body)


def _child_requests(path: str, value: Any, captured: Mapping[str, Any],
                    current: Mapping[str, Any] | None) -> list[ChildRequest]:
    """The calls that write one separately written part (``child_writes``) of an object.

    ``current`` is the target as it is now (``None`` right after a create): replacing a part that Graph
    keeps as a list of its own (GPO definition values, localized messages, policy set items) must remove
    what is there first.
    """
    if path == "scheduleActionsForRules":
        return [("POST", path, {"deviceComplianceScheduledActionForRules": _clean(value)})]
    if path == "setScheduledActions":
        return [("POST", path, {"scheduledActions": _clean(value)})]
    if path == "updateDefinitionValues":
        existing = [str(v["id"]) for v in (current or {}).get("definitionValues") or [] if "id" in v]
        return [("POST", path, {"added": [_definition_value(v) for v in value], "updated": [],
                                "deletedIds": existing})]
    if path == "updateSettings":
        return [("POST", path, {"settings": _clean(value)})]
    if path == "targetApps":
        body: dict[str, Any] = {"apps": _clean(value)}
        if "appGroupType" in captured:
            body["appGroupType"] = captured["appGroupType"]
        return [("POST", path, body)]
    if path == "setPriority":
        return [("POST", path, {"priority": value})] if isinstance(value, int) and value >= 1 else []
    if path == "updateAllowedCombinations":
        return [("POST", path, {"allowedCombinations": value})]
    if path == "localizedNotificationMessages":
        have = {str(m.get("locale", "")).lower(): m for m in (current or {}).get(path) or []}
        calls: list[ChildRequest] = []
        for message in value:
            body = {k: message[k] for k in ("locale", "subject", "messageTemplate", "isDefault")
                    if k in message}
            found = have.get(str(message.get("locale", "")).lower())
            if found is None:
                calls.append(("POST", path, body))
            else:
                calls.append(("PATCH", f"{path}/{found['id']}",
                              {k: v for k, v in body.items() if k != "locale"}))
        return calls
    if path in _APPLOCKER_FILES:
        # Files are posted one by one and have no natural key but what they hold.
        def identity(file: Mapping[str, Any]) -> tuple[Any, ...]:
            return tuple(file.get(k) for k in _APPLOCKER_FIELDS)

        present = {identity(f): f for f in (current or {}).get(path) or [] if isinstance(f, dict)}
        wanted = {identity(f) for f in value if isinstance(f, dict)}
        calls = [("POST", path, {k: f[k] for k in _APPLOCKER_FIELDS if k in f})
                 for f in value if isinstance(f, dict) and identity(f) not in present]
        calls += [("DELETE", f"{path}/{f['id']}", None) for key, f in present.items()
                  if key not in wanted and f.get("id")]
        return calls
    if path == "update":
        items = [str(i["id"]) for i in (current or {}).get("items") or [] if "id" in i]
        return [("POST", path, {"addedPolicySetItems": _clean(value), "updatedPolicySetItems": [],
                                "deletedPolicySetItems": items})]
    raise ValueError(f"no body builder for the child write {path!r}")


class PolicyWriter:
    """Creates, updates and assigns one tenant's policies through a Graph client that may write."""

    def __init__(self, client: GraphWriteApi, *, catalog: Mapping[str, PolicyType] = CATALOG,
                 on_write: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        """Create a writer.

        Args:
            client: the target tenant's Graph client (not read-only).
            catalog: the policy-type catalog.
            on_write: awaited before every write with ``(method, path)`` (a write budget).
        """
        self._client = client
        self._catalog = catalog
        self._on_write = on_write

    async def _write(self, method: str, url: str, body: Any, *, idempotent: bool = False) -> GraphResponse:
        if self._on_write is not None:
            await self._on_write(method, url)
        if method == "POST":
            return await self._client.post(url, json_body=body, idempotent=idempotent)
        if method == "PATCH":
            return await self._client.patch(url, json_body=body)
        if method == "DELETE":
            return await self._client.delete(url)
        return await self._client.put(url, json_body=body)

    async def create(self, type_key: str, captured: Mapping[str, Any]) -> str:
        """Create the object; then write its separately written parts. Returns the new id."""
        policy_type = self._catalog[type_key]
        odata_type = captured.get("@odata.type")
        body = create_body(policy_type, captured)
        if policy_type.create_path is not None:
            url = f"/{policy_type.api_version}/" + policy_type.create_path.format(
                templateId=captured.get("templateId", ""))
            if url.endswith("/createInstance"):
                # Intents are created from their template, with the backup's settings as the delta.
                body = {"displayName": captured.get("displayName", ""),
                        "description": captured.get("description", ""),
                        "roleScopeTagIds": captured.get("roleScopeTagIds") or ["0"],
                        "settingsDelta": _clean(captured.get("settings") or [])}
        else:
            url = "/" + policy_type.api_version + "/" + policy_type.item_collection(
                odata_type if isinstance(odata_type, str) else None)
        body.update(_binds(policy_type, captured))
        answer = await self._write("POST", url, body)
        new_id = answer.json().get("id")
        if not isinstance(new_id, str) or not new_id:
            raise ValueError(f"{type_key}: the create answer carried no id")
        sent = set(body)
        item_url = policy_type.item_url(new_id, odata_type if isinstance(odata_type, str) else None)
        if not url.endswith("/createInstance"):
            await self._children(policy_type, item_url, captured, current=None, sent=sent)
        return new_id

    async def update(self, type_key: str, target_id: str, captured: Mapping[str, Any],
                     current: Mapping[str, Any]) -> None:
        """Bring the target to the captured state (``PATCH``/``PUT``, then the separately written parts)."""
        policy_type = self._catalog[type_key]
        odata_type = captured.get("@odata.type")
        kind = odata_type if isinstance(odata_type, str) else None
        item_url = policy_type.item_url(target_id, kind)
        body = update_body(policy_type, captured)
        if policy_type.create_path is not None and "createInstance" in policy_type.create_path:
            body = {k: body[k] for k in ("displayName", "description", "roleScopeTagIds") if k in body}
        # Tenant-wide settings are written through their parent, nested under their property.
        await self._write(policy_type.update_method, policy_type.update_url(target_id, kind),
                          policy_type.update_body(body))
        await self._children(policy_type, item_url, captured, current=current, sent=set(body))

    async def _children(self, policy_type: PolicyType, item_url: str, captured: Mapping[str, Any], *,
                        current: Mapping[str, Any] | None, sent: set[str]) -> None:
        for prop, path in policy_type.child_writes.items():
            if prop in sent or prop not in captured:
                continue
            if path == _CATEGORY_REFS:
                await self._categories(item_url, captured[prop], current)
                continue
            for method, relative, body in _child_requests(path, captured[prop], captured, current):
                # Actions replace what they write, so a repeat is harmless; a POST to a collection adds
                # one more, so it is repeated only when Graph did not process it (429, 503). Any other
                # failure fails the item, whose next attempt reads what is there first.
                await self._write(method, f"{item_url}/{relative}", body,
                                  idempotent=not (method == "POST" and relative in _COLLECTION_POSTS))

    async def _categories(self, item_url: str, captured: Any, current: Mapping[str, Any] | None) -> None:
        """File an app under the categories it had, and only those, matched by display name.

        An app's categories are references (``categories/$ref``), and a category's id is the tenant's own:
        in another tenant, or once a deleted category was restored anew, the backup's ids name nothing. A
        category the tenant does not have is left out (a whole-set restore writes categories first).
        """
        wanted = app_category_names(captured)
        filed = {str(c["displayName"]): str(c["id"]) for c in (current or {}).get("categories") or []
                 if isinstance(c, dict) and c.get("displayName") and c.get("id")}
        if wanted == set(filed):
            return
        if wanted - set(filed):
            tenant = {str(c["displayName"]): str(c["id"])
                      for c in await self._client.get_all(f"/beta/{_APP_CATEGORIES}")
                      if c.get("displayName") and c.get("id")}
            missing = wanted - set(filed) - set(tenant)
            if missing:
                logger.warning("app categories not in the tenant, left out count=%d", len(missing))
            for name in sorted(wanted - set(filed) - missing):
                # Not repeated blindly: a reference that got through is refused the second time.
                await self._write("POST", f"{item_url}/{_CATEGORY_REFS}",
                                  {"@odata.id": f"{_GRAPH}/beta/{_APP_CATEGORIES}/{tenant[name]}"})
        for name in sorted(set(filed) - wanted):
            await self._write("DELETE", f"{item_url}/categories/{filed[name]}/$ref", None)

    async def assign(self, type_key: str, target_id: str, odata_type: str | None,
                     assignments: list[dict[str, Any]], *,
                     current: list[dict[str, Any]] | None = None) -> None:
        """Write the assignment set (``assign`` replaces it; one-per-request types add what is missing)."""
        policy_type = self._catalog[type_key]
        spec = policy_type.assignments
        if spec is None:
            return
        item_url = policy_type.item_url(target_id, odata_type)
        if spec.one_per_request:
            have = {_target_key(a) for a in current or []}
            for assignment in assignments:
                if _target_key(assignment) not in have:
                    await self._write("POST", f"{item_url}/{spec.write_path}",
                                      {"target": assignment["target"]})
            return
        if spec.write_path == "update":
            await self._write("POST", f"{item_url}/update", {"assignments": assignments}, idempotent=True)
            return
        await self._write("POST", f"{item_url}/{spec.write_path}", {spec.body_key: assignments},
                          idempotent=True)


def _target_key(assignment: Mapping[str, Any]) -> tuple[Any, ...]:
    target = assignment.get("target") or {}
    return (target.get("@odata.type"), target.get("groupId"),
            target.get("deviceAndAppManagementAssignmentFilterId"))
