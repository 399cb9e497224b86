"""Reading Intune policies in full, driven by the catalog.

A capture is only a success when it holds everything Graph has: every settings page, GPO definition values
with their presentation values, scheduled actions, script bodies, MAM apps, intent settings, localized
messages and assignments. When Graph reports a count (``settingCount``, ``@odata.count``) and we captured a
different number, the capture is marked incomplete instead of being stored as if it were whole.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.graph.catalog import (
    CATALOG,
    ItemGet,
    PerElementSubCollection,
    PolicyType,
    SubCollection,
)
from shared.graph.client import GraphClient
from shared.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphIncompleteRead,
    GraphNotFound,
    GraphThrottled,
)

__all__ = ["CapturedPolicy", "PolicyReader", "PolicySummary"]

logger = logging.getLogger(__name__)

# Where a mixed MAM list is resolved to its platform collection when only the id is known.
_MANAGED_APP_POLICIES = "deviceAppManagement/managedAppPolicies"


@dataclass(frozen=True)
class PolicySummary:
    """One object of a policy type as the list call returned it."""

    type_key: str
    id: str
    name: str
    odata_type: str | None
    last_modified: str | None
    listed: Mapping[str, Any] = field(repr=False)


@dataclass
class CapturedPolicy:
    """One policy read in full.

    Attributes:
        type_key: catalog key.
        id: Graph id.
        name: ``name`` or ``displayName``.
        odata_type: ``@odata.type`` when Graph sent it.
        body: the object as Graph returned it, with its sub-collections merged in under their Graph
            names (``settings``, ``definitionValues[].presentationValues``, ``assignments``...).
        settings_count_reported: the count Graph reports for the settings sub-collection, if any.
        settings_count_captured: how many settings (or definition values) we captured.
        complete: true only when nothing is known to be missing.
        problems: why the capture is incomplete (safe to store and show).
        error_code: the stable code of the error that prevented the read, if one did.
    """

    type_key: str
    id: str
    name: str
    odata_type: str | None
    body: dict[str, Any]
    settings_count_reported: int | None = None
    settings_count_captured: int | None = None
    complete: bool = True
    problems: list[str] = field(default_factory=list)
    error_code: str | None = None

    @property
    def assignments(self) -> list[dict[str, Any]] | None:
        """The captured assignments (``None`` for types without assignments)."""
        value = self.body.get("assignments")
        return value if isinstance(value, list) else None

    def mark_incomplete(self, problem: str) -> None:
        """Record why the capture cannot count as complete."""
        self.complete = False
        self.problems.append(problem)


class PolicyReader:
    """Lists and reads the policies of one managed tenant through a :class:`GraphClient`."""

    def __init__(
        self,
        client: GraphClient,
        *,
        include_assignments: bool = True,
        catalog: Mapping[str, PolicyType] = CATALOG,
    ) -> None:
        """Create a reader.

        Args:
            client: the tenant's Graph client (read-only is enough).
            include_assignments: also read each policy's assignments.
            catalog: the policy-type catalog (tests may pass a subset).
        """
        self.client = client
        self.include_assignments = include_assignments
        self.catalog = catalog

    def _type(self, type_key: str) -> PolicyType:
        try:
            return self.catalog[type_key]
        except KeyError:
            raise KeyError(f"unknown policy type {type_key!r}") from None

    async def list_policies(self, type_key: str) -> list[PolicySummary]:
        """Every policy of ``type_key`` in the tenant, from the list call (all pages).

        Raises:
            KeyError: unknown type key.
            GraphIncompleteRead: the pages held fewer items than Graph counted.
            GraphError: the list call failed (for example ``GraphPermissionMissing``).
        """
        policy_type = self._type(type_key)
        if policy_type.singleton:
            return await self._list_singleton(policy_type)
        items: list[dict[str, Any]] = []
        reported: int | None = None
        async for page in self.client.iter_pages(
            policy_type.list_url(), params=policy_type.list_params or None
        ):
            if reported is None and isinstance(page.get("@odata.count"), int):
                reported = page["@odata.count"]
            items.extend(page.get("value", []))
        if reported is not None and reported != len(items):
            # A list that ends early would silently drop whole policies from a backup.
            raise GraphIncompleteRead(
                f"list of {type_key}: Graph counted {reported}, pages held {len(items)}"
            )
        return [_summary(policy_type, item) for item in items if policy_type.keeps(item)]

    async def _list_singleton(self, policy_type: PolicyType) -> list[PolicySummary]:
        """A singleton as a list of one (none when the tenant never set it up: Graph answers 404)."""
        try:
            item = await self.client.get(policy_type.list_url())
        except GraphNotFound:
            return []
        return [_summary(policy_type, item)] if policy_type.keeps(item) else []

    async def read_policy(
        self, type_key: str, policy_id: str, *, listed: Mapping[str, Any] | None = None
    ) -> CapturedPolicy:
        """Read one policy in full.

        Args:
            type_key: catalog key.
            policy_id: Graph id.
            listed: the object as the list call returned it, when the caller has it (saves a GET for
                types whose list holds the whole object, and tells MAM policies' platform).

        Returns:
            The captured policy; ``complete`` is false when Graph returned less than it reported.

        Raises:
            GraphError: a call failed (``GraphNotFound`` when the policy no longer exists).
        """
        policy_type = self._type(type_key)
        odata_type = listed.get("@odata.type") if listed else None
        if policy_type.item_collections and odata_type is None:
            head = await self.client.get(f"/{policy_type.api_version}/{_MANAGED_APP_POLICIES}/{policy_id}")
            odata_type = head.get("@odata.type")
        item_url = policy_type.item_url(policy_id, odata_type)
        has_item_get = any(isinstance(step, ItemGet) for step in policy_type.read_steps)
        body: dict[str, Any] = dict(listed) if listed is not None and not has_item_get else {}
        if not body and not has_item_get:
            body = await self.client.get(item_url)
        captured = CapturedPolicy(
            type_key=type_key, id=policy_id, name="", odata_type=None, body=body,
        )
        for step in policy_type.read_steps:
            if isinstance(step, ItemGet):
                captured.body = await self.client.get(item_url, params=step.params or None)
            elif isinstance(step, SubCollection):
                await self._read_sub_collection(captured, item_url, step)
            elif isinstance(step, PerElementSubCollection):
                await self._read_per_element(captured, item_url, step)
        if self.include_assignments and policy_type.assignments is not None:
            captured.body["assignments"] = await self.client.get_all(
                f"{item_url}/{policy_type.assignments.read_path}"
            )
        for secret in policy_type.redact_on_capture:
            # Tenant-bound secrets (store tokens) are never kept in a backup.
            if captured.body.get(secret) is not None:
                captured.body[secret] = None
        captured.name = _name(policy_type, captured.body)
        captured.odata_type = captured.body.get("@odata.type") or odata_type
        self._check_reported_count(captured, policy_type)
        if not captured.complete:
            logger.warning(
                "graph capture incomplete type=%s id=%s reported=%s captured=%s",
                type_key, policy_id, captured.settings_count_reported, captured.settings_count_captured,
            )
        return captured

    async def _read_sub_collection(
        self, captured: CapturedPolicy, item_url: str, step: SubCollection
    ) -> None:
        values: list[dict[str, Any]] = []
        odata_count: int | None = None
        async for page in self.client.iter_pages(f"{item_url}/{step.path}", params=step.params or None):
            if odata_count is None and isinstance(page.get("@odata.count"), int):
                odata_count = page["@odata.count"]
            values.extend(page.get("value", []))
        captured.body[step.into] = values
        if len({v.get("id") for v in values if isinstance(v, dict) and "id" in v}) != sum(
            1 for v in values if isinstance(v, dict) and "id" in v
        ):
            captured.mark_incomplete(f"{step.path}: the same item came back on two pages")
        if odata_count is not None and odata_count != len(values):
            captured.mark_incomplete(
                f"{step.path}: Graph counted {odata_count}, pages held {len(values)}"
            )
        if step.settings:
            captured.settings_count_captured = len(values)

    async def _read_per_element(
        self, captured: CapturedPolicy, item_url: str, step: PerElementSubCollection
    ) -> None:
        for element in captured.body.get(step.parent) or []:
            if not isinstance(element, dict) or "id" not in element:
                continue
            element[step.into] = await self.client.get_all(
                f"{item_url}/{step.parent}/{element['id']}/{step.path}", params=step.params or None
            )

    @staticmethod
    def _check_reported_count(captured: CapturedPolicy, policy_type: PolicyType) -> None:
        prop = policy_type.settings_count_property
        if prop is None:
            return
        reported = captured.body.get(prop)
        if isinstance(reported, int):
            captured.settings_count_reported = reported
            if reported != captured.settings_count_captured:
                captured.mark_incomplete(
                    f"{prop} is {reported} but {captured.settings_count_captured} settings were read"
                )
        else:
            captured.mark_incomplete(f"{prop} missing, completeness cannot be proven")

    async def read_all(
        self, type_keys: Iterable[str], *, concurrency: int = 8
    ) -> AsyncIterator[CapturedPolicy]:
        """Read every policy of ``type_keys`` in full, ``concurrency`` at a time, yielding as each finishes.

        A policy that cannot be read (deleted since the list, a bad request, a server error that
        outlasted the retries) is yielded as an incomplete capture with its ``error_code``; throttling
        beyond the retry budget and authentication failures concern the whole tenant and are raised.

        Raises:
            GraphThrottled: Graph kept throttling beyond the client's retry budget.
            GraphAuthError: no token could be obtained.
            GraphError: a list call failed.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        listed = [[(key, summary) for summary in await self.list_policies(key)] for key in type_keys]
        # Interleave the types: Intune throttles per service family, so mixing types keeps several
        # families' budgets busy at once instead of queueing on one family at a time.
        work = [item for group in itertools.zip_longest(*listed) for item in group if item is not None]
        pending: set[asyncio.Task[CapturedPolicy]] = set()
        queue = iter(work)
        try:
            while True:
                for key, summary in queue:
                    pending.add(asyncio.create_task(self._read_or_fail(key, summary)))
                    if len(pending) >= concurrency:
                        break
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _read_or_fail(self, type_key: str, summary: PolicySummary) -> CapturedPolicy:
        try:
            return await self.read_policy(type_key, summary.id, listed=summary.listed)
        except (GraphThrottled, GraphAuthError):
            raise
        except GraphError as exc:
            failed = CapturedPolicy(
                type_key=type_key, id=summary.id, name=summary.name, odata_type=summary.odata_type,
                body={}, complete=False, error_code=exc.code,
            )
            failed.problems.append(exc.detail)
            return failed


def _name(policy_type: PolicyType, item: Mapping[str, Any]) -> str:
    # Tenant-wide singletons may have no name of their own: they are named after their type.
    fallback = policy_type.display_name if policy_type.singleton else ""
    return str(item.get(policy_type.name_property) or fallback)


def _summary(policy_type: PolicyType, item: Mapping[str, Any]) -> PolicySummary:
    policy_id = item.get("id")
    if policy_type.singleton and not policy_id:
        # A singleton without an id of its own (tenant settings) is identified by its type key.
        policy_id = policy_type.key
    return PolicySummary(
        type_key=policy_type.key,
        id=str(policy_id),
        name=_name(policy_type, item),
        odata_type=item.get("@odata.type"),
        last_modified=item.get("lastModifiedDateTime"),
        listed=item,
    )

