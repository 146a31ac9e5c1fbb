"""The money rules on a store built as the correlation rule tests build theirs, and the PKI
rule on a real fleet PKI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from daozhang.alerts.rules import parse
from daozhang.alerts.runner import evaluate
from daozhang.alerts.state import apply, firing_now
from daozhang.security.pki import Pki

from tests.correlate.builder import M1, M2, M3, Shop, bj


def _unpaid(shop: Shop, *mids: str) -> None:
    for n, mid in enumerate(mids):
        shop.sale("2025-01-07 15:00", mid=mid, tid=f"{n + 1}0000001", dev=f"DEV0000{n + 1}")
    shop.detail_file("2025-01-08")
    shop.run("2025-01-09 12:00")


def test_an_acquirer_day_unpaid_across_merchants(shop: Shop) -> None:
    _unpaid(shop, M1, M2, M3)
    rules = parse({"rules": {"acquirer_day_unpaid": {"merchants": 3}, "unexplained_unpaid": {}}})
    verdict = evaluate(shop.store, rules, bj("2025-01-09 12:00"))
    (alert,) = verdict.firing
    assert alert.key == "acquirer_day_unpaid:ACQ1:2025-01-08"
    assert alert.zh == ("收单机构 ACQ1 2025-01-08 应结算日:3 个商户未到账,共 ¥300.00(终端网络正常)")
    assert "3 merchants unpaid, ¥300.00 in all" in alert.en


def test_unexplained_unpaid_at_the_threshold_in_yuan(shop: Shop) -> None:
    _unpaid(shop, M1, M2)  # two merchants: not the acquirer's, cause unknown
    at = bj("2025-01-09 12:00")
    fires = evaluate(shop.store, parse({"rules": {"unexplained_unpaid": {"yuan": 200}}}), at)
    assert [a.key for a in fires.firing] == ["unexplained_unpaid:fleet"]
    assert fires.firing[0].zh == "原因不明的未到账 ¥200.00:2 笔,2 个商户"
    assert fires.firing[0].facts["unpaid_yuan"] == "200.00"
    quiet = evaluate(shop.store, parse({"rules": {"unexplained_unpaid": {"yuan": 200.01}}}), at)
    assert quiet.firing == []


def test_pki_expiry_reads_what_pki_check_reads(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.init(["localhost"])
    pki.issue_device("SOON0001", days=5)
    pki.issue_device("LATER001", days=400)
    rules = parse({"rules": {"pki_expiry": {"dir": str(tmp_path / "pki"), "days": 14}}})
    verdict = evaluate(pki_store_free(), rules, time.time())
    assert [a.key for a in verdict.firing] == ["pki_expiry:device:SOON0001"]
    assert "设备证书 SOON0001" in verdict.firing[0].zh and "天后过期" in verdict.firing[0].zh
    (pki.device_dir("SOON0001") / "client.crt").unlink()
    verdict = evaluate(pki_store_free(), rules, time.time())
    assert "缺失" in verdict.firing[0].zh and "is missing" in verdict.firing[0].en


def test_a_pki_folder_gone_leaves_the_rule_unknown(tmp_path: Path) -> None:
    rules = parse({"rules": {"pki_expiry": {"dir": str(tmp_path / "nope")}}})
    verdict = evaluate(pki_store_free(), rules, time.time())
    assert verdict.firing == [] and "no such PKI folder" in verdict.unknown["pki_expiry"]


def pki_store_free() -> Any:
    """The PKI rule reads files only: a store it must never touch."""

    class NoStore:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"the PKI rule touched the store ({name})")

    return NoStore()


def test_between_money_rounds_the_money_alerts_stay_as_they_are(shop: Shop) -> None:
    _unpaid(shop, M1, M2, M3)
    rules = parse({"rules": {"acquirer_day_unpaid": {}}, "money": {"every_minutes": 30}})
    assert rules.money_every_s == 1800
    at = bj("2025-01-09 12:00")
    apply(shop.store, evaluate(shop.store, rules, at), at, rules.destinations)
    between = evaluate(shop.store, rules, at + 60, money=False)
    assert between.firing == [] and between.kept == {"unexplained_unpaid", "acquirer_day_unpaid"}
    assert apply(shop.store, between, at + 60, rules.destinations) == []  # nothing resolved
    assert [k for k, _, _ in firing_now(shop.store)] == ["acquirer_day_unpaid:ACQ1:2025-01-08"]


def test_an_announced_maintenance_window_resolves_the_acquirer_day_alert(shop: Shop) -> None:
    """The acquirer announces its upgrade after the day went unpaid: once the notice is
    imported (settle notices), correlation calls the gap maintenance, not the acquirer's
    unexplained bad day, and the alert resolves at the next money round; no silence needed."""
    _unpaid(shop, M1, M2, M3)
    rules = parse({"rules": {"acquirer_day_unpaid": {}, "unexplained_unpaid": {"yuan": 1}}})
    at = bj("2025-01-09 12:00")
    fired = apply(shop.store, evaluate(shop.store, rules, at), at, rules.destinations)
    assert [(t.event, t.key) for t in fired] == [("firing", "acquirer_day_unpaid:ACQ1:2025-01-08")]
    shop.notice("2025-01-08 01:00", "2025-01-08 06:00", "清算系统升级 clearing system upgrade")
    shop.run("2025-01-09 12:30")
    later = evaluate(shop.store, rules, at + 1800)
    assert later.firing == []  # neither acquirer-side nor unexplained
    resolved = apply(shop.store, later, at + 1800, rules.destinations)
    assert [(t.event, t.key) for t in resolved] == [
        ("resolved", "acquirer_day_unpaid:ACQ1:2025-01-08")
    ]
