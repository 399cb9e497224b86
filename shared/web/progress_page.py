"""The live progress page: one self-contained HTML document and the headers that lock it down.

The page is static: it carries no data and no credentials, so it can be served without authenticating the
request (on the local stack a browser has no way to put a bearer token on a navigation). Its script reads
``GET /api/progress`` as the signed-in caller; see ``progress.js`` for how the credentials reach it.

Script and style are inlined and allowed by their SHA-256 in the Content-Security-Policy, so nothing else
can run in the page, it can talk to no other origin, and no other site can frame it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["PROGRESS_PAGE_ROUTE", "Page", "progress_page"]

# Relative to the API root; the script finds the API one level up from the page.
PROGRESS_PAGE_ROUTE = "progress/page"
_STYLE_SLOT = "/*STYLE*/"
_SCRIPT_SLOT = "/*SCRIPT*/"


@dataclass(frozen=True)
class Page:
    """A page's HTML and the response headers it must be served with."""

    html: str
    headers: dict[str, str]


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def progress_page() -> Page:
    """The progress page with its script and style inlined, and its security headers."""
    style, script = _read("progress.css"), _read("progress.js")
    for source in (style, script):
        # An inlined asset must not be able to close its own element.
        if "</" in source:
            raise ValueError("an inlined asset must not contain '</'")
    html = _read("progress.html").replace(_STYLE_SLOT, style, 1).replace(_SCRIPT_SLOT, script, 1)
    policy = "; ".join((
        "default-src 'none'",
        f"script-src {_csp_hash(script)}",
        f"style-src {_csp_hash(style)}",
        "connect-src 'self'",
        "img-src data:",  # the empty favicon; the page shows no other image
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ))
    headers = {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        # The page is the same for everyone; revalidate so a new deployment's page is picked up.
        "Cache-Control": "no-cache",
    }
    return Page(html=html, headers=headers)
