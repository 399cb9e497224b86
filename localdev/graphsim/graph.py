"""Graph routing and handlers for the Intune subset and Entra groups.

Requests arrive already authenticated (see ``server.py``); this module resolves the route (version
gating, unknown segments), and then reads or writes the tenant's objects with Graph's semantics.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from localdev.graphsim.catalog import (
    BY_PATH,
    COLLECTIONS,
    ROOTS,
    SERVER_FIELDS,
    SINGLETON_KEY,
    CollectionSpec,
)
from localdev.graphsim.odata import (
    GraphError,
    decode_skiptoken,
    encode_skiptoken,
    new_id,
    now_iso,
    parse_expand,
    parse_filter,
    select_fields,
)
from localdev.graphsim.state import SimState, Tenant

__all__ = ["GraphRequest", "GraphResponse", "GraphRouter", "Resolved"]

Item = dict[str, Any]
SETTINGS_PAGE = 25
TARGET_TYPES = frozenset({
    "#microsoft.graph.groupAssignmentTarget", "#microsoft.graph.exclusionGroupAssignmentTarget",
    "#microsoft.graph.allLicensedUsersAssignmentTarget", "#microsoft.graph.allDevicesAssignmentTarget",
    "#microsoft.graph.configurationManagerCollectionAssignmentTarget",
})
DEFAULT_ENROLLMENT_TYPES = frozenset({
    "#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration",
})
_KEY_SEGMENT = re.compile(r"^([\w.$]+)\('([^'=]*)'\)$")
_BIND_DEF = re.compile(r"groupPolicyDefinitions\('([^']+)'\)")
_BIND_PRES = re.compile(r"presentations\('([^']+)'\)")
# Roots below which collections live, with the depth of their collection segment.
_SINGLETONS = {"deviceManagement": 2, "deviceAppManagement": 2, "policies": 2, "identity": 3}
_SCRIPT_ASSIGNMENT_TYPES = {
    "deviceManagementScripts": "deviceManagementScriptAssignment",
    "deviceShellScripts": "deviceManagementScriptAssignment",
    "deviceCustomAttributeShellScripts": "deviceManagementScriptAssignment",
    "deviceHealthScripts": "deviceHealthScriptAssignment",
    "deviceComplianceScripts": "deviceHealthScriptAssignment",
}
# Intune objects that carry no roleScopeTagIds of their own.
_UNTAGGED = frozenset({"roleScopeTags", "deviceCategories", "assignmentFilters", "roleAssignments",
                       "deviceManagementPartners", "remoteAssistancePartners",
                       "reusablePolicySettings", "policySets", "mobileAppCategories",
                       "managedDeviceCleanupRules"})
# Collections whose create stamps more server state (``init_<name>`` methods).
_NEWER_TYPES_INIT = frozenset({"mobileApps", "mobileAppConfigurations", "managedDeviceCleanupRules",
                               "windowsInformationProtectionPolicies",
                               "mdmWindowsInformationProtectionPolicies",
                               "appleUserInitiatedEnrollmentProfiles"})
_OMA_FN = re.compile(r"^getOmaSettingPlainTextValue\(secretReferenceValueId='([^']*)'\)$")


@dataclass
class GraphRequest:
    """One Graph call after authentication (also one `$batch` item)."""

    method: str
    version: str
    path: str
    query: Mapping[str, str]
    body: Any
    tenant: Tenant
    base_url: str


@dataclass
class GraphResponse:
    """A handler's answer: status, JSON body (or ``None``) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Resolved:
    """A request matched to a collection; ``rest`` are the segments after the collection."""

    spec: CollectionSpec
    rest: list[str]
    write: bool


def split_path(path: str) -> list[str]:
    """Path segments with ``name('key')`` turned into ``name``, ``key``."""
    segments: list[str] = []
    for raw in path.strip("/").split("/"):
        if not raw:
            continue
        m = _KEY_SEGMENT.match(raw)
        if m:
            segments.extend([m.group(1), m.group(2)])
        else:
            segments.append(raw)
    return segments


def resolve(method: str, version: str, path: str) -> Resolved:
    """Match a path to a collection, applying Graph's version gating.

    Raises:
        GraphError: 400 for an unknown segment or a beta-only collection under ``/v1.0``.
    """
    segments = split_path(path)
    if not segments:
        raise GraphError(400, "BadRequest", "Invalid request.")
    # The longest known collection path wins: groups, deviceManagement/x, identity/conditionalAccess/x.
    for depth in (3, 2, 1):
        found = BY_PATH.get("/".join(segments[:depth])) if len(segments) >= depth else None
        if found is not None:
            spec, rest = found, segments[depth:]
            name = spec.segment or spec.name
            break
    else:
        if segments == ["deviceManagement"] and method.upper() in ("GET", "PATCH"):
            return Resolved(spec=ROOTS["deviceManagement"], rest=[], write=method.upper() != "GET")
        if segments[0] in _SINGLETONS and len(segments) < _SINGLETONS[segments[0]]:
            raise GraphError(400, "BadRequest", "The singleton is not supported by the simulator.")
        unknown = segments[min(_SINGLETONS.get(segments[0], 1), len(segments)) - 1]
        if segments[0] not in _SINGLETONS:
            unknown = segments[0]
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{unknown}'.")
    if version not in spec.versions:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{name}'.")
    # Reads that happen to be functions stay reads; every other non-GET is a write.
    return Resolved(spec=spec, rest=rest, write=method.upper() != "GET")


# The app category an ``@odata.id`` names: ``.../mobileAppCategories/{id}`` or ``...Categories('{id}')``.
_CATEGORY_REF = re.compile(r"/deviceAppManagement/mobileAppCategories(?:/|\(')(?P<id>[^/'()]+)'?\)?$")


def _clean(obj: Item) -> Item:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _require_dict(body: Any) -> Item:
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    return body


def _selection(select: list[str]) -> str:
    """The ``$select`` part of a context URL: OData names the selected properties after the entity set."""
    return f"({','.join(select)})" if select else ""


def _coll_of_type(odata_type: str) -> str:
    return odata_type.removeprefix("#microsoft.graph.") + "s"


