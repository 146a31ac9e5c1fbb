"""The fleet PKI: one CA, the broker's server certificate, one client identity per device.

Layout of a PKI directory (everything a device needs sits in one folder, named like the
credential slots `daozhang flash` writes to `/secrets/` on the board):

    ca/ca.key ca/ca.crt ca/crl.pem        the fleet CA and its revocation list
    server/server.key server/server.crt   the broker (SAN: localhost, 127.0.0.1, --host ...)
    devices/<id>/ca.pem client.crt client.key [password]
    collectors/<name>/ca.pem client.crt client.key
    passwd                                mosquitto password file (devices without certs)
    index.json                            who was issued what, and what is revoked

A device's identity is the certificate's CN (or its broker username): the broker's ACL ties
topics to it, never to the MQTT client id. Collector identities are `collector.<name>`: the dot
cannot occur in a device id, so no device can ever be issued a collector's name.
The per-device HMAC key is not here: it lives in the collector's key store (`daozhang flash`
makes and registers it), so there is one source of truth for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daozhang.errors import DaozhangError, UsageError
from daozhang.security import passwords
from daozhang.security.x509_build import CLIENT, SERVER, SKEW, build_crl, new_ca, now, sign_leaf

DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{4,32}")
COLLECTOR_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
COLLECTOR_PREFIX = "collector."
_ONE_OFF_SKEW = dt.timedelta(minutes=5)  # only the broker checks a one-off cert: host clocks


def _write(path: Path, data: bytes, secret: bool = False) -> None:
    """Atomic write; secrets are created 0600 so they are never readable, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Identity:
    name: str  # CN = broker username
    role: str  # "device" | "collector"
    folder: Path


