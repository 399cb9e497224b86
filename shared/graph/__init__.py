"""Microsoft Graph access for Intune: the client, the policy-type catalog and full-object reads."""

from __future__ import annotations

from shared.graph.auth import (
    BearerAuth,
    ClientAssertion,
    ClientCertificate,
    ClientSecret,
    Credential,
    MsalTokenProvider,
    StaticTokenProvider,
    TokenProvider,
)
from shared.graph.batch import BatchRequest, BatchResponse
from shared.graph.budget import PUBLISHED_LIMITS, BudgetConfig, Budgets, RateBudget
from shared.graph.catalog import (
    CATALOG,
    PolicyType,
    get_policy_type,
    permission_for,
    restore_sequence,
    throttle_family_for,
)
from shared.graph.client import GraphClient, GraphResponse
from shared.graph.errors import (
    GraphAuthError,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphIncompleteRead,
    GraphNotFound,
    GraphPermissionMissing,
    GraphServerError,
    GraphThrottled,
    GraphWriteRefused,
)
from shared.graph.factory import GraphClientFactory
from shared.graph.reader import CapturedPolicy, PolicyReader, PolicySummary
from shared.graph.retry import RetryPolicy

__all__ = [
    "CATALOG",
    "PUBLISHED_LIMITS",
    "BatchRequest",
    "BatchResponse",
    "BearerAuth",
    "BudgetConfig",
    "Budgets",
    "CapturedPolicy",
    "ClientAssertion",
    "ClientCertificate",
    "ClientSecret",
    "Credential",
    "GraphAuthError",
    "GraphBadRequest",
    "GraphClient",
    "GraphClientFactory",
    "GraphConflict",
    "GraphError",
    "GraphIncompleteRead",
    "GraphNotFound",
    "GraphPermissionMissing",
    "GraphResponse",
    "GraphServerError",
    "GraphThrottled",
    "GraphWriteRefused",
    "MsalTokenProvider",
    "PolicyReader",
    "PolicySummary",
    "PolicyType",
    "RateBudget",
    "RetryPolicy",
    "StaticTokenProvider",
    "TokenProvider",
    "get_policy_type",
    "permission_for",
    "restore_sequence",
    "throttle_family_for",
]
