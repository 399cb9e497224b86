"""One redaction function for logs and stored errors: every kind of credential we know of is removed."""

from __future__ import annotations

import logging

import pytest

from shared.redaction import REDACTED, RedactingFilter, redact

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0aWQiOiJ0In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(("text", "secret"), [
    (f"Authorization: Bearer {JWT}", JWT),
    ("authorization=Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    (f"token was {JWT} in the body", JWT),
    ("client_secret=Zx8Q~abcDEF123&scope=x", "Zx8Q~abcDEF123"),
    ('{"client_assertion": "abc.def.ghi"}', "abc.def.ghi"),
    ("https://acct.blob.core.windows.net/c/b?sv=2024&sig=AbC%2Fdef%3D&se=1", "AbC%2Fdef%3D"),
    ("https://app.azurewebsites.net/api/x?code=functionKey123==", "functionKey123"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy==;", "Zm9vYmFy"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQIBADANBg"),
    ('{"access_token":"opaque-token-value"}', "opaque-token-value"),
    ("x-ms-client-principal: eyJhdXRoX3R5cCI6ImFhZCJ9", "eyJhdXRoX3R5cCI6ImFhZCJ9"),
])
def test_credentials_are_removed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_plain_messages_are_kept_and_long_ones_capped() -> None:
    assert redact("Policy 'Win - Baseline' was not found") == "Policy 'Win - Baseline' was not found"
    assert len(redact("x" * 5000)) == 500
    assert redact(None) == ""


def test_the_log_filter_redacts_rendered_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="tests.redaction"):
        logger.info("calling graph headers=%s", {"Authorization": f"Bearer {JWT}"})
    assert JWT not in caplog.text
    assert REDACTED in caplog.text


def test_the_log_filter_redacts_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.redaction.tracebacks")
    logger.addFilter(RedactingFilter())
    callback = "https://prod.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sv=1&sig=S3cretSig"
    with caplog.at_level(logging.ERROR, logger="tests.redaction.tracebacks"):
        try:
            raise RuntimeError(f"POST {callback} failed")
        except RuntimeError:
            logger.exception("webhook delivery failed")
    assert "S3cretSig" not in caplog.text
    assert "RuntimeError" in caplog.text
