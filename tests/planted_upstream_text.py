"""Secrets of many shapes, planted in what Graph and Entra send back, for tests that prove none of it is kept.

Each entry is ``(text Graph or Entra sends, needle)``: the needle is the secret part, searched for in
everything we store, log or return. Most shapes carry no marker word a deny-list could key on.
"""

from __future__ import annotations

PLANTED: dict[str, tuple[str, str]] = {
    # A random 40-character string, alone: no marker word at all.
    "random40": ("q7Vb2XkL9mZ4pR1sT8wY3nC6hJ0fD5gA2eU7iO4x", "q7Vb2XkL9mZ4pR1sT8wY3nC6hJ0fD5gA2eU7iO4x"),
    "the-value-is": ("the value is Wq3Ld8Rt5Zy1Hk7Nm2Bv6Cx9Pf4Gs0Jj", "Wq3Ld8Rt5Zy1Hk7Nm2Bv6Cx9Pf4Gs0Jj"),
    "aadsts": ("AADSTS7000215: Invalid client secret provided: Tz5Kq8Yw2Xe7Rv4Nm1Bp6Lc3Hd9Gf0Sa",
               "Tz5Kq8Yw2Xe7Rv4Nm1Bp6Lc3Hd9Gf0Sa"),
    "jwt": ("eyJhbGciOiJSUzI1NiJ9.eyJwbGFudGVkIjoiand0In0.cGxhbnRlZC1zaWduYXR1cmUtdmFsdWU",
            "cGxhbnRlZC1zaWduYXR1cmUtdmFsdWU"),
    "client-secret": ("abc8Q~Xy7Zq2Lm9Np4Rt6Vw1Bc3Df5Gh8Jk0Ls", "Xy7Zq2Lm9Np4Rt6Vw1Bc3Df5Gh8Jk0Ls"),
    "sas-sig": ("https://acct.blob.core.windows.net/c/b?sv=2024-08-04&sr=b&sig=Pl4nt3dS4sS1gn4tur3Vb7Xq2%3D",
                "Pl4nt3dS4sS1gn4tur3Vb7Xq2"),
    "pem": ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANPlantedPemBodyQ7xR2yT9\n-----END PRIVATE KEY-----",
            "MIIEvQIBADANPlantedPemBodyQ7xR2yT9"),
    "password-phrase": ("the admin password is Tr0ub4dorHorseStaple93 please rotate it",
                        "Tr0ub4dorHorseStaple93"),
    # Graph's own wording, to prove no free text at all is kept (not only secrets).
    "plain-words": ("zebra umbrella quorum nebula", "zebra umbrella quorum"),
}

NEEDLES: dict[str, str] = {name: needle for name, (_, needle) in PLANTED.items()}


def planted_message() -> str:
    """One message carrying every planted shape, as a hostile or careless upstream might send."""
    return " | ".join(text for text, _ in PLANTED.values())


def leaks(text: str) -> list[str]:
    """Names of the planted shapes found in ``text``."""
    return [name for name, needle in NEEDLES.items() if needle in text]
