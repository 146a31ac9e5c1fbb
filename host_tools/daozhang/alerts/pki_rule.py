"""`pki_expiry`: the same deadlines `daozhang pki check` reads (security/pki_health.py), one
alert per certificate or CRL that is missing, expired or within the rule's days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.rules import Rules
from daozhang.errors import DaozhangError
from daozhang.security.pki import Pki
from daozhang.security.pki_health import deadlines, problems

_KIND_ZH = {
    "CRL": "吊销列表",
    "CA": "根证书",
    "broker": "代理证书",
    "device": "设备证书",
    "collector": "收集器证书",
}


def evaluate_pki(rules: Rules, now: float, out: Verdict) -> None:
    if not rules.on("pki_expiry"):
        return
    folder = Path(rules.get("pki_expiry", "dir"))
    warn_days = rules.get("pki_expiry", "days")
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    try:
        if not folder.is_dir():
            raise DaozhangError(f"{folder}: no such PKI folder")
        found = deadlines(Pki(folder))
    except DaozhangError as exc:
        out.unknown["pki_expiry"] = str(exc)
        return
    for d in found:
        said = problems([d], moment, warn_days)
        if not said:
            continue
        line = said[0]
        left = d.days_left(moment)
        if left is None:
            zh = f"缺失({d.path})"
        elif left <= 0:
            zh = f"已过期({d.ends:%Y-%m-%d %H:%M} UTC)"
        else:
            zh = f"{left:.0f} 天后过期({d.ends:%Y-%m-%d})"
        out.add(
            Alert(
                "pki_expiry",
                f"{d.kind}:{d.name}",
                f"{_KIND_ZH.get(d.kind, d.kind)} {d.name} {zh}",
                line,
                {
                    "kind": d.kind,
                    "name": d.name,
                    "days_left": None if left is None else round(left, 1),
                },
            )
        )
