"""firmware/dzcore/uplink/tlscreds.py under the real MicroPython: DER dates, PEM slots, the
clock policy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from daozhang.lab.mp.run import run_micropython

UTC = dt.UTC


def _cert(path: Path, not_before: dt.datetime, not_after: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


SCRIPT = """
import json, sys
from dzcore.uplink import tlscreds
out = {}
c = tlscreds.load(sys.argv[1])
out["validity"] = [c.not_before, c.not_after]
def check(now, floor):
    try:
        return "checked" if c.check_time(now, floor) else "provisional"
    except tlscreds.CertTimeError as exc:
        return str(exc)
nb, na = c.not_before, c.not_after
out["cases"] = [check(0, 0), check(nb + 10, 0), check(0, nb + 10), check(0, na + 1),
                check(na + 1, 0), check(nb - 7200, 0), check(nb - 600, 0)]
try:
    tlscreds.load(sys.argv[1] + "/nope")
except tlscreds.CredentialError as exc:
    out["missing"] = str(exc)
print("OUT " + json.dumps(out))
"""


def _run(tmp: Path, folder: Path) -> dict[str, object]:
    script = tmp / "mp_tlscreds.py"
    script.write_text(SCRIPT)
    result = run_micropython([str(script), str(folder)], heapsize="64K", board="virtual")
    out = result.stdout.decode()
    line = next((x for x in out.splitlines() if x.startswith("OUT ")), None)
    assert line is not None, out + result.stderr.decode()
    parsed: dict[str, object] = json.loads(line[4:])
    return parsed


def test_dates_from_der_utctime_and_generalizedtime(tmp_path: Path) -> None:
    nb = dt.datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)  # a leap day, UTCTime
    na = dt.datetime(2051, 1, 1, 0, 0, 1, tzinfo=UTC)  # past 2049: GeneralizedTime
    _cert(tmp_path / "slots", nb, na)
    out = _run(tmp_path, tmp_path / "slots")
    assert out["validity"] == [int(nb.timestamp()), int(na.timestamp())]
    assert out["cases"] == [
        "clock unknown",  # no clock, no floor: refused, never unchecked
        "checked",
        "provisional",  # only the floor: accepted for now, re-checked when the clock is set
        "cert expired",  # the floor alone proves expiry
        "cert expired",
        "cert not yet valid",
        "checked",  # within the hour of skew
    ]
    assert "ca.pem" in str(out["missing"])