class GraphRouter:
    """Executes resolved Graph requests against :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # ----------------------------------------------------------------------------- helpers
    @staticmethod
    def ctx(req: GraphRequest, fragment: str) -> str:
        """An absolute ``@odata.context`` URL on the public base."""
        return f"{req.base_url}/{req.version}/$metadata#{fragment}"

    @staticmethod
    def not_found(spec: CollectionSpec, obj_id: str) -> GraphError:
        """Graph's 404 for a missing object (Entra and Intune word it differently)."""
        if spec.name == "groups":
            return GraphError(404, "Request_ResourceNotFound",
                              f"Resource '{obj_id}' does not exist or one of its queried "
                              "reference-property objects are not present.")
        return GraphError(404, "ResourceNotFound", f"Resource not found: {spec.name}('{obj_id}')",
                          nested=True)

    def get_obj(self, req: GraphRequest, spec: CollectionSpec, obj_id: str) -> Item:
        """An object of the tenant or a 404."""
        obj = req.tenant.find(spec.name, obj_id)
        if obj is None:
            raise self.not_found(spec, obj_id)
        return obj

    def touch(self, spec: CollectionSpec, obj: Item) -> None:
        """Bump ``lastModifiedDateTime`` and ``version`` as an update does."""
        if "lastModifiedDateTime" in obj or spec.intune:
            obj["lastModifiedDateTime"] = now_iso()
        if "modifiedDateTime" in obj:
            obj["modifiedDateTime"] = now_iso()
        if spec.version_kind == "int":
            obj["version"] = int(obj.get("version") or 0) + 1
        elif spec.version_kind == "str":
            obj["version"] = f'"{int(str(obj.get("version") or "0").strip(chr(34)) or 0) + 1}"'
        self.state.mark_dirty()

    def page(self, req: GraphRequest, items: list[Any], context: str,
             render: Callable[[Any], Item], *, page_size: int, max_top: int,
             count: bool = False) -> GraphResponse:
        """One page of a collection with an absolute ``@odata.nextLink`` (opaque skiptoken)."""
        top = page_size
        if "$top" in req.query:
            try:
                top = int(req.query["$top"])
            except ValueError as exc:
                raise GraphError(400, "BadRequest", "Invalid value for $top.") from exc
            if top <= 0:
                raise GraphError(400, "BadRequest", "The value of $top must be positive.")
            top = min(top, max_top)
        offset = 0
        if "$skiptoken" in req.query:
            offset = decode_skiptoken(req.query["$skiptoken"])
        elif "$skip" in req.query:
            try:
                offset = max(int(req.query["$skip"]), 0)
            except ValueError as exc:
                raise GraphError(400, "BadRequest", "Invalid value for $skip.") from exc
        body: Item = {"@odata.context": context}
        if count or req.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(items)
        end = offset + top
        if end < len(items):
            params = {k: v for k, v in req.query.items() if k not in ("$skiptoken", "$skip")}
            params["$skiptoken"] = encode_skiptoken(end)
            body["@odata.nextLink"] = (f"{req.base_url}/{req.version}/{req.path.strip('/')}?"
                                       + urlencode(params, quote_via=quote, safe="$,()'"))
        body["value"] = [render(i) for i in items[offset:end]]
        return GraphResponse(200, body)

    def render(self, req: GraphRequest, spec: CollectionSpec, obj: Item, *,
               expand: dict[str, dict[str, str]], in_list: bool) -> Item:
        """An object as Graph returns it: no hidden navigations unless expanded."""
        if spec.name == "managedAppPolicies":
            spec = COLLECTIONS.get(_coll_of_type(obj.get("@odata.type", "")), spec)
        # Stored objects keep private bookkeeping only on nested values, so a shallow copy minus
        # the navigation properties is the wire shape (and cheap on large pages).
        out = dict(obj)
        for nav in spec.nav:
            out.pop(nav, None)
        if in_list:
            for key in spec.list_nulls:
                if key in out:
                    out[key] = None
        parent = f"{spec.path}('{obj.get('id')}')"
        for nav, options in expand.items():
            suffix = "/$entity" if nav in spec.single_nav else ""
            out[f"{nav}@odata.context"] = self.ctx(req, f"{parent}/{nav}{suffix}")
            out[nav] = self.expand_nav(req, spec, obj, nav, options)
        return out

    def expand_nav(self, req: GraphRequest, spec: CollectionSpec, obj: Item, nav: str,
                   options: dict[str, str]) -> Any:
        """The value of an expanded navigation property (an object for single-valued ones)."""
        if nav not in spec.nav:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{nav}' on type "
                             f"'{spec.base_type.lstrip('#')}'.")
        if spec.name == "roleAssignments":
            select = [s.strip() for s in options.get("$select", "").split(",") if s.strip()]
            if nav == "roleDefinition":
                found = req.tenant.find("roleDefinitions", (obj.get(nav) or {}).get("id", ""))
                return select_fields(_clean(found), select, keep_id=True) if found else None
            tags = [req.tenant.find("roleScopeTags", t.get("id", "")) for t in obj.get(nav, [])]
            return [select_fields({k: v for k, v in t.items() if k != "assignments"}, select,
                                  keep_id=True) for t in tags if t is not None]
        if nav == "assignments" and spec.name == "roleScopeTags":
            return []  # Graph answers an empty list here; /assignments is the real read
        if nav == "scheduledActionsForRule":
            inner = parse_expand(options.get("$expand"))
            rules = []
            for rule in obj.get(nav, []):
                r = {k: v for k, v in rule.items() if k != "scheduledActionConfigurations"}
                if "scheduledActionConfigurations" in inner:
                    r["scheduledActionConfigurations@odata.context"] = self.ctx(
                        req, f"{spec.path}('{obj['id']}')/scheduledActionsForRule('{rule['id']}')"
                             "/scheduledActionConfigurations")
                    r["scheduledActionConfigurations"] = rule.get(
                        "scheduledActionConfigurations", [])
                rules.append(r)
            return rules
        if nav == "categories" and spec.name == "mobileApps":
            # References: what each category is now, and nothing of one deleted since.
            found = [req.tenant.find("mobileAppCategories", str(c.get("id", ""))) for c in obj.get(nav, [])]
            return [_clean(c) for c in found if c is not None]
        if nav == "categories" and spec.name == "intents":
            template = req.tenant.find("templates", obj.get("templateId", ""))
            return [_clean(c) for c in (template or {}).get("categories", [])]
        if nav == "definitionValues":
            return [self.render_definition_value(req, dv, {}) for dv in obj.get(nav, [])]
        return [_clean(v) for v in obj.get(nav, [])]

    # ----------------------------------------------------------------------------- dispatch
    def dispatch(self, req: GraphRequest, resolved: Resolved) -> GraphResponse:
        """Run a resolved request.

        Raises:
            GraphError: For every Graph-style failure (4xx).
        """
        spec, rest, method = resolved.spec, resolved.rest, req.method.upper()
        if spec.singleton:
            return self.singleton(req, spec, rest, method)
        if not rest:
            if method == "GET":
                return self.list_collection(req, spec)
            if method == "POST":
                return self.create(req, spec, _require_dict(req.body))
            raise self.method_not_allowed()
        obj_id = rest[0]
        if spec.name == "templates" and len(rest) == 2 and rest[1] == "createInstance":
            if method != "POST":
                raise self.method_not_allowed()
            return self.create_instance(req, obj_id)
        obj = self.get_obj(req, spec, obj_id)
        if len(rest) == 1:
            if method == "GET":
                return self.get_item(req, spec, obj)
            if method == "PATCH":
                return self.update(req, spec, obj, _require_dict(req.body))
            if method == "PUT":
                return self.replace(req, spec, obj, _require_dict(req.body))
            if method == "DELETE":
                return self.delete(req, spec, obj)
            raise self.method_not_allowed()
        return self.sub_resource(req, spec, obj, rest[1:], method)

    @staticmethod
    def method_not_allowed() -> GraphError:
        """Graph's answer to a verb a resource does not support."""
        return GraphError(405, "BadRequest", "No HTTP resource was found that matches the request "
                          "URI and method.")

    # ----------------------------------------------------------------------------- reads
    def list_collection(self, req: GraphRequest, spec: CollectionSpec) -> GraphResponse:
        """GET on a collection: ``$filter``, ``$select``, ``$expand``, ``$top``, paging."""
        items = req.tenant.items(spec.name)
        if "$filter" in req.query:
            if not spec.filterable:
                raise GraphError(400, "BadRequest", "Filtering is not supported on "
                                 f"'{spec.name}'.", nested=True)
            predicate = parse_filter(req.query["$filter"])
            if predicate is not None:
                items = [o for o in items if predicate(o)]
        expand = parse_expand(req.query.get("$expand"))
        select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]

        def render(obj: Item) -> Item:
            return select_fields(self.render(req, spec, obj, expand=expand, in_list=True), select,
                                 keep_id=spec.intune, expanded=expand)

        return self.page(req, items, self.ctx(req, spec.path + _selection(select)), render,
                         page_size=spec.page_size, max_top=spec.max_top,
                         count=spec.name == "configurationPolicies")

    def get_item(self, req: GraphRequest, spec: CollectionSpec, obj: Item) -> GraphResponse:
        """GET on one object."""
        expand = parse_expand(req.query.get("$expand"))
        select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
        body = {"@odata.context": self.ctx(req, f"{spec.path}{_selection(select)}/$entity")}
        body.update(select_fields(self.render(req, spec, obj, expand=expand, in_list=False),
                                  select, keep_id=spec.intune, expanded=expand))
        return GraphResponse(200, body)

    def nav_list(self, req: GraphRequest, spec: CollectionSpec, obj: Item, nav: str,
                 items: list[Item], *, page_size: int = 1000, max_top: int = 1000,
                 render: Callable[[Item], Item] = _clean, count: bool = False) -> GraphResponse:
        """A navigation collection with the parent id in its ``@odata.context``."""
        context = self.ctx(req, f"{spec.path}('{obj['id']}')/{nav}")
        return self.page(req, items, context, render, page_size=page_size, max_top=max_top,
                         count=count)

    # ----------------------------------------------------------------------------- writes
    def check_write(self, spec: CollectionSpec, body: Item, *, update: bool) -> Item:
        """Validate a write body and drop read-only annotations copied from a read.

        Raises:
            GraphError: 400 for read-only properties (strict mode), undeclared deep inserts,
                ``supportsScopeTags: true`` on create, or a missing ``@odata.type``.
        """
        clean = {k: v for k, v in body.items()
                 if "@odata." not in k or k == "@odata.type" or k.endswith("@odata.bind")}
        nested = spec.intune
        if self.state.strict:
            readonly = SERVER_FIELDS | spec.readonly | (spec.readonly_on_update if update
                                                        else frozenset())
            for key in clean:
                if key in readonly:
                    raise GraphError(400, "BadRequest", f"The property '{key}' is read-only and "
                                     "cannot be set in a create or update request.", nested=nested)
                if key in spec.nav and (update or key not in spec.deep_insert):
                    raise GraphError(400, "BadRequest", f"Navigation property '{key}' cannot be "
                                     "written with this request.", nested=nested)
            if not update and clean.get("supportsScopeTags") is True:
                raise GraphError(400, "BadRequest", "supportsScopeTags cannot be true in a "
                                 "create request.", nested=True)
        odata_type = clean.get("@odata.type")
        if not update:
            if spec.polymorphic and not odata_type:
                raise GraphError(400, "BadRequest", "Cannot create an abstract class. Specify "
                                 "'@odata.type' for the derived type.", nested=nested)
            if not spec.polymorphic and odata_type and odata_type != spec.base_type:
                raise GraphError(400, "BadRequest", f"Type '{odata_type}' does not derive from "
                                 f"'{spec.base_type.lstrip('#')}'.", nested=nested)
        return clean

    def stamp_new(self, req: GraphRequest, spec: CollectionSpec, obj: Item) -> Item:
        """Fill the server-assigned fields of a new object."""
        stamp = now_iso()
        if spec.name == "roleScopeTags":
            obj_id = str(req.tenant.next_scope_tag)
            req.tenant.next_scope_tag += 1
        else:
            obj_id = new_id()
        out: Item = {"@odata.type": obj.pop("@odata.type", spec.base_type), "id": obj_id}
        if spec.intune:
            out["createdDateTime"] = stamp
            out["lastModifiedDateTime"] = stamp
            if spec.name not in _UNTAGGED:
                out["roleScopeTagIds"] = obj.pop("roleScopeTagIds", None) or ["0"]
        elif spec.root:
            # Entra policy objects stamp creation and modification (``modifiedDateTime``).
            out["createdDateTime"] = stamp
            out["modifiedDateTime"] = stamp
        else:
            out["createdDateTime"] = stamp
        if spec.version_kind == "int":
            out["version"] = 1
        elif spec.version_kind == "str":
            out["version"] = '"1"'
        out.update(obj)
        return out

    def create(self, req: GraphRequest, spec: CollectionSpec, body: Item) -> GraphResponse:
        """POST to a collection (201 with the stored object)."""
        if not spec.creatable:
            if spec.name == "intents":
                raise GraphError(400, "BadRequest", "Intents can only be created from a template "
                                 "with createInstance.", nested=True)
            raise self.method_not_allowed()
        body = self.check_write(spec, body, update=False)
        validator = getattr(self, f"validate_{spec.name}", None)
        if validator is not None:
            validator(body)
        obj = self.stamp_new(req, spec, dict(body))
        if spec.name == "configurationPolicies":
            settings = obj.get("settings") or []
            obj["settings"] = [self._setting(s, i) for i, s in enumerate(settings)]
            obj["settingCount"] = len(obj["settings"])
            obj.setdefault("isAssigned", False)
            obj.setdefault("creationSource", None)
        if spec.name == "compliancePolicies":
            obj["settings"] = [self._setting(s, i) for i, s in enumerate(obj.get("settings") or [])]
            obj["settingCount"] = len(obj["settings"])
            obj.setdefault("isAssigned", False)
            obj.setdefault("creationSource", None)
        if spec.name in ("deviceCompliancePolicies", "compliancePolicies"):
            obj["scheduledActionsForRule"] = self._rules(obj.get("scheduledActionsForRule") or [])
        self._init_new(req, spec, obj)
        if spec.name == "deviceEnrollmentConfigurations":
            priorities = [o.get("priority", 0) for o in req.tenant.items(spec.name)]
            obj["priority"] = max(priorities, default=0) + 1
        if spec.name == "groupPolicyConfigurations":
            obj.setdefault("policyConfigurationIngestionType", "builtIn")
            obj["definitionValues"] = []
        if spec.nav & {"apps"}:
            obj["apps"] = [dict(a, id=a.get("id") or new_id()) for a in obj.get("apps") or []]
        if "assignments" in spec.nav:
            obj["assignments"] = []
        if spec.name == "notificationMessageTemplates":
            obj["localizedNotificationMessages"] = []
        if spec.name == "roleScopeTags":
            obj["isBuiltIn"] = False
        if spec.name == "deviceConfigurations":
            self._protect_oma_secrets(req, obj)
        req.tenant.coll(spec.name)[obj["id"]] = obj
        self.state.mark_dirty()
        body_out = {"@odata.context": self.ctx(req, f"{spec.path}/$entity")}
        body_out.update(self.render(req, spec, obj, expand={}, in_list=False))
        return GraphResponse(201, body_out)

    def _init_new(self, req: GraphRequest, spec: CollectionSpec, obj: Item) -> None:
        """Server-side state of the newer collections' objects at create."""
        name = spec.name
        if name == "roleDefinitions":
            obj["isBuiltIn"] = False
            obj["isBuiltInRoleDefinition"] = False
        elif name == "roleAssignments":
            definition = self._bound(req, "roleDefinitions", obj.pop("roleDefinition@odata.bind", None))
            if definition is None:
                raise GraphError(400, "BadRequest", "roleDefinition@odata.bind must reference an "
                                 "existing role definition.", nested=True)
            obj["roleDefinition"] = {"id": definition["id"]}
            tags = []
            for bind in obj.pop("roleScopeTags@odata.bind", None) or []:
                tag = self._bound(req, "roleScopeTags", bind)
                if tag is None:
                    raise GraphError(400, "BadRequest", "roleScopeTags@odata.bind must reference "
                                     "existing scope tags.", nested=True)
                tags.append({"id": tag["id"]})
            obj["roleScopeTags"] = tags or [{"id": "0"}]
        elif name == "termsAndConditions":
            obj.setdefault("version", 1)
            obj["acceptanceStatuses"] = []
        elif name == "intuneBrandingProfiles":
            obj["isDefaultProfile"] = False
        elif name == "windowsDriverUpdateProfiles":
            obj["driverInventories"] = []
            obj.update({"deviceReporting": 0, "newUpdates": 0, "inventorySyncStatus": None})
        elif name == "policySets":
            stamp = now_iso()
            obj["items"] = [dict({k: v for k, v in item.items() if "@odata.context" not in k},
                                 id=new_id(), status="notAssigned", errorCode="noError",
                                 createdDateTime=stamp, lastModifiedDateTime=stamp)
                            for item in obj.get("items") or [] if isinstance(item, dict)]
            obj.setdefault("status", "notAssigned")
            obj.setdefault("errorCode", "noError")
        elif name == "reusablePolicySettings":
            obj["referencingConfigurationPolicyCount"] = 0
            obj["referencingConfigurationPolicies"] = []
            obj.setdefault("version", 1)
        elif name in _NEWER_TYPES_INIT:
            getattr(self, f"init_{name}")(req, obj)
        elif name == "authenticationStrengthPolicies":
            obj["policyType"] = "custom"
            obj["requirementsSatisfied"] = "mfa"
            obj["combinationConfigurations"] = []

    @staticmethod
    def _bound(req: GraphRequest, collection: str, bind: Any) -> Item | None:
        """The object an ``@odata.bind`` URL names (``…/collection('id')`` or ``…/collection/id``)."""
        if not isinstance(bind, str):
            return None
        m = re.search(rf"{collection}(?:\('([^']+)'\)|/([^/?]+))", bind)
        if not m:
            return None
        return req.tenant.find(collection, m.group(1) or m.group(2))

    @staticmethod
    def _protect_oma_secrets(req: GraphRequest, obj: Item) -> None:
        """Keep encrypted OMA values server-side and return them masked, as Intune does."""
        settings = obj.get("omaSettings")
        if not isinstance(settings, list):
            return
        secrets = req.tenant.coll("_omaSecrets")
        for setting in settings:
            if not isinstance(setting, dict) or not setting.get("isEncrypted"):
                continue
            if setting.get("value") in (None, "****"):
                continue
            ref = new_id()
            secrets[ref] = {"id": ref, "value": setting["value"]}
            setting["value"] = "****"
            setting["secretReferenceValueId"] = ref

    @staticmethod
    def _setting(setting: Item, index: int) -> Item:
        out = {k: v for k, v in setting.items() if "@odata.context" not in k}
        out["id"] = str(index)
        out.setdefault("@odata.type", "#microsoft.graph.deviceManagementConfigurationSetting")
        return out

    @staticmethod
    def _rules(rules: list[Item]) -> list[Item]:
        out = []
        for rule in rules:
            r = {k: v for k, v in rule.items() if "@odata.context" not in k}
            r["id"] = new_id()
            r["scheduledActionConfigurations"] = [
                dict({k: v for k, v in c.items() if "@odata.context" not in k}, id=new_id())
                for c in rule.get("scheduledActionConfigurations") or []]
            out.append(r)
        return out

    @staticmethod
    def _check_block_action(rules: Any) -> None:
        blocks = 0
        for rule in rules if isinstance(rules, list) else []:
            actions = rule.get("scheduledActionConfigurations") if isinstance(rule, dict) else None
            if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
                raise GraphError(400, "BadRequest", "Each scheduled action rule needs a list of "
                                 "scheduledActionConfigurations.", nested=True)
            blocks += sum(a.get("actionType") == "block" for a in actions)
        if blocks != 1:
            raise GraphError(400, "BadRequest", "Compliance policy must have one and only one "
                             "block scheduled action", nested=True)

    def validate_deviceCompliancePolicies(self, body: Item) -> None:
        """Classic compliance needs exactly one block action at create."""
        self._check_block_action(body.get("scheduledActionsForRule"))

    def validate_configurationPolicies(self, body: Item) -> None:
        """Settings catalog policies need a name and technologies."""
        if not body.get("name") or not body.get("technologies"):
            raise GraphError(400, "BadRequest", "Policy name and technologies are required.",
                             nested=True)

    def validate_compliancePolicies(self, body: Item) -> None:
        """Settings catalog compliance policies need a name, platforms and technologies."""
        if not body.get("name") or not body.get("platforms") or not body.get("technologies"):
            raise GraphError(400, "BadRequest", "Policy name, platforms and technologies are "
                             "required.", nested=True)

    def validate_conditionalAccessPolicies(self, body: Item) -> None:
        """Entra requires a display name, a state and conditions."""
        if not body.get("displayName") or not isinstance(body.get("conditions"), dict):
            raise GraphError(400, "BadRequest", "displayName and conditions are required.")
        if body.get("state") not in ("enabled", "disabled", "enabledForReportingButNotEnforced"):
            raise GraphError(400, "BadRequest", "state must be enabled, disabled or "
                             "enabledForReportingButNotEnforced.")

    def validate_authenticationStrengthPolicies(self, body: Item) -> None:
        """A custom strength needs a name and at least one allowed combination."""
        combos = body.get("allowedCombinations")
        if not body.get("displayName") or not isinstance(combos, list) or not combos:
            raise GraphError(400, "BadRequest", "displayName and allowedCombinations are required.")

    def validate_deviceEnrollmentConfigurations(self, body: Item) -> None:
        """The default platform restrictions exist once per tenant and cannot be created."""
        if body.get("@odata.type") in DEFAULT_ENROLLMENT_TYPES:
            raise GraphError(400, "BadRequest", "A default enrollment configuration of this type "
                             "already exists and cannot be created.", nested=True)

    def validate_groups(self, body: Item) -> None:
        """Entra requires a display name and a mail nickname."""
        for key in ("displayName", "mailNickname"):
            if not body.get(key):
                raise GraphError(400, "Request_BadRequest",
                                 f"Invalid value specified for property '{key}' of resource "
                                 "'Group'.")

    def validate_iosManagedAppProtections(self, body: Item) -> None:
        """MAM type collections only accept their own type."""
        self._mam_type(body, "#microsoft.graph.iosManagedAppProtection")

    def validate_androidManagedAppProtections(self, body: Item) -> None:
        """MAM type collections only accept their own type."""
        self._mam_type(body, "#microsoft.graph.androidManagedAppProtection")

    @staticmethod
    def _mam_type(body: Item, wanted: str) -> None:
        if body.get("@odata.type", wanted) != wanted:
            raise GraphError(400, "BadRequest", f"Expected '{wanted}'.", nested=True)

    def _guard_builtin(self, spec: CollectionSpec, obj: Item, verb: str) -> None:
        if spec.name == "roleScopeTags" and (obj.get("isBuiltIn") or obj["id"] == "0"):
            raise GraphError(400, "BadRequest", f"Built-in scope tag cannot be {verb}.",
                             nested=True)
        if spec.name == "deviceEnrollmentConfigurations" and obj.get("priority", 0) == 0 \
                and verb == "deleted":
            raise GraphError(400, "BadRequest", "Default enrollment configurations cannot be "
                             "deleted.", nested=True)
        if spec.name == "deviceHealthScripts" and obj.get("isGlobalScript") and verb != "read":
            raise GraphError(403, "Forbidden", "Global scripts cannot be modified.", nested=True)
        if spec.name == "roleDefinitions" and obj.get("isBuiltIn"):
            raise GraphError(400, "BadRequest", f"Built-in role definitions cannot be {verb}.",
                             nested=True)
        if spec.name == "intuneBrandingProfiles" and obj.get("isDefaultProfile") \
                and verb in ("deleted", "assigned"):
            raise GraphError(400, "BadRequest", f"The default branding profile cannot be {verb}.",
                             nested=True)
        if spec.name == "authenticationStrengthPolicies" and obj.get("policyType") == "builtIn":
            raise GraphError(400, "BadRequest", f"Built-in authentication strengths cannot be "
                             f"{verb}.")

    def update(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
               body: Item) -> GraphResponse:
        """PATCH: merge the body, bump modified time and version (204)."""
        self._guard_builtin(spec, obj, "modified")
        body = self.check_write(spec, body, update=True)
        if "@odata.type" in body and body["@odata.type"] != obj.get("@odata.type"):
            raise GraphError(400, "BadRequest", "The @odata.type of an object cannot change.",
                             nested=spec.intune)
        body.pop("@odata.type", None)
        if spec.name == "deviceConfigurations":
            self._protect_oma_secrets(req, body)
        if spec.name == "groups":
            body = {k: v for k, v in body.items() if not k.endswith("@odata.bind")}
        obj.update(body)
        self.touch(spec, obj)
        return GraphResponse(204)

    def replace(self, _req: GraphRequest, spec: CollectionSpec, obj: Item,
                body: Item) -> GraphResponse:
        """PUT: replace the whole settings catalog policy, settings included (204)."""
        if not spec.put_allowed:
            raise self.method_not_allowed()
        body = self.check_write(spec, body, update=False)
        getattr(self, f"validate_{spec.name}")(body)
        # Scheduled actions change only through setScheduledActions, so PUT keeps them.
        keep: Item = {k: obj[k] for k in ("@odata.type", "id", "createdDateTime", "assignments",
                                    "isAssigned", "creationSource", "scheduledActionsForRule")
                      if k in obj}
        settings = [self._setting(s, i) for i, s in enumerate(body.pop("settings", None) or [])]
        obj.clear()
        obj.update(keep)
        obj.update(body)
        obj["settings"] = settings
        obj["settingCount"] = len(settings)
        obj.setdefault("roleScopeTagIds", ["0"])
        self.touch(spec, obj)
        return GraphResponse(204)

    def delete(self, req: GraphRequest, spec: CollectionSpec, obj: Item) -> GraphResponse:
        """DELETE one object (204)."""
        self._guard_builtin(spec, obj, "deleted")
        if spec.name == "windowsAutopilotDeploymentProfiles" and obj.get("assignments"):
            # Intune refuses to delete an assigned profile; tools delete its assignments first.
            raise GraphError(400, "BadRequest", "The profile is assigned. Remove its assignments "
                             "before deleting it.", nested=True)
        if spec.name == "managedAppPolicies":
            spec = COLLECTIONS[_coll_of_type(obj["@odata.type"])]
        del req.tenant.coll(spec.name)[obj["id"]]
        self.state.mark_dirty()
        return GraphResponse(204)

    # ----------------------------------------------------------------------------- sub-resources
    def sub_resource(self, req: GraphRequest, spec: CollectionSpec, obj: Item, rest: list[str],
                     method: str) -> GraphResponse:
        """Navigations and actions below an object."""
        head = rest[0]
        if head == "assignments" and (spec.assign_one
                                      or spec.name == "windowsAutopilotDeploymentProfiles"):
            return self.autopilot_assignments(req, spec, obj, rest[1:], method)
        if head == "assignments" and "assignments" in spec.nav and len(rest) == 1:
            if method != "GET":
                raise self.method_not_allowed()
            return self.nav_list(req, spec, obj, "assignments", obj.get("assignments", []))
        if head == "assign" and spec.assign_key and len(rest) == 1:
            if method != "POST":
                raise self.method_not_allowed()
            return self.assign(req, spec, obj, _require_dict(req.body))
        handler = getattr(self, f"sub_{spec.name}", None)
        if handler is not None:
            result: GraphResponse | None = handler(req, spec, obj, rest, method)
            if result is not None:
                return result
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")

    def assign(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
               body: Item) -> GraphResponse:
        """POST …/assign: replace the assignment set (200 + value or 204 per type)."""
        key = spec.assign_key or "assignments"
        if key not in body or not isinstance(body[key], list):
            raise GraphError(400, "BadRequest", f"Parameter '{key}' is required in the body of "
                             "the assign action.", nested=True)
        if spec.name == "deviceEnrollmentConfigurations" and obj.get("priority", 0) == 0:
            raise GraphError(400, "BadRequest", "Default enrollment configurations cannot be "
                             "assigned.", nested=True)
        if spec.builtin_flag:
            self._guard_builtin(spec, obj, "assigned")
        if spec.name == "mobileApps":
            self._check_app_intents(body[key])
        stored = [self._assignment(spec, obj, a) for a in body[key]]
        obj["assignments"] = stored
        if spec.name in ("configurationPolicies", "compliancePolicies"):
            obj["isAssigned"] = bool(stored)
        self.state.mark_dirty()
        if spec.assign_status == 200:
            return GraphResponse(200, {
                "@odata.context": self.ctx(req, f"Collection({spec.base_type.lstrip('#')}"
                                                "Assignment)"),
                "value": stored})
        return GraphResponse(204)

    @staticmethod
    def _assignment(spec: CollectionSpec, obj: Item, raw: Any) -> Item:
        if not isinstance(raw, dict) or not isinstance(raw.get("target"), dict):
            raise GraphError(400, "BadRequest", "Each assignment needs a target.", nested=True)
        target = {k: v for k, v in raw["target"].items()
                  if k in ("@odata.type", "groupId", "collectionId",
                           "deviceAndAppManagementAssignmentFilterId",
                           "deviceAndAppManagementAssignmentFilterType")}
        if target.get("@odata.type") not in TARGET_TYPES:
            raise GraphError(400, "BadRequest", "Unknown assignment target type "
                             f"'{target.get('@odata.type')}'.", nested=True)
        if target["@odata.type"].endswith("roupAssignmentTarget") and not target.get("groupId"):
            raise GraphError(400, "BadRequest", "groupId is required for group targets.",
                             nested=True)
        target.setdefault("deviceAndAppManagementAssignmentFilterId", None)
        target.setdefault("deviceAndAppManagementAssignmentFilterType", "none")
        suffix = target.get("groupId") or target["@odata.type"].split(".")[-1]
        out: Item = {"id": f"{obj['id']}_{suffix}"}
        if spec.name in _SCRIPT_ASSIGNMENT_TYPES:
            out["@odata.type"] = f"#microsoft.graph.{_SCRIPT_ASSIGNMENT_TYPES[spec.name]}"
        if spec.name == "mobileApps":
            out["@odata.type"] = "#microsoft.graph.mobileAppAssignment"
        if spec.name == "termsAndConditions":
            out["@odata.type"] = "#microsoft.graph.termsAndConditionsAssignment"
            out["target"] = target
            return out
        out.update({"source": "direct", "sourceId": obj["id"], "target": target})
        for extra in ("intent", "runSchedule", "runRemediationScript", "settings"):
            if extra in raw:
                out[extra] = raw[extra]
        return out

    def autopilot_assignments(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                              rest: list[str], method: str) -> GraphResponse:
        """Autopilot, terms and conditions: assignments are POSTed one at a time (201)."""
        assignments: list[Item] = obj.setdefault("assignments", [])
        if not rest:
            if method == "GET":
                return self.nav_list(req, spec, obj, "assignments", assignments)
            if method == "POST":
                body = _require_dict(req.body)
                stored = self._assignment(spec, obj, body)
                stored["id"] = f"{obj['id']}_{new_id()}"
                assignments.append(stored)
                self.state.mark_dirty()
                out = {"@odata.context": self.ctx(req, f"{spec.path}('{obj['id']}')/assignments"
                                                       "/$entity")}
                out.update(stored)
                return GraphResponse(201, out)
            if method == "DELETE":
                assignments.clear()
                self.state.mark_dirty()
                return GraphResponse(204)
            raise self.method_not_allowed()
        found = next((a for a in assignments if a["id"] == rest[0]), None)
        if found is None:
            raise GraphError(404, "ResourceNotFound", "Assignment not found.", nested=True)
        if method == "GET":
            return GraphResponse(200, found)
        if method == "DELETE":
            assignments.remove(found)
            self.state.mark_dirty()
            return GraphResponse(204)
        raise self.method_not_allowed()

    # configurationPolicies ---------------------------------------------------------------
    def sub_configurationPolicies(self, req: GraphRequest, spec: CollectionSpec,
                                  obj: Item, rest: list[str], method: str) -> GraphResponse | None:
        """``/settings`` paged at 25 (and ``/settings/{id}``)."""
        if rest[0] != "settings":
            return None
        settings: list[Item] = obj.get("settings", [])
        if method != "GET":
            raise self.method_not_allowed()
        if len(rest) == 1:
            return self.nav_list(req, spec, obj, "settings", settings, page_size=SETTINGS_PAGE,
                                 max_top=SETTINGS_PAGE, count=True)
        found = next((s for s in settings if s.get("id") == rest[1]), None)
        if found is None:
            raise GraphError(404, "ResourceNotFound", "Setting not found.", nested=True)
        return GraphResponse(200, dict(found))

    # deviceConfigurations ----------------------------------------------------------------
    def sub_deviceConfigurations(self, req: GraphRequest, _spec: CollectionSpec,
                                 obj: Item, rest: list[str], method: str) -> GraphResponse | None:
        """``getOmaSettingPlainTextValue(secretReferenceValueId='…')``."""
        m = _OMA_FN.match(rest[0])
        if not m or method != "GET":
            return None
        for setting in obj.get("omaSettings") or []:
            if setting.get("secretReferenceValueId") == m.group(1):
                secret = req.tenant.coll("_omaSecrets").get(m.group(1), {})
                return GraphResponse(200, {"@odata.context": self.ctx(req, "Edm.String"),
                                           "value": secret.get("value", setting.get("value"))})
        raise GraphError(404, "ResourceNotFound", "Secret reference not found.", nested=True)

    # deviceCompliancePolicies ------------------------------------------------------------
    def sub_deviceCompliancePolicies(self, req: GraphRequest, spec: CollectionSpec,
                                     obj: Item, rest: list[str],
                                     method: str) -> GraphResponse | None:
        """``scheduleActionsForRules`` (204); the navigation GET has no OData route, as in Graph."""
        if rest[0] == "scheduledActionsForRule":
            raise GraphError(400, "BadRequest", "No OData route exists that match template "
                             "~/singleton/navigation/key/navigation with http verb GET for request "
                             f"/DeviceConfiguration_2405/StatelessDeviceConfigurationFEService/"
                             f"deviceManagement/deviceCompliancePolicies('{obj['id']}')/"
                             "scheduledActionsForRule.", nested=True)
        if rest[0] != "scheduleActionsForRules" or method != "POST":
            return None
        body = _require_dict(req.body)
        rules = body.get("deviceComplianceScheduledActionForRules")
        if not isinstance(rules, list):
            raise GraphError(400, "BadRequest", "deviceComplianceScheduledActionForRules is "
                             "required.", nested=True)
        self._check_block_action(rules)
        obj["scheduledActionsForRule"] = self._rules(rules)
        self.touch(spec, obj)
        return GraphResponse(204)

    # groupPolicyConfigurations -----------------------------------------------------------
    def render_definition_value(self, req: GraphRequest, dv: Item,
                                expand: dict[str, dict[str, str]]) -> Item:
        """A definition value without its private references, optionally with its definition."""
        out = {k: v for k, v in dv.items() if not k.startswith("_") and k != "presentationValues"}
        if "definition" in expand:
            definition = req.tenant.find("groupPolicyDefinitions", dv["_definitionId"])
            out["definition"] = _clean({k: v for k, v in (definition or {}).items()
                                        if k != "presentations"})
        return out

    def _definition(self, req: GraphRequest, bind: Any) -> Item:
        m = _BIND_DEF.search(bind) if isinstance(bind, str) else None
        definition = req.tenant.find("groupPolicyDefinitions", m.group(1)) if m else None
        if definition is None:
            raise GraphError(400, "BadRequest", "definition@odata.bind does not reference an "
                             "existing group policy definition.", nested=True)
        return definition

    def _definition_value(self, req: GraphRequest, raw: Any) -> Item:
        if not isinstance(raw, dict):
            raise GraphError(400, "BadRequest", "A definition value must be an object.",
                             nested=True)
        definition = self._definition(req, raw.get("definition@odata.bind"))
        presentations = {p["id"]: p for p in definition.get("presentations", [])}
        stamp = now_iso()
        values = []
        for pv in raw.get("presentationValues") or []:
            bind = pv.get("presentation@odata.bind", "")
            m = _BIND_PRES.search(bind) if isinstance(bind, str) else None
            if not m or m.group(1) not in presentations:
                raise GraphError(400, "BadRequest", "presentation@odata.bind does not reference a "
                                 "presentation of the bound definition.", nested=True)
            value = {k: v for k, v in pv.items() if not k.endswith("@odata.bind") and k != "id"}
            value.update({"id": new_id(), "createdDateTime": stamp, "lastModifiedDateTime": stamp,
                          "_presentationId": m.group(1)})
            values.append(value)
        return {"id": new_id(), "enabled": bool(raw.get("enabled", True)),
                "configurationType": raw.get("configurationType", "policy"),
                "createdDateTime": stamp, "lastModifiedDateTime": stamp,
                "_definitionId": definition["id"], "presentationValues": values}

    def sub_groupPolicyConfigurations(self, req: GraphRequest,
                                      spec: CollectionSpec, obj: Item, rest: list[str],
                                      method: str) -> GraphResponse | None:
        """DefinitionValues (+ presentationValues, definition) and updateDefinitionValues."""
        values: list[Item] = obj.setdefault("definitionValues", [])
        if rest[0] == "updateDefinitionValues" and len(rest) == 1 and method == "POST":
            body = _require_dict(req.body)
            added = [self._definition_value(req, raw) for raw in body.get("added") or []]
            deleted = set(body.get("deletedIds") or [])
            for upd in body.get("updated") or []:
                target = next((v for v in values if v["id"] == upd.get("id")), None)
                if target is None:
                    raise GraphError(404, "ResourceNotFound", "Definition value not found.",
                                     nested=True)
                if "enabled" in upd:
                    target["enabled"] = bool(upd["enabled"])
                target["lastModifiedDateTime"] = now_iso()
            obj["definitionValues"] = [v for v in values if v["id"] not in deleted] + added
            self.touch(spec, obj)
            return GraphResponse(204)
        if rest[0] != "definitionValues":
            return None
        expand = parse_expand(req.query.get("$expand"))
        for nav in expand:
            if nav not in ("definition", "presentation", "presentationValues"):
                raise GraphError(400, "BadRequest", f"Could not find a property named '{nav}'.")
        if len(rest) == 1:
            if method == "GET":
                return self.nav_list(req, spec, obj, "definitionValues", values,
                                     render=lambda dv: self.render_definition_value(req, dv,
                                                                                    expand))
            if method == "POST":
                value = self._definition_value(req, _require_dict(req.body))
                values.append(value)
                self.touch(spec, obj)
                out = {"@odata.context": self.ctx(req, f"{spec.path}('{obj['id']}')/"
                                                       "definitionValues/$entity")}
                out.update(self.render_definition_value(req, value, {}))
                return GraphResponse(201, out)
            raise self.method_not_allowed()
        dv = next((v for v in values if v["id"] == rest[1]), None)
        if dv is None:
            raise GraphError(404, "ResourceNotFound", "Definition value not found.", nested=True)
        if len(rest) == 2:
            if method == "GET":
                return GraphResponse(200, self.render_definition_value(req, dv, expand))
            if method == "DELETE":
                values.remove(dv)
                self.touch(spec, obj)
                return GraphResponse(204)
            raise self.method_not_allowed()
        if rest[2] == "definition" and method == "GET":
            definition = req.tenant.find("groupPolicyDefinitions", dv["_definitionId"]) or {}
            return GraphResponse(200, _clean({k: v for k, v in definition.items()
                                              if k != "presentations"}))
        if rest[2] == "presentationValues" and method == "GET":
            definition = req.tenant.find("groupPolicyDefinitions", dv["_definitionId"]) or {}
            presentations = {p["id"]: p for p in definition.get("presentations", [])}

            def render_pv(pv: Item) -> Item:
                out = _clean(pv)
                if "presentation" in expand:
                    out["presentation"] = _clean(presentations.get(pv["_presentationId"], {}))
                return out

            context = self.ctx(req, f"{spec.path}('{obj['id']}')/definitionValues('{dv['id']}')"
                                    "/presentationValues")
            return self.page(req, dv.get("presentationValues", []), context, render_pv,
                             page_size=1000, max_top=1000)
        return None

    def sub_groupPolicyDefinitions(self, req: GraphRequest, spec: CollectionSpec,
                                   obj: Item, rest: list[str], method: str) -> GraphResponse | None:
        """``groupPolicyDefinitions/{id}/presentations``."""
        if rest[0] == "presentations" and len(rest) == 1 and method == "GET":
            return self.nav_list(req, spec, obj, "presentations", obj.get("presentations", []))
        return None

    # intents and templates ---------------------------------------------------------------
    def create_instance(self, req: GraphRequest, template_id: str) -> GraphResponse:
        """``templates/{id}/createInstance``: the only way to create an intent (200)."""
        template = req.tenant.find("templates", template_id)
        if template is None:
            raise GraphError(404, "ResourceNotFound", f"Template '{template_id}' was not found.",
                             nested=True)
        body = _require_dict(req.body)
        if not body.get("displayName"):
            raise GraphError(400, "BadRequest", "displayName is required.", nested=True)
        defaults = {s["definitionId"]: s for s in template.get("settings", [])}
        for delta in body.get("settingsDelta") or []:
            if not isinstance(delta, dict) or delta.get("definitionId") not in defaults:
                raise GraphError(400, "BadRequest", "settingsDelta references a setting that is "
                                 "not in the template.", nested=True)
            defaults[delta["definitionId"]] = dict(defaults[delta["definitionId"]], **delta)
        stamp = now_iso()
        intent = {
            "@odata.type": "#microsoft.graph.deviceManagementIntent", "id": new_id(),
            "displayName": body["displayName"], "description": body.get("description", ""),
            "isAssigned": False, "lastModifiedDateTime": stamp, "templateId": template_id,
            "roleScopeTagIds": body.get("roleScopeTagIds") or ["0"],
            "settings": [dict(s, id=new_id()) for s in defaults.values()], "assignments": [],
        }
        req.tenant.coll("intents")[intent["id"]] = intent
        self.state.mark_dirty()
        spec = COLLECTIONS["intents"]
        out = {"@odata.context": self.ctx(req, "deviceManagement/intents/$entity")}
        out.update(self.render(req, spec, intent, expand={}, in_list=False))
        return GraphResponse(200, out)

    def sub_intents(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                    rest: list[str], method: str) -> GraphResponse | None:
        """``/settings``, ``/categories[/{id}/settings]`` and ``updateSettings`` (204)."""
        settings: list[Item] = obj.setdefault("settings", [])
        if rest == ["settings"] and method == "GET":
            return self.nav_list(req, spec, obj, "settings", settings)
        if rest == ["updateSettings"] and method == "POST":
            body = _require_dict(req.body)
            by_def = {s["definitionId"]: s for s in settings}
            for new in body.get("settings") or []:
                if not isinstance(new, dict) or new.get("definitionId") not in by_def:
                    raise GraphError(400, "BadRequest", "Unknown setting definition.",
                                     nested=True)
                by_def[new["definitionId"]].update(
                    {k: v for k, v in new.items() if k not in ("id", "definitionId")})
            self.touch(spec, obj)
            return GraphResponse(204)
        if rest[0] == "categories" and method == "GET":
            template = req.tenant.find("templates", obj.get("templateId", "")) or {}
            categories = template.get("categories", [])
            if len(rest) == 1:
                return self.nav_list(req, spec, obj, "categories", categories)
            if len(rest) == 3 and rest[2] == "settings":
                if not any(c["id"] == rest[1] for c in categories):
                    raise GraphError(404, "ResourceNotFound", "Category not found.", nested=True)
                members = [s for s in settings if s.get("_categoryId") == rest[1]]
                context = self.ctx(req, f"{spec.path}('{obj['id']}')/categories('{rest[1]}')"
                                        "/settings")
                return self.page(req, members, context, _clean, page_size=1000, max_top=1000)
        return None

    def sub_templates(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                      rest: list[str], method: str) -> GraphResponse | None:
        """``templates/{id}/categories`` and ``/settings``."""
        if len(rest) == 1 and rest[0] in ("categories", "settings") and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []))
        return None

    # MAM ----------------------------------------------------------------------------------
    def _mam(self, req: GraphRequest, spec: CollectionSpec, obj: Item, rest: list[str],
             method: str) -> GraphResponse | None:
        if rest == ["apps"] and method == "GET":
            return self.nav_list(req, spec, obj, "apps", obj.get("apps", []))
        if rest == ["targetApps"] and method == "POST":
            body = _require_dict(req.body)
            apps = body.get("apps")
            if not isinstance(apps, list):
                raise GraphError(400, "BadRequest", "apps is required.", nested=True)
            obj["apps"] = [dict(_clean(a), id=a.get("id") or new_id()) for a in apps
                           if isinstance(a, dict)]
            if "appGroupType" in body:
                obj["appGroupType"] = body["appGroupType"]
            self.touch(spec, obj)
            return GraphResponse(204)
        return None

    sub_iosManagedAppProtections = _mam
    sub_androidManagedAppProtections = _mam
    sub_targetedManagedAppConfigurations = _mam
    sub_windowsManagedAppProtections = _mam

    # enrollment ---------------------------------------------------------------------------
    def sub_deviceEnrollmentConfigurations(self, req: GraphRequest,
                                           spec: CollectionSpec, obj: Item, rest: list[str],
                                           method: str) -> GraphResponse | None:
        """``setPriority`` (204); defaults keep priority 0."""
        if rest != ["setPriority"] or method != "POST":
            return None
        body = _require_dict(req.body)
        priority = body.get("priority")
        if not isinstance(priority, int) or priority < 1:
            raise GraphError(400, "BadRequest", "priority must be a positive integer.",
                             nested=True)
        if obj.get("priority", 0) == 0:
            raise GraphError(400, "BadRequest", "The priority of a default configuration cannot "
                             "change.", nested=True)
        obj["priority"] = priority
        self.touch(spec, obj)
        return GraphResponse(204)

    # notification templates ---------------------------------------------------------------
    def sub_notificationMessageTemplates(self, req: GraphRequest,
                                         spec: CollectionSpec, obj: Item, rest: list[str],
                                         method: str) -> GraphResponse | None:
        """``localizedNotificationMessages``: list, POST one locale (201), item GET/PATCH/DELETE."""
        if rest[0] != "localizedNotificationMessages":
            return None
        messages: list[Item] = obj.setdefault("localizedNotificationMessages", [])
        if len(rest) == 1:
            if method == "GET":
                return self.nav_list(req, spec, obj, rest[0], messages)
            if method == "POST":
                body = _require_dict(req.body)
                if not body.get("locale") or not body.get("subject"):
                    raise GraphError(400, "BadRequest", "locale and subject are required.",
                                     nested=True)
                if any(m["locale"].lower() == str(body["locale"]).lower() for m in messages):
                    raise GraphError(409, "Conflict", "A message for this locale exists.",
                                     nested=True)
                message = {"@odata.type": "#microsoft.graph.localizedNotificationMessage",
                           "id": f"{obj['id']}_{body['locale']}",
                           "lastModifiedDateTime": now_iso(), "locale": body["locale"],
                           "subject": body["subject"],
                           "messageTemplate": body.get("messageTemplate", ""),
                           "isDefault": bool(body.get("isDefault", False))}
                messages.append(message)
                self.touch(spec, obj)
                return GraphResponse(201, message)
            raise self.method_not_allowed()
        found = next((m for m in messages if m["id"] == rest[1]), None)
        if found is None:
            raise GraphError(404, "ResourceNotFound", "Localized message not found.", nested=True)
        if method == "GET":
            return GraphResponse(200, found)
        if method == "PATCH":
            found.update({k: v for k, v in _require_dict(req.body).items()
                          if k in ("subject", "messageTemplate", "isDefault")})
            self.touch(spec, obj)
            return GraphResponse(204)
        if method == "DELETE":
            messages.remove(found)
            self.touch(spec, obj)
            return GraphResponse(204)
        raise self.method_not_allowed()

    # settings catalog compliance ----------------------------------------------------------
    def sub_compliancePolicies(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                               rest: list[str], method: str) -> GraphResponse | None:
        """``/settings`` (paged at 25), ``/scheduledActionsForRule`` and ``setScheduledActions``."""
        if rest[0] == "settings":
            return self.sub_configurationPolicies(req, spec, obj, rest, method)
        if rest == ["scheduledActionsForRule"] and method == "GET":
            options = {"$expand": req.query.get("$expand", "")}
            return self.nav_list(req, spec, obj, rest[0], self.expand_nav(
                req, spec, obj, rest[0], options), render=dict)
        if rest == ["setScheduledActions"] and method == "POST":
            body = _require_dict(req.body)
            rules = body.get("scheduledActions")
            if not isinstance(rules, list):
                raise GraphError(400, "BadRequest", "scheduledActions is required.", nested=True)
            self._check_block_action(rules)
            obj["scheduledActionsForRule"] = self._rules(rules)
            self.touch(spec, obj)
            return GraphResponse(200, {
                "@odata.context": self.ctx(req, "Collection(microsoft.graph.deviceManagement"
                                                "ComplianceScheduledActionForRule)"),
                "value": self.expand_nav(req, spec, obj, "scheduledActionsForRule",
                                         {"$expand": "scheduledActionConfigurations"})})
        return None

    # driver updates -----------------------------------------------------------------------
    def sub_windowsDriverUpdateProfiles(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                                        rest: list[str], method: str) -> GraphResponse | None:
        """``/driverInventories``: the drivers found for the profile's devices, with approvals."""
        if rest == ["driverInventories"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []), page_size=100,
                                 max_top=999)
        return None

    # RBAC ---------------------------------------------------------------------------------
    def sub_roleDefinitions(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                            rest: list[str], method: str) -> GraphResponse | None:
        """``/roleAssignments``: the assignments of this role."""
        if rest == ["roleAssignments"] and method == "GET":
            members = [self.render(req, COLLECTIONS["roleAssignments"], a, expand={},
                                   in_list=True)
                       for a in req.tenant.items("roleAssignments")
                       if (a.get("roleDefinition") or {}).get("id") == obj["id"]]
            return self.nav_list(req, spec, obj, rest[0], members, render=dict)
        return None

    def sub_roleAssignments(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                            rest: list[str], method: str) -> GraphResponse | None:
        """``/roleDefinition`` (one object) and ``/roleScopeTags``."""
        if rest == ["roleDefinition"] and method == "GET":
            found = self.expand_nav(req, spec, obj, rest[0], {})
            if found is None:
                raise GraphError(404, "ResourceNotFound", "Role definition not found.",
                                 nested=True)
            return GraphResponse(200, dict(found, **{"@odata.context": self.ctx(
                req, "deviceManagement/roleDefinitions/$entity")}))
        if rest == ["roleScopeTags"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0],
                                 self.expand_nav(req, spec, obj, rest[0], {}), render=dict)
        return None

    # terms and conditions -----------------------------------------------------------------
    def sub_termsAndConditions(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                               rest: list[str], method: str) -> GraphResponse | None:
        """``/acceptanceStatuses`` (who accepted which version; not configuration)."""
        if rest == ["acceptanceStatuses"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []))
        return None

    # policy sets --------------------------------------------------------------------------
    def sub_policySets(self, req: GraphRequest, spec: CollectionSpec, obj: Item, rest: list[str],
                       method: str) -> GraphResponse | None:
        """``/items`` and the ``update`` action (items added, updated, deleted; assignments)."""
        items: list[Item] = obj.setdefault("items", [])
        if rest == ["items"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], items)
        if rest == ["update"] and method == "POST":
            body = _require_dict(req.body)
            stamp = now_iso()
            deleted = set(body.get("deletedPolicySetItems") or [])
            unknown = deleted - {i["id"] for i in items}
            if unknown:
                raise GraphError(404, "ResourceNotFound", "Policy set item not found.",
                                 nested=True)
            kept = [i for i in items if i["id"] not in deleted]
            for upd in body.get("updatedPolicySetItems") or []:
                target = next((i for i in kept if isinstance(upd, dict)
                               and i["id"] == upd.get("id")), None)
                if target is None:
                    raise GraphError(404, "ResourceNotFound", "Policy set item not found.",
                                     nested=True)
                target.update({k: v for k, v in upd.items() if k in ("guidedDeploymentTags",
                                                                     "displayName")})
                target["lastModifiedDateTime"] = stamp
            for added in body.get("addedPolicySetItems") or []:
                if not isinstance(added, dict) or not added.get("payloadId"):
                    raise GraphError(400, "BadRequest", "Each added item needs a payloadId.",
                                     nested=True)
                kept.append(dict({k: v for k, v in added.items() if k != "id"}, id=new_id(),
                                 status="notAssigned", errorCode="noError",
                                 createdDateTime=stamp, lastModifiedDateTime=stamp))
            obj["items"] = kept
            if "assignments" in body:
                if not isinstance(body["assignments"], list):
                    raise GraphError(400, "BadRequest", "assignments must be a list.",
                                     nested=True)
                obj["assignments"] = [self._assignment(spec, obj, a)
                                      for a in body["assignments"]]
            self.touch(spec, obj)
            return GraphResponse(204)
        return None

    # reusable settings --------------------------------------------------------------------
    def sub_reusablePolicySettings(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                                   rest: list[str], method: str) -> GraphResponse | None:
        """``/referencingConfigurationPolicies``."""
        if rest == ["referencingConfigurationPolicies"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []))
        return None

    # authentication strengths -------------------------------------------------------------
    def sub_authenticationStrengthPolicies(self, req: GraphRequest, spec: CollectionSpec,
                                           obj: Item, rest: list[str],
                                           method: str) -> GraphResponse | None:
        """``/combinationConfigurations`` and ``updateAllowedCombinations`` (200)."""
        if rest == ["combinationConfigurations"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []))
        if rest == ["updateAllowedCombinations"] and method == "POST":
            self._guard_builtin(spec, obj, "modified")
            combos = _require_dict(req.body).get("allowedCombinations")
            if not isinstance(combos, list) or not combos:
                raise GraphError(400, "BadRequest", "allowedCombinations is required.")
            previous = obj.get("allowedCombinations", [])
            obj["allowedCombinations"] = combos
            self.touch(spec, obj)
            return GraphResponse(200, {
                "@odata.context": self.ctx(req, "microsoft.graph.updateAllowedCombinationsResult"),
                "previousCombinations": previous, "currentCombinations": combos,
                "additionalInformation": None, "conditionalAccessReferences": []})
        return None


    # singletons ---------------------------------------------------------------------------
    def singleton(self, req: GraphRequest, spec: CollectionSpec, rest: list[str],
                  method: str) -> GraphResponse:
        """A single resource: GET it, PATCH it (204); it is never created, listed or deleted."""
        if rest:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[0]}'.")
        if spec.name == "deviceManagement":
            return self.device_management(req, spec, method)
        obj = req.tenant.coll(spec.name).get(SINGLETON_KEY)
        if method == "GET":
            if obj is None:
                # Not set up in this tenant (no push certificate uploaded, no Google binding).
                raise GraphError(404, "ResourceNotFound", f"Resource not found: {spec.name}",
                                 nested=True)
            return GraphResponse(200, self.singleton_body(req, spec, obj))
        # deviceManagement/settings is a property: Graph writes it through deviceManagement.
        if method != "PATCH" or spec.name == "deviceManagementSettings" or obj is None:
            raise self.method_not_allowed()
        body = self.check_write(spec, _require_dict(req.body), update=True)
        body.pop("@odata.type", None)
        validator = getattr(self, f"validate_{spec.name}", None)
        if validator is not None:
            validator(body)
        obj.update(body)
        if "lastModifiedDateTime" in obj:
            obj["lastModifiedDateTime"] = now_iso()
        self.state.mark_dirty()
        return GraphResponse(204)

    def singleton_body(self, req: GraphRequest, spec: CollectionSpec, obj: Item) -> Item:
        """A singleton as Graph returns it (entities carry ``/$entity`` in their context)."""
        suffix = "/$entity" if spec.singleton == "entity" else ""
        body: Item = {"@odata.context": self.ctx(req, spec.path + suffix)}
        body.update(_clean(obj))
        if spec.singleton == "complex":
            body.pop("id", None)  # a property of deviceManagement has no key
        return body

    def device_management(self, req: GraphRequest, spec: CollectionSpec,
                          method: str) -> GraphResponse:
        """``GET|PATCH /deviceManagement``: the tenant's settings are written here, nested."""
        settings = req.tenant.coll("deviceManagementSettings")
        if method == "GET":
            body: Item = {"@odata.context": self.ctx(req, "deviceManagement/$entity"),
                          "@odata.type": spec.base_type, "id": req.tenant.id,
                          "settings": {k: v for k, v in (settings.get(SINGLETON_KEY) or {}).items()
                                       if k != "id" and not k.startswith("_")}}
            return GraphResponse(200, body)
        body = _require_dict(req.body)
        for key in body:
            if key != "settings" and not key.startswith("@odata."):
                raise GraphError(400, "BadRequest", f"The property '{key}' cannot be updated "
                                 "through this request.", nested=True)
        update = body.get("settings")
        if not isinstance(update, dict):
            raise GraphError(400, "BadRequest", "settings must be an object.", nested=True)
        update = {k: v for k, v in update.items() if "@odata." not in k}
        self.validate_deviceManagementSettings(update)
        settings.setdefault(SINGLETON_KEY, {}).update(update)
        self.state.mark_dirty()
        return GraphResponse(204)

    @staticmethod
    def validate_deviceManagementSettings(body: Item) -> None:
        """Known tenant settings with their types; the check-in threshold is 1 to 120 days."""
        for key, value in body.items():
            kind = _TENANT_SETTINGS.get(key)
            if kind is None:
                raise GraphError(400, "BadRequest", f"Could not find a property named '{key}' on "
                                 "type 'microsoft.graph.deviceManagementSettings'.", nested=True)
            if value is None and kind is str:
                continue  # the string settings are nullable
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise GraphError(400, "BadRequest", f"Invalid value for '{key}'.", nested=True)
        days = body.get("deviceComplianceCheckinThresholdDays")
        if isinstance(days, int) and not 1 <= days <= 120:
            raise GraphError(400, "BadRequest", "deviceComplianceCheckinThresholdDays must be "
                             "between 1 and 120.", nested=True)

    @staticmethod
    def validate_managedDeviceCleanupSettings(body: Item) -> None:
        """Retirement after 30 to 270 days of inactivity, or 0 for never (a number as a string)."""
        days = body.get("deviceInactivityBeforeRetirementInDays")
        if days is not None:
            _check_retirement_days(days, as_string=True)

    # apps ---------------------------------------------------------------------------------
    @staticmethod
    def _check_app_intents(assignments: list[Any]) -> None:
        for raw in assignments:
            if not isinstance(raw, dict) or raw.get("intent") not in _APP_INTENTS:
                raise GraphError(400, "BadRequest", "Each app assignment needs an intent: "
                                 + ", ".join(sorted(_APP_INTENTS)) + ".", nested=True)

    def validate_mobileApps(self, body: Item) -> None:
        """Apps need a name and a publisher; store and web apps need what locates them."""
        if not body.get("displayName") or not body.get("publisher"):
            raise GraphError(400, "BadRequest", "displayName and publisher are required.",
                             nested=True)
        required = _APP_LOCATORS.get(str(body.get("@odata.type")), ())
        missing = [k for k in required if not body.get(k)]
        if missing:
            raise GraphError(400, "BadRequest", f"{', '.join(missing)} is required for "
                             f"{body['@odata.type'].split('.')[-1]}.", nested=True)

    @staticmethod
    def init_mobileApps(_req: GraphRequest, obj: Item) -> None:
        """A new app starts unassigned; store and web apps have no content to upload."""
        obj.update({"publishingState": "published", "uploadState": 1, "isAssigned": False,
                    "dependentAppCount": 0, "supersedingAppCount": 0, "supersededAppCount": 0,
                    "categories": [], "largeIcon": obj.get("largeIcon")})

    def sub_mobileApps(self, req: GraphRequest, _spec: CollectionSpec, obj: Item, rest: list[str],
                       method: str) -> GraphResponse | None:
        """An app's category references, 204 each.

        ``POST categories/$ref`` adds the category its ``@odata.id`` names; ``DELETE categories/{id}/$ref``
        removes one.
        """
        categories: list[Item] = obj.setdefault("categories", [])
        if rest == ["categories", "$ref"]:
            if method != "POST":
                raise self.method_not_allowed()
            target = str(_require_dict(req.body).get("@odata.id") or "")
            found = _CATEGORY_REF.search(target)
            category = req.tenant.find("mobileAppCategories", found.group("id")) if found else None
            if category is None:
                raise GraphError(400, "BadRequest", "The @odata.id does not name an app category of "
                                 "this tenant.", nested=True)
            if not any(c.get("id") == category["id"] for c in categories):
                categories.append(dict(category))
                self.state.mark_dirty()
            return GraphResponse(204)
        if len(rest) == 3 and rest[0] == "categories" and rest[2] == "$ref":
            if method != "DELETE":
                raise self.method_not_allowed()
            kept = [c for c in categories if c.get("id") != rest[1]]
            if len(kept) == len(categories):
                raise GraphError(404, "ResourceNotFound", "The app is not in that category.", nested=True)
            obj["categories"] = kept
            self.state.mark_dirty()
            return GraphResponse(204)
        return None

    @staticmethod
    def init_mobileAppConfigurations(req: GraphRequest, obj: Item) -> None:
        """An app configuration targets apps of this tenant."""
        targeted = obj.get("targetedMobileApps")
        if not isinstance(targeted, list) or not targeted:
            raise GraphError(400, "BadRequest", "targetedMobileApps is required.", nested=True)
        unknown = [a for a in targeted if req.tenant.find("mobileApps", str(a)) is None]
        if unknown:
            raise GraphError(400, "BadRequest", "targetedMobileApps references apps that do not "
                             "exist in this tenant.", nested=True)

    @staticmethod
    def init_windowsInformationProtectionPolicies(_req: GraphRequest, obj: Item) -> None:
        """WIP policies: a known enforcement level; AppLocker files are added afterwards."""
        level = obj.get("enforcementLevel")
        if level is not None and level not in _WIP_LEVELS:
            raise GraphError(400, "BadRequest", f"Invalid enforcementLevel '{level}'.",
                             nested=True)
        obj["protectedAppLockerFiles"] = []
        obj["exemptAppLockerFiles"] = []
        obj.update({"isAssigned": False, "deployedAppCount": 0})

    init_mdmWindowsInformationProtectionPolicies = init_windowsInformationProtectionPolicies

    def sub_windowsInformationProtectionPolicies(
            self, req: GraphRequest, spec: CollectionSpec, obj: Item, rest: list[str],
            method: str) -> GraphResponse | None:
        """``/protectedAppLockerFiles`` and ``/exemptAppLockerFiles``: list, POST (201), DELETE one (204)."""
        if len(rest) not in (1, 2) or rest[0] not in ("protectedAppLockerFiles", "exemptAppLockerFiles"):
            return None
        files: list[Item] = obj.setdefault(rest[0], [])
        if len(rest) == 2:
            if method != "DELETE":
                raise self.method_not_allowed()
            kept = [f for f in files if f.get("id") != rest[1]]
            if len(kept) == len(files):
                raise GraphError(404, "ResourceNotFound", "No such AppLocker file.", nested=True)
            obj[rest[0]] = kept
            self.touch(spec, obj)
            return GraphResponse(204)
        if method == "GET":
            return self.nav_list(req, spec, obj, rest[0], files)
        if method == "POST":
            body = _require_dict(req.body)
            if not body.get("displayName") or not body.get("file"):
                raise GraphError(400, "BadRequest", "displayName and file are required.",
                                 nested=True)
            stored = {"@odata.type": "#microsoft.graph.windowsInformationProtectionAppLockerFile",
                      "id": new_id(), "displayName": body["displayName"],
                      "fileHash": body.get("fileHash"), "file": body["file"],
                      "version": body.get("version")}
            files.append(stored)
            self.touch(spec, obj)
            return GraphResponse(201, stored)
        raise self.method_not_allowed()

    sub_mdmWindowsInformationProtectionPolicies = sub_windowsInformationProtectionPolicies

    # enrollment, partners, cleanup ---------------------------------------------------------
    @staticmethod
    def init_appleUserInitiatedEnrollmentProfiles(req: GraphRequest, obj: Item) -> None:
        """A platform of iOS or macOS, a known default enrollment type, the next priority."""
        if obj.get("platform") not in ("iOS", "macOS"):
            raise GraphError(400, "BadRequest", "platform must be iOS or macOS.", nested=True)
        if obj.get("defaultEnrollmentType") not in _APPLE_ENROLLMENT_TYPES:
            raise GraphError(400, "BadRequest", "defaultEnrollmentType is not a known enrollment "
                             "type.", nested=True)
        others = req.tenant.items("appleUserInitiatedEnrollmentProfiles")
        obj["priority"] = max((int(o.get("priority") or 0) for o in others), default=0) + 1
        obj["assignments"] = []

    def sub_appleUserInitiatedEnrollmentProfiles(self, req: GraphRequest, spec: CollectionSpec,
                                                 obj: Item, rest: list[str],
                                                 method: str) -> GraphResponse | None:
        """``setPriority`` (204): the only way a profile's priority changes."""
        if rest != ["setPriority"] or method != "POST":
            return None
        priority = _require_dict(req.body).get("priority")
        if not isinstance(priority, int) or isinstance(priority, bool) or priority < 1:
            raise GraphError(400, "BadRequest", "priority must be a positive integer.", nested=True)
        obj["priority"] = priority
        self.touch(spec, obj)
        return GraphResponse(204)

    def sub_depOnboardingSettings(self, req: GraphRequest, spec: CollectionSpec, obj: Item,
                                  rest: list[str], method: str) -> GraphResponse | None:
        """``/enrollmentProfiles``: the token's Apple enrollment profiles."""
        if rest == ["enrollmentProfiles"] and method == "GET":
            return self.nav_list(req, spec, obj, rest[0], obj.get(rest[0], []), page_size=100,
                                 max_top=999)
        return None

    @staticmethod
    def init_managedDeviceCleanupRules(req: GraphRequest, obj: Item) -> None:
        """One rule per platform, 30 to 270 days of inactivity."""
        platform = obj.get("deviceCleanupRulePlatformType")
        if platform not in _CLEANUP_PLATFORMS:
            raise GraphError(400, "BadRequest", "deviceCleanupRulePlatformType is not a known "
                             "platform.", nested=True)
        _check_retirement_days(obj.get("deviceInactivityBeforeRetirementInDays"),
                               as_string=False)
        if any(r.get("deviceCleanupRulePlatformType") == platform
               for r in req.tenant.items("managedDeviceCleanupRules")):
            raise GraphError(409, "Conflict", f"A cleanup rule for {platform} already exists.",
                             nested=True)

    def validate_managedDeviceCleanupRules(self, body: Item) -> None:
        """A rule needs a name."""
        if not body.get("displayName"):
            raise GraphError(400, "BadRequest", "displayName is required.", nested=True)


