"""The host's MQTT clients (collector, `pki cut`, tests, demo): the broker's URL, and TLS from a
PKI identity folder."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509
from cryptography.x509.oid import NameOID

from daozhang.errors import DaozhangError, UsageError


def parse_broker(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
        raise UsageError(f"bad broker URL {url!r}: expected mqtt://HOST:PORT or mqtts://...")
    return parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)


def client_context(folder: Path) -> ssl.SSLContext:
    """Verify the broker against the fleet CA (hostname included) and present the identity's
    client certificate: `folder` holds `ca.pem`, `client.crt`, `client.key` (`daozhang pki`)."""
    paths = [folder / name for name in ("ca.pem", "client.crt", "client.key")]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DaozhangError(f"TLS identity incomplete: missing {', '.join(missing)}")
    context = ssl.create_default_context(cafile=str(paths[0]))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(paths[1]), str(paths[2]))
    return context


def certificate_identity(folder: Path) -> str:
    """The CN of the identity's client certificate: what the broker calls the client."""
    path = folder / "client.crt"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DaozhangError(f"{path}: cannot read the client certificate: {exc}") from exc
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise DaozhangError(f"{path}: the client certificate has no CN")
    return str(names[0].value)
