"""A Graph client is tied to the credential it was built with, and can be dropped when Entra refuses it."""

from __future__ import annotations

import pytest

from shared.graph.factory import GraphClientFactory


def test_a_client_needs_a_credential_only_the_first_time_and_forget_drops_it() -> None:
    factory = GraphClientFactory(graph_base_url="https://graph.example", authority_host="https://login.example")
    ids = {"tenant_id": "t1", "client_id": "c1", "credential_key": "keyVaultSecret:contoso"}
    assert not factory.knows(**ids)
    with pytest.raises(ValueError, match="credential"):
        factory.get(**ids)

    first = factory.get(**ids, credential="secret-v1")
    assert factory.knows(**ids)
    assert factory.get(**ids) is first  # no credential needed, no second resolution

    # A tenant re-registered with another credential reference gets its own client.
    assert not factory.knows(tenant_id="t1", client_id="c1", credential_key="keyVaultSecret:rotated")

    factory.forget(**ids)
    assert not factory.knows(**ids)
    assert factory.get(**ids, credential="secret-v2") is not first
