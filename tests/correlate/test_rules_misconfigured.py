"""Wrong terminal settings (DESIGN §2.3 `terminal_misconfigured`): the merchants file may
register each merchant's terminal numbers (`terminal_ids`); a receipt whose merchant or
terminal number disagrees with them comes from a terminal set up wrong. Unpaid, that is why;
otherwise it is cited. A file that registers no terminal judges nothing.
"""

from __future__ import annotations

from typing import Any

from daozhang.correlate.render import explain

from tests.correlate.builder import DEV, M1, M2, M3, M4, T1, Shop, facts

T2 = "20000001"


def _registry(shop: Shop) -> dict[str, Any]:
    shop.merchant(M1, terminals=T1)
    shop.merchant(M2, terminals=T2)
    return shop.sale("2025-01-07 14:00")  # the device's registered terminal, M1/T1


def test_another_merchants_terminal_number_is_misconfigured(any_shop: Shop) -> None:
    _registry(any_shop)
    s = any_shop.sale("2025-01-07 15:00", amt=66_600, tid=T2)  # M2's terminal, M1's number
    any_shop.detail_file("2025-01-08")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.also) == ("gap", "terminal_misconfigured", None)
    assert facts(f, "merchant") == [
        f"terminal {T2} is registered to merchant {M2}, the receipt says merchant {M1}",
        f"device {DEV} also reports registered terminal {M1}/{T1}",
    ]
    text = explain(f)
    assert text["zh"].startswith(f"2025-01-07 15:00:00的¥666.00交易：终端号{T2}登记在商户{M2}名下")
    assert "下一步：请更正终端的商户号和终端号" in text["zh"]
    assert (
        f"terminal {T2} is registered to merchant {M2}, the receipt says merchant {M1}"
        in (text["en"])
    )
    assert (
        "¥666.00" in text["en"]
        and "Next: Correct the terminal's merchant and terminal" in (text["en"])
    )


def test_misconfigured_sales_are_not_healthy_merchants_unpaid(shop: Shop) -> None:
    """Two merchants unpaid is `unknown`; a third unpaid only because its terminal carries
    another merchant's number does not make it the acquirer's bad day."""
    paid = _registry(shop)
    shop.cleared(paid, on="2025-01-08")
    shop.payout("2025-01-08")
    shop.merchant(M3, terminals="30000001")
    wrong = shop.sale("2025-01-07 15:00", tid=T2)
    others = [
        shop.sale("2025-01-07 15:00", mid=mid, tid=tid, dev=f"DEV0000{n + 2}")
        for n, (mid, tid) in enumerate(((M2, T2), (M3, "30000001")))
    ]
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert found.of(wrong).cause == "terminal_misconfigured"
    assert [found.of(s).cause for s in others] == ["unknown", "unknown"]


def test_a_terminal_number_the_merchant_did_not_register(shop: Shop) -> None:
    _registry(shop)
    s = shop.sale("2025-01-07 15:00", tid="10000009")
    shop.detail_file("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.cause == "terminal_misconfigured"
    assert facts(f, "merchant")[0] == (
        f"terminal 10000009 is not among merchant {M1}'s registered terminals ({T1})"
    )
    assert "不是商户" in explain(f)["zh"]


def test_a_merchant_number_not_in_the_registry(shop: Shop) -> None:
    _registry(shop)
    shop.unlisted.add(M4)
    s = shop.sale("2025-01-07 15:00", mid=M4, tid="40000001")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.misconfig == ("merchant_not_registered", "")
    assert facts(f, "merchant")[0] == (
        f"merchant {M4} (terminal 40000001) is not in the merchants file"
    )
    assert f"商户号{M4}不在商户登记表中" in explain(f)["zh"]


def test_a_paid_sale_from_a_misconfigured_terminal_is_cited_not_blamed(shop: Shop) -> None:
    _registry(shop)
    s = shop.sale("2025-01-07 15:00", tid="10000009")
    shop.cleared(s, on="2025-01-08", fee=0)
    shop.payout("2025-01-08", paid=1)  # paid short: the payout is what is wrong
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("settled_short", "unknown")
    assert f.also == ["terminal_misconfigured"]


def test_no_registered_terminals_judges_nothing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", tid=T2)
    shop.detail_file("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.cause, f.misconfig) == ("unknown", None)