_APP_INTENTS = frozenset({"required", "available", "uninstall", "availableWithoutEnrollment"})
# What a store or web app cannot be created without.
_APP_LOCATORS: dict[str, tuple[str, ...]] = {
    "#microsoft.graph.webApp": ("appUrl",),
    "#microsoft.graph.windowsWebApp": ("appUrl",),
    "#microsoft.graph.iosStoreApp": ("appStoreUrl", "bundleId"),
    "#microsoft.graph.androidStoreApp": ("appStoreUrl", "packageId"),
    "#microsoft.graph.winGetApp": ("packageIdentifier",),
}
_WIP_LEVELS = frozenset({"noProtection", "encryptAndAuditOnly", "encryptAuditAndPrompt",
                         "encryptAuditAndBlock"})
_APPLE_ENROLLMENT_TYPES = frozenset({"unknown", "device", "user", "accountDrivenUserEnrollment",
                                     "webDeviceEnrollment", "accountDrivenDeviceEnrollment"})
_CLEANUP_PLATFORMS = frozenset({"all", "androidAOSP", "androidDeviceAdministrator",
                                "androidDedicatedAndFullyManagedCorporateOwnedWorkProfile",
                                "chromeOS", "androidPersonallyOwnedWorkProfile", "ios", "macOS",
                                "windows", "windowsHolographic"})
