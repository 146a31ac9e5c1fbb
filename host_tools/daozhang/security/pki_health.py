"""When each part of a fleet's PKI stops working, read from the files the broker and the
devices actually use (not from the index): the CA, the broker's certificate, the CRL's next
update (past it, OpenSSL refuses *every* client), and each active identity's certificate.

`daozhang pki check` turns this into a yes/no a monitoring job can run daily.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from daozhang.errors import DaozhangError
from daozhang.security.pki import Pki

# What to do about each kind of deadline, said once where the problem is reported.
_REMEDY = {
    "CRL": "re-sign it: daozhang pki crl --dir DIR, then SIGHUP the broker",
    "CA": "a new CA means re-issuing every identity: plan it well ahead",
    "broker": "re-issue the broker certificate (daozhang pki init --force re-creates the PKI)",
    "device": "issue a new certificate: daozhang pki revoke, then pki issue and re-flash",
    "collector": "issue a new one: daozhang pki revoke collector.NAME, then pki issue --collector",
}


@dataclass(frozen=True)
class Deadline:
    kind: str  # "CRL" | "CA" | "broker" | "device" | "collector"
    name: str
    path: Path
    ends: dt.datetime | None  # None: the file the broker or device needs is missing

    def days_left(self, now: dt.datetime) -> float | None:
        return None if self.ends is None else (self.ends - now).total_seconds() / 86_400


def _end(path: Path, crl: bool = False) -> dt.datetime | None:
    """A certificate's end of validity, or a CRL's next update; None if the file is missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        if crl:
            return x509.load_pem_x509_crl(data).next_update_utc
        return x509.load_pem_x509_certificate(data).not_valid_after_utc
    except ValueError as exc:
        raise DaozhangError(f"{path}: not a PEM {'CRL' if crl else 'certificate'} ({exc})") from exc


def deadlines(pki: Pki) -> list[Deadline]:
    """Every deadline of the PKI, soonest first (missing files first of all)."""
    found = [
        Deadline("CRL", "crl.pem", pki.crl_path, _end(pki.crl_path, crl=True)),
        Deadline("CA", "ca.crt", pki.ca_cert_path, _end(pki.ca_cert_path)),
        Deadline("broker", "server.crt", pki.server_cert_path, _end(pki.server_cert_path)),
    ]
    for name, entry in pki.identities().items():
        if entry.get("revoked") or not entry.get("serial"):
            continue  # a revoked identity no longer matters; a password-only one has no cert
        role = str(entry.get("role", "device"))
        if role == "collector":
            folder = pki.collector_dir(name.removeprefix("collector."))
        else:
            folder = pki.device_dir(name)
        path = folder / "client.crt"
        found.append(Deadline(role, name, path, _end(path)))
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda d: (d.ends is not None, d.ends or never, d.name))


def problems(found: list[Deadline], now: dt.datetime, warn_days: float) -> list[str]:
    """One line per deadline that is missing, past, or within `warn_days`."""
    lines = []
    for d in found:
        left = d.days_left(now)
        label = f"{d.kind} {d.name}" if d.kind in ("device", "collector") else d.kind
        if left is None:
            lines.append(f"{label}: {d.path} is missing; {_REMEDY[d.kind]}")
        elif left <= 0:
            lines.append(
                f"{label}: expired {d.ends:%Y-%m-%d %H:%M} UTC ({d.path}); {_REMEDY[d.kind]}"
            )
        elif left <= warn_days:
            lines.append(
                f"{label}: expires in {left:.0f} days, {d.ends:%Y-%m-%d} ({d.path}); "
                f"{_REMEDY[d.kind]}"
            )
    return lines