class Pki:
    """One PKI directory. Methods raise `DaozhangError` with the path when something is off."""

    def __init__(self, root: Path, valid_from: dt.datetime | None = None) -> None:
        self.root = root
        # Certificates issued here are valid from this time when it is earlier than the usual
        # (now less the skew): for devices whose clocks stand on an earlier day, as the lab's
        # simulated fleets replaying a past business day do. None: the usual.
        self.valid_from = valid_from

    # -- paths --------------------------------------------------------------------------
    @property
    def ca_cert_path(self) -> Path:
        return self.root / "ca" / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def crl_path(self) -> Path:
        return self.root / "ca" / "crl.pem"

    @property
    def server_cert_path(self) -> Path:
        return self.root / "server" / "server.crt"

    @property
    def server_key_path(self) -> Path:
        return self.root / "server" / "server.key"

    @property
    def password_path(self) -> Path:
        return self.root / "passwd"

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def device_dir(self, device_id: str) -> Path:
        return self.root / "devices" / device_id

    def collector_dir(self, name: str) -> Path:
        return self.root / "collectors" / name

    # -- index --------------------------------------------------------------------------
    def _index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            raise DaozhangError(f"{self.root}: not a PKI directory (run `daozhang pki init`)")
        data: dict[str, Any] = json.loads(self.index_path.read_text())
        return data

    def _save_index(self, index: dict[str, Any]) -> None:
        _write(self.index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())

    def identities(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = self._index()["identities"]
        return found

    # -- CA -----------------------------------------------------------------------------
    def init(self, hosts: list[str], days: int = 3650, force: bool = False) -> None:
        if self.index_path.exists() and not force:
            raise DaozhangError(f"{self.root}: a PKI already exists here (--force replaces it)")
        cert_pem, key_pem = new_ca(days, self.valid_from)
        _write(self.ca_key_path, key_pem, secret=True)
        _write(self.ca_cert_path, cert_pem)
        self._save_index({"version": 1, "identities": {}, "revoked": []})
        self.write_crl()
        self.issue_server(hosts, days=min(days, 825))

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise DaozhangError(f"{self.ca_key_path}: not an EC key")
        return cert, key

    def _sign(
        self,
        common_name: str,
        usage: x509.ObjectIdentifier,
        valid_for: dt.timedelta,
        sans: list[x509.GeneralName] | None = None,
        skew: dt.timedelta = SKEW,
    ) -> tuple[bytes, bytes, int]:
        ca_cert, ca_key = self._ca()
        return sign_leaf(
            ca_cert, ca_key, common_name, usage, valid_for, sans, skew, self.valid_from
        )

    def issue_server(self, hosts: list[str], days: int = 825) -> None:
        sans: list[x509.GeneralName] = []
        for host in ["localhost", "127.0.0.1", *hosts]:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        cert, key, _ = self._sign(
            hosts[0] if hosts else "localhost", SERVER, dt.timedelta(days=days), sans
        )
        _write(self.server_key_path, key, secret=True)
        _write(self.server_cert_path, cert)

    # -- identities ---------------------------------------------------------------------
    def issue_device(
        self, device_id: str, days: int = 1825, cert: bool = True, password: bool = False
    ) -> Identity:
        if not DEVICE_ID.fullmatch(device_id):
            raise UsageError(f"device id {device_id!r}: must match [A-Za-z0-9_-]{{4,32}}")
        if not cert and not password:
            raise UsageError(f"{device_id}: --no-cert needs --password (no way to connect)")
        folder = self.device_dir(device_id)
        self._issue(device_id, "device", folder, days, cert, password)
        return Identity(device_id, "device", folder)

    def issue_collector(self, name: str, days: int = 825) -> Identity:
        if not COLLECTOR_NAME.fullmatch(name):
            raise UsageError(f"collector name {name!r}: must match [A-Za-z0-9_-]{{1,32}}")
        folder = self.collector_dir(name)
        self._issue(COLLECTOR_PREFIX + name, "collector", folder, days, True, False)
        return Identity(COLLECTOR_PREFIX + name, "collector", folder)

    def _issue(
        self, name: str, role: str, folder: Path, days: int, cert: bool, password: bool
    ) -> None:
        index = self._index()
        known = index["identities"].get(name)
        if known is not None and not known.get("revoked"):
            raise DaozhangError(f"{name}: already issued (revoke it first to re-issue)")
        entry: dict[str, Any] = {"role": role, "revoked": False, "issued": now().isoformat()}
        if cert:
            cert_pem, key_pem, serial = self._sign(name, CLIENT, dt.timedelta(days=days))
            _write(folder / "client.key", key_pem, secret=True)
            _write(folder / "client.crt", cert_pem)
            _write(folder / "ca.pem", self.ca_cert_path.read_bytes())
            entry["serial"] = format(serial, "x")
        else:
            for stale in ("client.key", "client.crt"):
                (folder / stale).unlink(missing_ok=True)
            _write(folder / "ca.pem", self.ca_cert_path.read_bytes())
        if password:
            secret = secrets.token_urlsafe(18)
            _write(folder / "password", secret.encode(), secret=True)
            entries = passwords.read_password_file(self.password_path)
            entries[name] = passwords.hash_password(secret)
            _write(self.password_path, passwords.render_password_file(entries).encode())
            entry["password"] = True
        index["identities"][name] = entry
        self._save_index(index)

    def revoke(self, name: str) -> dict[str, Any]:
        index = self._index()
        entry = index["identities"].get(name)
        if entry is None:
            raise DaozhangError(f"{name}: no such identity in {self.root}")
        if entry.get("serial") and entry["serial"] not in index["revoked"]:
            index["revoked"].append(entry["serial"])
        entry["revoked"] = True
        entry["revoked_at"] = now().isoformat()
        self._save_index(index)
        entries = passwords.read_password_file(self.password_path)
        if entries.pop(name, None) is not None or self.password_path.exists():
            _write(self.password_path, passwords.render_password_file(entries).encode())
        self.write_crl()
        result: dict[str, Any] = entry
        return result

    def identity_dir(self, name: str) -> Path:
        """The folder of an identity's credentials: a device id or `collector.NAME`."""
        if name.startswith(COLLECTOR_PREFIX):
            return self.collector_dir(name[len(COLLECTOR_PREFIX) :])
        return self.device_dir(name)

    def sign_one_off(self, name: str, valid_for: dt.timedelta) -> tuple[bytes, bytes]:
        """A client certificate and key for `name` that nobody keeps: not in the index, never
        in the PKI directory, valid for `valid_for` (`daozhang pki cut` uses one to take a
        revoked identity's broker session over). Returns (certificate PEM, key PEM)."""
        if name not in self.identities():
            raise DaozhangError(f"{name}: no such identity in {self.root}")
        cert_pem, key_pem, _ = self._sign(name, CLIENT, valid_for, skew=_ONE_OFF_SKEW)
        return cert_pem, key_pem

    def note_cut(self, name: str) -> None:
        """Record in the index when a cut took `name`'s broker session over."""
        index = self._index()
        index["identities"][name].setdefault("cuts", []).append(now().isoformat())
        self._save_index(index)

    def write_crl(self, days: int = 365) -> None:
        """Re-sign the CRL. OpenSSL refuses every client once it expires: re-run well before."""
        ca_cert, ca_key = self._ca()
        serials = [int(serial, 16) for serial in self._index()["revoked"]]
        _write(self.crl_path, build_crl(ca_cert, ca_key, serials, days))

    def ensure_password_file(self) -> Path:
        if not self.password_path.exists():
            _write(self.password_path, b"")
        return self.password_path