_TENANT_SETTINGS: dict[str, type] = {
    "deviceComplianceCheckinThresholdDays": int, "isScheduledActionEnabled": bool,
    "secureByDefault": bool, "enhancedJailBreak": bool,
    "androidDeviceAdministratorEnrollmentEnabled": bool,
    "ignoreDevicesForUnsupportedSettingsEnabled": bool, "enableLogCollection": bool,
    "enableAutopilotDiagnostics": bool, "enableEnhancedTroubleshootingExperience": bool,
    "enableDeviceGroupMembershipReport": bool, "derivedCredentialProvider": str,
    "derivedCredentialUrl": str, "deviceInactivityBeforeRetirementInDay": int,
}


def _check_retirement_days(value: Any, *, as_string: bool) -> None:
    """Cleanup after 30 to 270 days of inactivity (0 turns cleanup settings off)."""
    days: int | None = None
    if as_string and isinstance(value, str) and value.isdigit():
        days = int(value)
    elif not as_string and isinstance(value, int) and not isinstance(value, bool):
        days = value
    if days is None or not (30 <= days <= 270 or (as_string and days == 0)):
        raise GraphError(400, "BadRequest", "deviceInactivityBeforeRetirementInDays must be "
                         "between 30 and 270.", nested=True)


def clone(obj: Item) -> Item:
    """A deep copy (control API answers must not alias live state)."""
    return copy.deepcopy(obj)
