"""The acquirer-day count reads a sale's row by its natural key when the RRNs differ.

A terminal that recorded another RRN than the acquirer's row (a re-sent request answered
twice, a wrong DE37 on the POS) still has its row: the whole-store run matches it by merchant,
terminal, batch and trace (`terminal.Index.match`), so that merchant is paid and not counted
among the acquirer-day's unpaid. The lookup's own read of the acquirer-day (acquirer_day.py
`_fallback`, one statement over every key on PostgreSQL) must find the same row, or a lookup
of a neighbour's unpaid sale would count three merchants and say `acquirer_side` where the
whole run says `unknown`.
"""

from __future__ import annotations

from daozhang.correlate.scope import analyse_scoped

from tests.correlate.builder import M1, M2, M3, Shop, bj, facts, payout_id


def test_a_row_found_by_natural_key_keeps_its_merchant_out_of_the_count(shop: Shop) -> None:
    at = "2025-01-07 15:00"
    unpaid = [
        shop.sale(at, mid=M1, tid="10000001", dev="DEV00001"),
        shop.sale(at, mid=M2, tid="20000001", dev="DEV00002"),
    ]
    other_rrn = shop.sale(at, mid=M3, tid="30000001", dev="DEV00003")
    # The acquirer's row has its own RRN: only the natural key joins it to the receipt.
    shop.cleared({**other_rrn, "rrn": shop.new_rrn()}, on="2025-01-08")
    shop.payout("2025-01-08", mid=M3)
    found = shop.run("2025-01-09 12:00")
    assert found.of(other_rrn).paid_fen > 0
    whole = found.of(unpaid[0])
    assert (whole.cause, facts(whole, "settlement_row")) == (
        "unknown",
        ["only 2 merchant(s) of ACQ1 unpaid on 2025-01-08"],
    )
    key = (M1, "10000001", unpaid[0]["bat"], unpaid[0]["trc"])
    scoped = analyse_scoped(shop.store, bj("2025-01-09 12:00"), keys=[key])
    got = [f for f in scoped.findings if f.kind == "transaction"]
    assert [(f.cause, facts(f, "settlement_row")) for f in got] == [
        (whole.cause, facts(whole, "settlement_row"))
    ]
    assert payout_id(M3, "2025-01-08") not in {f.payout_id for f in got}
