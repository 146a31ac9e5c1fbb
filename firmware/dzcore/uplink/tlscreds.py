# TLS credentials from the flash credential slots, and the clock policy for their validity.
#
# Slots (written by `daozhang flash`): /secrets/ca.pem (the fleet CA), /secrets/client.crt and
# /secrets/client.key (this device's identity; absent on boards that use a password). PEM or
# DER; PEM is turned into DER here because not every port's mbedtls parses PEM.
#
# Clock policy: the broker's certificate dates are checked by the port's TLS stack against the
# board's time source; the agent checks the certificates it holds (the CA and its own) against
# the best time it has: the clock when it is set (NTP, modem, the ack's `now`), else the
# persisted last-known time (a lower bound: real time is never earlier). No time at all means
# no TLS session (never "skip the check"); a session opened on the lower bound alone is
# provisional and re-checked as soon as the clock is set.
import binascii

from micropython import const

_SKEW_S = const(3600)  # a cert issued "now" on the host must not fail on a device 1 h behind
_DAY_S = const(86400)


class CredentialError(Exception):
    pass


class CertTimeError(Exception):
    pass


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def pem_to_der(data):
    # The first PEM block's bytes; DER input is returned as it is.
    if not data.startswith(b"-----BEGIN"):
        return data
    lines = data.split(b"\n")
    body = []
    inside = False
    for raw in lines:
        line = raw.strip()
        if line.startswith(b"-----BEGIN"):
            inside = True
        elif line.startswith(b"-----END"):
            break
        elif inside and line:
            body.append(line)
    if not body:
        raise CredentialError("empty PEM block")
    return binascii.a2b_base64(b"".join(body))


def _tlv(buf, pos):
    # -> (tag, content start, content length) of the DER element at pos.
    if pos + 2 > len(buf):
        raise CredentialError("truncated DER")
    tag = buf[pos]
    size = buf[pos + 1]
    pos += 2
    if size & 0x80:
        n = size & 0x7F
        if n == 0 or n > 3 or pos + n > len(buf):
            raise CredentialError("bad DER length")
        size = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + size > len(buf):
        raise CredentialError("truncated DER")
    return tag, pos, size


def _days_from_civil(y, m, d):
    # Days since 1970-01-01 (proleptic Gregorian), without the port's epoch or mktime.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _time(buf, pos):
    tag, start, size = _tlv(buf, pos)
    text = bytes(buf[start : start + size])
    if tag == 0x17 and size == 13:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[0:2])
        year += 2000 if year < 50 else 1900
        rest = text[2:]
    elif tag == 0x18 and size == 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        year = int(text[0:4])
        rest = text[4:]
    else:
        raise CredentialError("bad certificate time")
    days = _days_from_civil(year, int(rest[0:2]), int(rest[2:4]))
    secs = int(rest[4:6]) * 3600 + int(rest[6:8]) * 60 + int(rest[8:10])
    return days * _DAY_S + secs, start + size


def validity(der):
    # -> (not_before, not_after) in unix seconds, from an X.509 certificate in DER.
    _, pos, _ = _tlv(der, 0)  # Certificate
    _, pos, _ = _tlv(der, pos)  # tbsCertificate
    if der[pos] == 0xA0:  # [0] version
        _, start, size = _tlv(der, pos)
        pos = start + size
    for _ in range(3):  # serial, signature algorithm, issuer
        _, start, size = _tlv(der, pos)
        pos = start + size
    _, pos, _ = _tlv(der, pos)  # validity
    not_before, pos = _time(der, pos)
    not_after, _ = _time(der, pos)
    return not_before, not_after


class Credentials:
    def __init__(self, ca, cert=None, key=None, folder=None):
        self.folder = folder
        self.ca = ca
        self.cert = cert
        self.key = key
        nb, na = validity(ca)
        if cert is not None:
            cnb, cna = validity(cert)
            nb, na = max(nb, cnb), min(na, cna)
        self.not_before = nb
        self.not_after = na

    def slot(self, name):
        # The slot file's text as flashed (for TLS stacks that want PEM).
        with open(self.folder + "/" + name) as f:
            return f.read()

    def pem_args(self):
        # wrap_socket keywords of ussl-style stacks (QuecPython): CA required, PEM text.
        args = {"cert_reqs": 2, "ca_certs": self.slot("ca.pem")}
        if self.cert is not None:
            args["certfile"] = self.slot("client.crt")
            args["keyfile"] = self.slot("client.key")
        return args

    def check_time(self, now, floor):
        # -> True when checked against a set clock, False when only against the lower bound
        # (provisional: check again once the clock is set). Raises CertTimeError.
        t = now or floor
        if not t:
            raise CertTimeError("clock unknown")
        if t > self.not_after:
            raise CertTimeError("cert expired")
        if now and now + _SKEW_S < self.not_before:
            raise CertTimeError("cert not yet valid")
        return bool(now)


def load(folder):
    # -> Credentials from the slots in folder. Raises CredentialError when the CA is missing
    # or a slot is unreadable: without the CA there is no TLS (never an unverified session).
    ca = _read(folder + "/ca.pem")
    if ca is None:
        raise CredentialError("no %s/ca.pem" % folder)
    cert = _read(folder + "/client.crt")
    key = _read(folder + "/client.key")
    if (cert is None) != (key is None):
        raise CredentialError("client.crt and client.key go together")
    try:
        return Credentials(
            pem_to_der(ca),
            pem_to_der(cert) if cert else None,
            pem_to_der(key) if key else None,
            folder,
        )
    except (ValueError, IndexError) as exc:
        raise CredentialError("unreadable credential: %s" % exc)
