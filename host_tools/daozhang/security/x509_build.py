"""X.509 objects for the fleet PKI, without files: the CA, a signed leaf, the CRL.

`security.pki` decides who gets what and keeps it on disk; this module only builds and signs,
so the certificate profile (EC P-256, SHA-256, the extensions OpenSSL and mbedtls check) is
in one place.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SKEW = dt.timedelta(hours=1)  # a device clock slightly behind must still accept a fresh cert
SERVER = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # "EC PRIVATE KEY": what mbedtls parses
        serialization.NoEncryption(),
    )


def fleet_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "daozhang fleet"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def valid_from(start: dt.datetime, skew: dt.timedelta, earliest: dt.datetime | None) -> dt.datetime:
    """notBefore: `start` less the skew, or `earliest` when that is earlier (a PKI issued for
    devices whose clocks stand on a day before today, such as a replayed business day)."""
    first = start - skew
    return first if earliest is None else min(first, earliest)


def new_ca(days: int, earliest: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed CA that may sign leaves and CRLs only; (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = now()
    name = fleet_name("daozhang fleet CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from(start, SKEW, earliest))
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def sign_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    valid_for: dt.timedelta,
    sans: list[x509.GeneralName] | None = None,
    skew: dt.timedelta = SKEW,
    earliest: dt.datetime | None = None,
) -> tuple[bytes, bytes, int]:
    """A new key and its certificate, never outliving the CA; (cert PEM, key PEM, serial)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = now()
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(fleet_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(valid_from(start, skew, earliest))
        .not_valid_after(min(start + valid_for, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key), serial


def build_crl(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, serials: list[int], days: int
) -> bytes:
    """The CRL listing `serials`, valid for `days`, as PEM."""
    start = now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(start - SKEW)
        .next_update(start + dt.timedelta(days=days))
    )
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(start).build()
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
