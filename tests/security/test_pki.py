"""`daozhang pki`: CA, server certificate, device certificates, passwords, revocation."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from daozhang.cli import main
from daozhang.errors import DaozhangError, UsageError
from daozhang.security import passwords
from daozhang.security.pki import Pki
from daozhang.security.tlsclient import certificate_identity


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_init_issue_revoke_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pki_dir = tmp_path / "pki"
    assert main(["pki", "init", "--dir", str(pki_dir), "--host", "broker.example"]) == 0
    assert main(["pki", "issue", "term0001", "--dir", str(pki_dir)]) == 0
    assert main(["pki", "issue", "term0002", "--dir", str(pki_dir), "--password"]) == 0
    assert main(["pki", "issue", "main", "--collector", "--dir", str(pki_dir)]) == 0
    pki = Pki(pki_dir)
    ca = _cert(pki.ca_cert_path)

    server = _cert(pki.server_cert_path)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert {"localhost", "broker.example"} <= set(sans.get_values_for_type(x509.DNSName))
    assert _signed_by(server, ca)

    device = _cert(pki.device_dir("term0001") / "client.crt")
    cn = device.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "term0001"
    eku = device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert _signed_by(device, ca)
    assert not _signed_by(device, _cert(pki.server_cert_path))

    # Secrets are private; the flash slots are all in one folder.
    for secret in (pki.ca_key_path, pki.device_dir("term0001") / "client.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    slots = {p.name for p in pki.device_dir("term0001").iterdir()}
    assert slots == {"ca.pem", "client.crt", "client.key"}

    # The password file holds the mosquitto $7$ hash of the device's password.
    stored = passwords.read_password_file(pki.password_path)
    secret = (pki.device_dir("term0002") / "password").read_text()
    assert passwords.check_password(secret, stored["term0002"])
    assert not passwords.check_password(secret + "x", stored["term0002"])

    serial = device.serial_number
    crl = x509.load_pem_x509_crl(pki.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is None
    assert main(["pki", "revoke", "term0001", "--dir", str(pki_dir)]) == 0
    assert main(["pki", "revoke", "term0002", "--dir", str(pki_dir)]) == 0
    crl = x509.load_pem_x509_crl(pki.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert "term0002" not in passwords.read_password_file(pki.password_path)

    capsys.readouterr()
    assert main(["pki", "list", "--dir", str(pki_dir)]) == 0
    listing = capsys.readouterr().out
    assert "term0001" in listing and "revoked" in listing and "collector.main" in listing


def test_mistakes_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    pki = Pki(tmp_path)
    with pytest.raises(DaozhangError, match="not a PKI directory"):
        pki.issue_device("term0001")
    pki.init([])
    with pytest.raises(DaozhangError, match="already exists"):
        pki.init([])
    for bad in ("ab", "has/slash", "collector.main", "x" * 33, "a+b#c"):
        with pytest.raises(UsageError, match="must match"):
            pki.issue_device(bad)
    pki.issue_device("term0001")
    with pytest.raises(DaozhangError, match="already issued"):
        pki.issue_device("term0001")
    pki.revoke("term0001")
    pki.issue_device("term0001")  # re-enrolment after revocation: a new serial
    with pytest.raises(DaozhangError, match="no such identity"):
        pki.revoke("nobody00")
    assert main(["pki", "issue", "??", "--dir", str(tmp_path)]) == 2
    assert "must match" in capsys.readouterr().err


def test_password_hash_matches_mosquitto_passwd(tmp_path: Path):
    """Our $7$ lines are what the real `mosquitto_passwd` writes (same salt and iterations)."""
    import base64
    import shutil
    import subprocess

    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(path), "term0001", "s3cret"], check=True)
    stored = passwords.read_password_file(path)["term0001"]
    assert passwords.check_password("s3cret", stored)
    _, _, iterations, salt, _ = stored.split("$")
    assert passwords.hash_password("s3cret", base64.b64decode(salt), int(iterations)) == stored


def test_an_identity_folder_names_the_identity_the_broker_knows(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_collector("main")
    folder = pki.identity_dir("collector.main")
    assert folder == pki.collector_dir("main")
    assert certificate_identity(folder) == "collector.main"
    (folder / "client.crt").write_text("not a certificate")
    with pytest.raises(DaozhangError, match=r"client\.crt: cannot read the client certificate"):
        certificate_identity(folder)


def test_a_one_off_certificate_is_short_lived_and_leaves_no_trace(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init([])
    pki.issue_device("POS0001")
    before = sorted(p.relative_to(pki.root) for p in pki.root.rglob("*"))
    index = pki.index_path.read_text()
    cert_pem, _ = pki.sign_one_off("POS0001", dt.timedelta(minutes=5))
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "POS0001"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(minutes=10)
    assert sorted(p.relative_to(pki.root) for p in pki.root.rglob("*")) == before
    assert pki.index_path.read_text() == index
    with pytest.raises(DaozhangError, match="no such identity"):
        pki.sign_one_off("POS9999", dt.timedelta(minutes=5))
