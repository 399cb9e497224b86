"""What stands between a webhook and the network: target checks, secrets at rest, and the one HTTP send.

* :func:`check_target` accepts only ``https`` URLs whose host resolves to public addresses (no loopback,
  private, link-local, shared, multicast or reserved ranges), so a subscription cannot be aimed at the
  app's own network (SSRF). With ``allow_loopback`` (the local stack) loopback hosts are accepted too,
  over ``http`` or ``https``; private ranges stay refused.
* :class:`HttpWebhookSender` checks again at every delivery and then connects to the very address it
  checked (the TLS name and ``Host`` stay the URL's), so a DNS answer that changes after the check (DNS
  rebinding) cannot redirect a delivery. Redirects are not followed.
* :class:`SecretBox` encrypts target URLs and signing secrets at rest (Fernet: AES-128-CBC with an
  HMAC-SHA256 tag) under ``WEBHOOK_ENCRYPTION_KEY``; several comma-separated keys allow a rotation (the
  first encrypts, any decrypts).

Nothing here logs or raises a URL: errors carry our code only (:class:`TargetRefused`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "DeliveryResponse",
    "HttpWebhookSender",
    "Resolver",
    "SecretBox",
    "TargetRefused",
    "WebhookSender",
    "check_target",
    "system_resolver",
]

MAX_URL_LENGTH = 2048
SEND_TIMEOUT_SECONDS = 10.0

Resolver = Callable[[str, int], Sequence[str]]


class TargetRefused(Exception):
    """A target URL that may not be used; ``code`` says why (never the URL itself)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetRefused("webhook-host-unresolved", "the URL's host does not resolve") from None
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class CheckedTarget:
    """A target URL that passed :func:`check_target`, with the addresses it was checked at."""

    url: str
    parts: SplitResult
    host: str
    port: int
    addresses: tuple[str, ...]


def _address_allowed(address: str, *, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return allow_loopback
    # ``is_global`` is false for private, link-local, shared (100.64/10), documentation, reserved and
    # unspecified ranges; multicast is refused on its own.
    return ip.is_global and not ip.is_multicast


def check_target(url: str, *, allow_loopback: bool, resolve: Resolver = system_resolver) -> CheckedTarget:
    """Parse and check a webhook target; return it with the addresses it resolved to.

    Raises:
        TargetRefused: ``invalid-webhook-url`` (not an absolute http(s) URL, credentials in it, too long),
            ``webhook-url-not-https``, ``webhook-host-unresolved`` or ``webhook-url-not-allowed`` (resolves
            to a loopback, private, link-local or otherwise non-public address).
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or any(
            c.isspace() or ord(c) < 0x20 for c in url):
        raise TargetRefused("invalid-webhook-url", "url must be an absolute URL of at most 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise TargetRefused("invalid-webhook-url", "url is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise TargetRefused("invalid-webhook-url", "url must be an absolute https URL")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise TargetRefused("invalid-webhook-url", "url must not carry credentials or a fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = tuple(resolve(host, port))
    if not addresses:
        raise TargetRefused("webhook-host-unresolved", "the URL's host does not resolve")
    if not all(_address_allowed(a, allow_loopback=allow_loopback) for a in addresses):
        raise TargetRefused("webhook-url-not-allowed",
                            "url must point at a public host (not loopback, private or link-local)")
    loopback_only = all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)
    if parts.scheme != "https" and not (allow_loopback and loopback_only):
        raise TargetRefused("webhook-url-not-https", "url must use https")
    return CheckedTarget(url=url, parts=parts, host=host, port=port, addresses=addresses)


class SecretBox:
    """Encrypts and decrypts values at rest under the configured key ring."""

    def __init__(self, keys: str) -> None:
        """Create the box from comma-separated Fernet keys (url-safe base64 of 32 bytes); the first encrypts.

        Raises:
            ValueError: no key, or a key that is not a Fernet key.
        """
        ring = [k.strip() for k in keys.split(",") if k.strip()]
        if not ring:
            raise ValueError("WEBHOOK_ENCRYPTION_KEY is not set")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in ring])
        except (ValueError, TypeError):
            raise ValueError("WEBHOOK_ENCRYPTION_KEY is not a valid key") from None

    @staticmethod
    def generate_key() -> str:
        """A new key (the local stack makes one per launch; in Azure it lives in Key Vault)."""
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, value: str) -> str:
        """Ciphertext of ``value`` (a fresh IV each time)."""
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Plain text of a value made by :meth:`encrypt` under any key of the ring.

        Raises:
            ValueError: the token was not made under these keys, or was altered.
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise ValueError("a stored webhook secret does not decrypt with the configured keys") from None


@dataclass(frozen=True)
class DeliveryResponse:
    """What a receiver answered: a status (``None`` when none came back) and our code for failures."""

    status_code: int | None
    retry_after: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """The receiver accepted the delivery (2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    """Sends one signed delivery to a target."""

    def send(self, url: str, *, headers: dict[str, str], body: bytes) -> DeliveryResponse:
        """POST ``body`` to ``url`` once; never raises for network failures (they are a response too)."""
        ...


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date; the backoff applies instead
    return seconds if seconds >= 0 else None


class HttpWebhookSender:
    """Sends deliveries over HTTP(S), checking the target and pinning the checked address."""

    def __init__(self, *, allow_loopback: bool, resolve: Resolver = system_resolver,
                 timeout: float = SEND_TIMEOUT_SECONDS, user_agent: str = "intune-backup-webhooks") -> None:
        self._allow_loopback = allow_loopback
        self._resolve = resolve
        self._user_agent = user_agent
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def send(self, url: str, *, headers: dict[str, str], body: bytes) -> DeliveryResponse:
        """POST once to the address the check resolved (TLS name and ``Host`` are the URL's)."""
        try:
            target = check_target(url, allow_loopback=self._allow_loopback, resolve=self._resolve)
        except TargetRefused as refused:
            return DeliveryResponse(None, error=refused.code)
        address = target.addresses[0]
        netloc_host = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((target.parts.scheme, f"{netloc_host}:{target.port}", target.parts.path or "/",
                             target.parts.query, ""))
        host_header = target.parts.netloc.rsplit("@", 1)[-1]
        request_headers = {**headers, "Host": host_header, "User-Agent": self._user_agent}
        try:
            response = self._client.post(pinned, content=body, headers=request_headers,
                                         extensions={"sni_hostname": target.host})
        except httpx.TimeoutException:
            return DeliveryResponse(None, error="webhook-timeout")
        except httpx.HTTPError:
            # The exception's text names the URL: only our code is kept.
            return DeliveryResponse(None, error="webhook-unreachable")
        status = response.status_code
        return DeliveryResponse(status, retry_after=_retry_after(response.headers.get("Retry-After")),
                                error="" if 200 <= status < 300 else f"http-{status}")

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
