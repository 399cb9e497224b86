"""Graph credential references resolve at run time and never reveal a value in errors."""

from __future__ import annotations

import pytest

from shared.credentials import CredentialUnavailable, resolve_credential


def test_app_setting_reference_reads_the_setting() -> None:
    cred = resolve_credential(kind="appSetting", name="GRAPH_CREDENTIAL_X",
                              environ={"GRAPH_CREDENTIAL_X": "s3cr3t"})
    assert cred.value == "s3cr3t"


def test_missing_app_setting_names_the_setting_not_a_value() -> None:
    with pytest.raises(CredentialUnavailable) as info:
        resolve_credential(kind="appSetting", name="GRAPH_CREDENTIAL_MISSING", environ={"OTHER": "s3cr3t"})
    assert "GRAPH_CREDENTIAL_MISSING" in str(info.value)
    assert "s3cr3t" not in str(info.value)
    assert info.value.instance_code == "graph-credential-unavailable"


def test_federated_credential_is_an_assertion_callable_using_the_managed_identity() -> None:
    seen: list[tuple[str, str]] = []

    def token(scope: str, client_id: str) -> str:
        seen.append((scope, client_id))
        return "assertion-jwt"

    cred = resolve_credential(kind="federatedManagedIdentity", name="", managed_identity_client_id="mi-1",
                              token_provider=token)
    assert isinstance(cred.value, dict)
    assert cred.value["client_assertion"]() == "assertion-jwt"
    assert seen == [("api://AzureADTokenExchange/.default", "mi-1")]


def test_key_vault_reference_without_a_vault_is_unavailable() -> None:
    with pytest.raises(CredentialUnavailable):
        resolve_credential(kind="keyVaultSecret", name="graph-secret", key_vault_url="")


def test_unknown_reference_type_is_refused() -> None:
    with pytest.raises(CredentialUnavailable):
        resolve_credential(kind="plaintext", name="x")


def test_an_app_setting_that_is_not_a_graph_credential_is_never_read() -> None:
    with pytest.raises(CredentialUnavailable):
        resolve_credential(kind="appSetting", name="STORAGE_CONNECTION_STRING",
                           environ={"STORAGE_CONNECTION_STRING": "AccountKey=abc"})


def test_a_tenant_cannot_reference_an_arbitrary_app_setting() -> None:
    from pydantic import ValidationError

    from shared.domain import CredentialRef

    with pytest.raises(ValidationError):
        CredentialRef(type="appSetting", name="AzureWebJobsStorage")
    allowed = CredentialRef(type="appSetting", name="GRAPH_CREDENTIAL_CONTOSO")
    assert allowed.name == "GRAPH_CREDENTIAL_CONTOSO"
