"""A throwaway CA and a server certificate for ``localhost`` / ``127.0.0.1``, made at start-up."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme

__all__ = ["make_server_tls"]


def make_server_tls(tls_dir: Path) -> tuple[ssl.SSLContext, Path]:
    """Create a CA and a server certificate, write ``ca.pem`` and return the server SSL context.

    Args:
        tls_dir: Folder for ``ca.pem`` (what clients trust) and ``server.pem``.

    Returns:
        The server-side SSL context and the path of ``ca.pem``.
    """
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Graph simulator local CA")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file = tls_dir / "ca.pem"
    # Write to a temp name then rename, so a client polling for the file never reads half of it.
    tmp = tls_dir / "ca.pem.tmp"
    ca.cert_pem.write_to_path(str(tmp))
    tmp.replace(ca_file)
    cert.private_key_and_cert_chain_pem.write_to_path(str(tls_dir / "server.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx, ca_file
