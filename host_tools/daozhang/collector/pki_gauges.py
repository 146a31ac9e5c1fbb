"""The PKI's deadlines as gauges, for `/metrics` when the collector is given the fleet's PKI
folder (`daozhang collect --pki-dir DIR`): the same files and deadlines `daozhang pki check`
and the `pki_expiry` alert read (security/pki_health.py).

Bounded cardinality: one series per kind of deadline (CRL, CA, broker, device, collector),
never one per device: the soonest of that kind, and how many of its files are missing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from daozhang.collector.alert_gauges import Gauge
from daozhang.errors import DaozhangError
from daozhang.security.pki import Pki
from daozhang.security.pki_health import deadlines

KINDS = ("CRL", "CA", "broker", "device", "collector")


def pki_gauges(folder: Path, now: float) -> list[Gauge]:
    """`dz_pki_readable` 0 when the folder cannot be read (the other two are then absent:
    an unknown deadline is not a healthy one)."""
    try:
        if not folder.is_dir():
            raise DaozhangError(f"{folder}: no such PKI folder")
        found = deadlines(Pki(folder))
    except DaozhangError:
        return [Gauge("dz_pki_readable", "the PKI folder could be read (1) or not (0)", [("", 0)])]
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    soonest: dict[str, float] = {}
    missing = dict.fromkeys(KINDS, 0)
    for d in found:
        left = d.days_left(moment)
        if left is None:
            missing[d.kind] = missing.get(d.kind, 0) + 1
        elif d.kind not in soonest or left < soonest[d.kind]:
            soonest[d.kind] = left
    return [
        Gauge("dz_pki_readable", "the PKI folder could be read (1) or not (0)", [("", 1)]),
        Gauge(
            "dz_pki_expiry_days",
            "days until the soonest certificate (or the CRL's next update) of each kind ends;"
            " negative once past",
            [(f'{{kind="{k}"}}', round(v, 3)) for k, v in sorted(soonest.items())],
        ),
        Gauge(
            "dz_pki_missing",
            "files of each kind the broker or the devices need that are missing",
            [(f'{{kind="{k}"}}', n) for k, n in sorted(missing.items())],
        ),
    ]
