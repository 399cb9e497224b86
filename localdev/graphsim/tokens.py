"""Signing keys, JWKS and the tokens the simulator issues (Graph app tokens and caller tokens)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["GRAPH_AUDIENCES", "GRAPH_RESOURCE", "SigningKey", "TokenError"]

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = (GRAPH_RESOURCE, GRAPH_RESOURCE + "/", GRAPH_APP_ID)
TOKEN_LIFETIME = 3599


class TokenError(Exception):
    """A bearer token that Graph would refuse; ``expired`` picks the error message."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass
class SigningKey:
    """The simulator's RS256 key: signs every token it issues, published as JWKS."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh 2048-bit key with a random key id."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(private_key=key, kid=uuid.uuid4().hex[:27])

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (one RS256 signing key)."""
        jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "kty": "RSA"})
        return {"keys": [jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign ``claims`` as an RS256 JWT with this key's ``kid``."""
        return jwt.encode(claims, self.private_key, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT"})

    def graph_app_token(self, *, tenant_id: str, client_id: str, roles: list[str],
                        lifetime: int = TOKEN_LIFETIME) -> str:
        """An app-only Graph access token as Entra issues it for client credentials."""
        now = int(time.time())
        return self.sign({
            "aud": GRAPH_RESOURCE, "iss": f"https://sts.windows.net/{tenant_id}/",
            "iat": now, "nbf": now, "exp": now + lifetime, "tid": tenant_id,
            "appid": client_id, "azp": client_id, "idtyp": "app", "oid": str(uuid.uuid4()),
            "sub": client_id, "roles": sorted(roles), "ver": "1.0", "uti": uuid.uuid4().hex[:22],
        })

    def verify_graph_token(self, token: str) -> dict[str, Any]:
        """Validate a bearer token for Graph: signature, lifetime and audience.

        Raises:
            TokenError: The token is malformed, badly signed, expired or for another audience.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self.private_key.public_key(), algorithms=["RS256"],
                audience=list(GRAPH_AUDIENCES), options={"require": ["exp", "tid"]}, leeway=0)
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("Lifetime validation failed, the token is expired.",
                             expired=True) from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("Access token has expired or is not yet valid.",
                             expired=True) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("Invalid audience.") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("Access token validation failure.") from exc
        return claims
