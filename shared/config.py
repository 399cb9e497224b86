"""Application settings, read from the environment (app settings in Azure, ``local.settings.json`` locally).

Only ``shared.container`` and HTTP triggers call :func:`get_settings`; everything else receives values
explicitly, so tests build ``Settings(...)`` directly. The names here are the contract with ``infra/``:
every required field must be provided as an app setting by the Bicep templates (a test checks both sides).
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.domain.backupsets import CAPTURE_CHUNK, MAX_CAPTURE_CHUNK

__all__ = ["AuthMode", "Settings", "get_settings"]


class AuthMode(StrEnum):
    """How callers of our API are authenticated."""

    EASYAUTH = "easyauth"
    ENTRA_JWT = "entra-jwt"


class Settings(BaseSettings):
    """Every setting the app reads. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, populate_by_name=True)

    # --- Caller authentication (our API) -------------------------------------------------------
    auth_mode: AuthMode = Field(description="easyauth behind App Service Authentication, or entra-jwt")
    auth_audience: str = Field(
        description="Comma-separated accepted `aud` values: the API app registration's client id "
        "and/or its Application ID URI."
    )
    auth_issuer_tenants: str = Field(
        default="",
        description="Comma-separated operator tenant ids whose tokens are accepted (issuer allow-list). "
        "Empty accepts no caller at all in entra-jwt mode (fail closed).",
    )
    auth_authority_host: str = Field(
        default="https://login.microsoftonline.com",
        description="Entra authority host used for issuer and JWKS discovery.",
    )
    website_auth_enabled: bool = Field(
        default=False,
        description="Set by App Service when Authentication is on; easyauth mode fails closed without it.",
    )
    grant_cache_seconds: int = Field(
        default=30, ge=0,
        description="How long each process trusts a caller's grant without reading it again: a grant "
        "revoked in another process stays usable here for up to this long. 0 reads on every request.",
    )

    # --- App state storage (tables and blobs; not the Durable task hub) -----------------------
    storage_table_endpoint: str = Field(
        default="", description="https://<account>.table.core.windows.net (identity-based access)"
    )
    storage_blob_endpoint: str = Field(
        default="", description="https://<account>.blob.core.windows.net (identity-based access)"
    )
    storage_connection_string: SecretStr | None = Field(
        default=None, description="Local development only (Azurite). Never set in Azure."
    )
    azure_client_id: str = Field(
        default="", description="Client id of the user-assigned managed identity used for storage "
        "and Key Vault, and as the federated credential towards customer tenants."
    )
    table_prefix: str = Field(default="intune", description="Prefix of the app's table names.")
    snapshot_container: str = Field(default="policy-snapshots")

    # --- Microsoft Graph towards managed (customer) tenants ------------------------------------
    graph_base_url: str = Field(default="https://graph.microsoft.com")
    graph_authority_host: str = Field(default="https://login.microsoftonline.com")
    graph_ca_bundle: str = Field(
        default="", description="Local development only: CA bundle that signs the Graph simulator."
    )
    key_vault_url: str = Field(
        default="", description="https://<vault>.vault.azure.net/ holding Graph secrets and certificates."
    )
    graph_shared_budget: bool = Field(
        default=True, description="Keep each managed tenant's Graph request budget in the app's Table "
        "Storage, shared by every process and instance (false: each process keeps its own).",
    )
    graph_budget_fallback_share: int = Field(
        default=4, ge=1, description="While the shared budget's storage is unreachable, each process keeps "
        "to 1/N of the published limits (N: the processes expected to call one tenant at once).",
    )
    graph_budget_scale: float = Field(
        default=1.0, ge=1.0, le=100.0, description="Local development and tests only: divide the budget's "
        "limits and window by this, as the Graph simulator's throttling scale does (the rate stays the "
        "published one; only the burst a window allows shrinks).",
    )
    graph_retry_scale: float = Field(
        default=1.0, ge=1.0, le=100.0, description="Local development and tests only: divide the Graph "
        "client's backoff between attempts and the wait before an item, a plan or a write is tried again "
        "by this, when Graph named no wait (a Retry-After is always honoured in full).",
    )

    # --- Backup sets ------------------------------------------------------------------------------
    backup_set_capture_chunk: int = Field(
        default=CAPTURE_CHUNK, ge=1, le=MAX_CAPTURE_CHUNK,
        description="Items of a backup set captured by one activity (read concurrently, their outcomes "
        "written in one transaction per table); taken by runs planned after a change.",
    )

    # --- Webhooks (run events to Power Automate, Logic Apps, Teams workflows) ------------------
    webhook_encryption_key: SecretStr | None = Field(
        default=None, description="Comma-separated Fernet keys encrypting webhook URLs and signing secrets "
        "at rest (the first encrypts, any decrypts: rotation). A Key Vault reference in Azure; without it "
        "no subscription can be created.",
    )
    webhook_delivery_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Days a delivered webhook event stays listed under its "
        "subscription before an hourly timer deletes it (pending and parked ones are kept).",
    )
    webhook_allow_loopback: bool = Field(
        default=False, description="Local development only: accept webhook targets on loopback (http or "
        "https). Private and link-local ranges stay refused.",
    )
    public_api_base_url: str = Field(
        default="", description="Local development only: absolute base of the API for links in webhook "
        "payloads; in Azure they use https://<WEBSITE_HOSTNAME>/api.",
    )
    website_hostname: str = Field(default="", description="Set by App Service: the app's default host name.")

    @model_validator(mode="after")
    def _storage_configured(self) -> Settings:
        if self.storage_connection_string is None and not (
            self.storage_table_endpoint and self.storage_blob_endpoint
        ):
            raise ValueError(
                "storage is not configured: set STORAGE_TABLE_ENDPOINT and STORAGE_BLOB_ENDPOINT "
                "(or STORAGE_CONNECTION_STRING for local development)"
            )
        return self

    @property
    def audiences(self) -> list[str]:
        """Accepted token audiences."""
        return [a.strip() for a in self.auth_audience.split(",") if a.strip()]

    @property
    def issuer_tenants(self) -> list[str]:
        """Operator tenants allowed to call the API."""
        return [t.strip() for t in self.auth_issuer_tenants.split(",") if t.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
