"""The PKI's deadlines on /metrics (`daozhang collect --pki-dir`): one series per kind, the
soonest of each, missing files counted, an unreadable folder said as such."""

from __future__ import annotations

import time
from pathlib import Path

from daozhang.collector.pki_gauges import pki_gauges
from daozhang.security.pki import Pki


def _samples(folder: Path, now: float) -> dict[str, float]:
    return {g.name + labels: value for g in pki_gauges(folder, now) for labels, value in g.samples}


def test_the_soonest_deadline_of_each_kind_and_the_missing_files(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init(["localhost"])
    for n in range(30):  # thirty devices: still one series for them all
        pki.issue_device(f"POS{n:05d}", days=400)
    pki.issue_device("SOON0001", days=5)
    now = time.time()
    got = _samples(pki.root, now)
    assert got["dz_pki_readable"] == 1
    assert 4.9 < got['dz_pki_expiry_days{kind="device"}'] <= 5
    assert got['dz_pki_expiry_days{kind="CA"}'] > 365
    assert {k for k in got if k.startswith("dz_pki_expiry_days")} == {
        f'dz_pki_expiry_days{{kind="{k}"}}' for k in ("CA", "CRL", "broker", "device")
    }
    assert all(v == 0 for k, v in got.items() if k.startswith("dz_pki_missing"))
    (pki.device_dir("SOON0001") / "client.crt").unlink()
    pki.crl_path.unlink()
    got = _samples(pki.root, now)
    assert got['dz_pki_missing{kind="device"}'] == 1 and got['dz_pki_missing{kind="CRL"}'] == 1
    assert 'dz_pki_expiry_days{kind="CRL"}' not in got  # unknown, not healthy
    assert got['dz_pki_expiry_days{kind="device"}'] > 365
    expired = _samples(pki.root, now + 500 * 86_400)
    assert expired['dz_pki_expiry_days{kind="device"}'] < 0


def test_a_folder_that_cannot_be_read_says_so_and_claims_nothing(tmp_path: Path) -> None:
    assert _samples(tmp_path / "nope", time.time()) == {"dz_pki_readable": 0}
