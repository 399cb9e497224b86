"""Who calls us (principals), which tenants we manage, and who may do what on them (grants)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.domain.base import ApiModel

__all__ = [
    "GRAPH_CREDENTIAL_SETTING_PREFIX",
    "PLATFORM_ADMIN_ROLE",
    "CredentialRef",
    "Grant",
    "GraphConnection",
    "ManagedTenant",
    "Principal",
    "Role",
    "role_at_least",
]

# App settings that hold Graph credentials (in Azure: Key Vault references) all start with this.
GRAPH_CREDENTIAL_SETTING_PREFIX = "GRAPH_CREDENTIAL_"
# App role (in the token's ``roles`` claim) that may register managed tenants and grant their first admin.
# Honoured on app-only tokens only (see :attr:`Principal.is_platform_admin`).
PLATFORM_ADMIN_ROLE = "Platform.Admin"


class Role(StrEnum):
    """A principal's role on one managed tenant; ordered ``reader < operator < admin``."""

    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the role order."""
        return _ROLE_ORDER.index(self)


_ROLE_ORDER = [Role.READER, Role.OPERATOR, Role.ADMIN]


def role_at_least(role: Role, minimum: Role) -> bool:
    """Whether ``role`` includes everything ``minimum`` allows."""
    return role.rank >= minimum.rank


class Principal(ApiModel):
    """An authenticated caller: user, service principal or managed identity.

    Identity is the immutable ``(tenant_id, object_id)`` pair; names are for display only and never
    used for authorization.
    """

    tenant_id: str
    object_id: str
    name: str = ""
    roles: frozenset[str] = frozenset()
    is_app: bool = False
    app_id: str | None = None

    @property
    def is_platform_admin(self) -> bool:
        """Whether the caller is provisioning automation holding the ``Platform.Admin`` app role.

        Only app-only callers (service principals and managed identities running provisioning pipelines)
        qualify. On a user token the role is ignored: the user is an ordinary caller whose access comes
        from grants alone, so a role assigned to a person (or picked up through a group) cannot register
        tenants or hand out admin.
        """
        return self.is_app and PLATFORM_ADMIN_ROLE in self.roles

    def is_principal(self, tenant_id: str, object_id: str) -> bool:
        """Whether ``(tenant_id, object_id)`` names this caller (both compared case-insensitively)."""
        return (tenant_id.lower(), object_id.lower()) == (self.tenant_id.lower(), self.object_id.lower())


CredentialType = Literal[
    "keyVaultSecret", "keyVaultCertificate", "federatedManagedIdentity", "appSetting"
]
# A reference is a name (Key Vault object or app setting), never a value; anything that does not look
# like a plain name is refused so that a secret pasted into the wrong field is never stored.
CREDENTIAL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,126}$")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{32,}")


def _looks_secret(value: str) -> bool:
    """Heuristic: a long random-looking segment (mixed case and several digits) or a long hex run."""
    if _HEX_RUN.search(value) and any(c.isdigit() for c in value):
        return True
    for segment in re.split(r"[-_]", value):
        digits = sum(c.isdigit() for c in segment)
        if len(segment) >= 20 and digits >= 3 and segment.lower() != segment != segment.upper():
            return True
    return False


class CredentialRef(ApiModel):
    """Where the Graph credential of a managed tenant lives: a reference, never the secret itself."""

    type: CredentialType
    name: str = Field(default="", max_length=127)

    @field_validator("name")
    @classmethod
    def _looks_like_a_reference(cls, value: str) -> str:
        if value == "":
            return value
        if not CREDENTIAL_NAME.fullmatch(value) or _looks_secret(value):
            raise ValueError(
                "credential.name must be the name of a Key Vault object or app setting, not a secret"
            )
        return value

    @model_validator(mode="after")
    def _app_setting_is_a_graph_credential(self) -> CredentialRef:
        # Only settings meant for Graph credentials may be named: otherwise a reference could send another
        # app setting (a storage connection string, say) to a token endpoint as a client secret.
        if self.type == "appSetting" and not self.name.startswith(GRAPH_CREDENTIAL_SETTING_PREFIX):
            raise ValueError(f"an appSetting credential must name a setting starting with "
                             f"{GRAPH_CREDENTIAL_SETTING_PREFIX}")
        return self


class GraphConnection(ApiModel):
    """How we reach Graph for a managed tenant: our app's client id and a credential reference."""

    client_id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$")
    credential: CredentialRef


class ManagedTenant(ApiModel):
    """A customer tenant whose Intune configuration we back up and restore."""

    tenant_id: str
    display_name: str = Field(min_length=1, max_length=256)
    graph: GraphConnection
    registered_by: str = ""
    registered_at: datetime | None = None


class Grant(ApiModel):
    """``(managed tenant, principal home tenant, principal object id) -> role``.

    A principal is identified by its home tenant and object id together: object ids are unique only
    within their tenant, so a principal from another tenant with the same object id is someone else.
    """

    tenant_id: str
    principal_tenant_id: str
    principal_id: str
    role: Role
    granted_by: str
    granted_at: datetime
