"""`receipts.waits` and `settle_detail.paid` (settle/waiting.py), held after every step to
what the stored rows say: a receipt correlation may find waiting on its acquirer always has
`waits = 1` (the lookup reads only those), and one the rows prove paid is lowered to 0 by the
next import that covers its day. Steps: receipt then row then payout; payout after its row;
a receipt uploaded after its row and payout (a journal drained late); a new unpaid row for a
paid sale; a state that cannot wait; the migration's fill."""

from __future__ import annotations

import itertools
import sqlite3

import pytest
from daozhang.contract import (
    MONEY_STATES,
    RECEIPT_STATES,
    TXN_TYPES,
    UNDONE_STATES,
    WAITING_TYPES,
    may_wait,
    may_wait_sql,
)
from daozhang.settle import waiting
from daozhang.settle.waiting import refresh_all
from daozhang.store import Store

from tests.correlate.builder import Shop

_LISTED = ", ".join

# What correlation's acquirer-day read asks of the detail side (correlate/acquirer_day.py):
# the receipts it may find waiting, whatever their merchant, acquirer or voids.
_MAY_BE_FOUND = (
    "SELECT DISTINCT r.trc FROM receipts r LEFT JOIN settle_detail d ON d.rrn = r.rrn"
    f" AND d.mid = r.mid WHERE r.typ IN ({_LISTED(repr(t) for t in WAITING_TYPES)})"
    f" AND (r.st IN ({_LISTED(repr(s) for s in MONEY_STATES)})"
    f" OR (r.st IN ({_LISTED(repr(s) for s in UNDONE_STATES)}) AND d.check_flag IN ('Y', 'L')))"
    " AND (d.rrn IS NULL OR (d.check_flag <> 'B'"
    " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.payout_id = d.payout_id)))"
)


def waits(store: Store) -> dict[str, int]:
    return {str(t): int(w) for t, w in store.query("SELECT trc, waits FROM receipts")}


def check(store: Store) -> dict[str, int]:
    """The invariants; returns each receipt's `waits` by trace."""
    now = waits(store)
    found = {str(t) for (t,) in store.query(_MAY_BE_FOUND)}
    assert {t for t in found if now[t] == 0} == set(), now  # never hidden from the lookup
    paid = store.query(
        "SELECT COUNT(*) FROM settle_detail d WHERE d.paid <> CASE WHEN EXISTS (SELECT 1"
        " FROM payouts p WHERE p.payout_id = d.payout_id) THEN 1 ELSE 0 END"
    )
    assert paid[0][0] == 0
    return now


@pytest.mark.parametrize("drive", ["rows", "receipts"])
def test_waits_is_kept_through_imports_uploads_and_states(
    shop: Shop, drive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both ways an import raises `waits` (settle/waiting.py): from the file's rows, or from
    # the receipts when the store holds fewer of them than the file has rows.
    monkeypatch.setattr(waiting, "_receipts_drive", lambda tx, rows: drive == "receipts")
    paid = shop.sale("2025-01-06 10:00")  # row and payout
    unpaid = shop.sale("2025-01-06 11:00")  # row, payout later
    shop.sale("2025-01-06 11:30", st="declined")  # never on the money path
    shop.sale("2025-01-06 11:40", st="reversed")  # no answer, no RRN: no row can name it
    never = shop.sale("2025-01-06 12:00")  # no row at all: it waits
    undone = shop.sale("2025-01-06 12:30", st="reversed", rrn=shop.new_rrn())  # no row names it
    shop.cleared(paid, on="2025-01-07", payout="PO-PAID")
    shop.cleared(unpaid, on="2025-01-07", payout="PO-LATER")  # its payout not imported yet
    shop.payout("2025-01-07", pid="PO-PAID")
    shop.run("2025-01-10 12:00")
    w = check(shop.store)
    assert (w[paid["trc"]], w[unpaid["trc"]], w[never["trc"]]) == (0, 1, 1)
    assert w["000003"] == 0 and w["000004"] == 0  # declined; reversed without an RRN
    assert w[undone["trc"]] == 0  # undone, and no row says the acquirer settled it anyway

    shop.payout("2025-01-07", pid="PO-LATER")  # its payout arrives: it is paid
    shop.run("2025-01-10 12:00")
    assert check(shop.store)[unpaid["trc"]] == 0

    # A receipt uploaded after its row and payout were imported: the collector cannot know;
    # the next import covering its day lowers it.
    rrn = shop.new_rrn()
    shop.cleared(at="2025-01-08 09:00", amt=10_000, rrn=rrn, trc="000900", on="2025-01-09",
                 payout="PO-0109")  # fmt: skip
    shop.payout("2025-01-09", pid="PO-0109")
    shop.run("2025-01-12 12:00")  # files imported, the receipt still on the device
    late = shop.sale("2025-01-08 09:00", rrn=rrn, trc="000900")
    shop.upload()
    assert check(shop.store)[late["trc"]] == 1
    shop.detail_file("2025-01-10")  # the next day's file, empty
    shop.run("2025-01-12 12:00")
    assert check(shop.store)[late["trc"]] == 0

    # A new row for a paid sale, its payout not imported: it may wait again.
    shop.cleared(paid, on="2025-01-11", payout="PO-ADJ", flag="L")
    shop.run("2025-01-12 12:00")
    assert check(shop.store)[paid["trc"]] == 1

    # The acquirer settled the undone sale anyway ('L': a late reversal), not paid yet.
    shop.cleared(undone, on="2025-01-12", payout="PO-UNDONE", flag="L")
    shop.run("2025-01-12 12:00")
    assert check(shop.store)[undone["trc"]] == 1

    # A later state the collector stores: its own fields decide until the next import.
    shop.later(unpaid, "2025-01-12 09:00", st="voided")
    shop.upload()
    assert check(shop.store)[unpaid["trc"]] == 0


def test_the_fill_of_a_store_built_otherwise_agrees(shop: Shop) -> None:
    a = shop.sale("2025-01-06 10:00")
    b = shop.sale("2025-01-06 11:00")
    shop.cleared(a, on="2025-01-07", payout="PO-A")
    shop.cleared(b, on="2025-01-07", payout="PO-B")
    shop.payout("2025-01-07", pid="PO-A")
    shop.run("2025-01-10 12:00")
    kept = check(shop.store)
    # As a store filled by SQL (bench/lookup_bench.py) or migrated: everything recomputed.
    with shop.store.transaction() as tx:
        tx.execute("UPDATE receipts SET waits = 1")
        tx.execute("UPDATE settle_detail SET paid = 0")
        refresh_all(tx)
    assert check(shop.store) == kept == {a["trc"]: 0, b["trc"]: 1}


def test_may_wait_and_its_sql_agree() -> None:
    db = sqlite3.connect(":memory:")
    sql = may_wait_sql("?", "?", "?").replace("?", "{}")
    for typ, st, rrn in itertools.product(TXN_TYPES, RECEIPT_STATES, (None, "501000000001")):
        literal = [repr(typ), repr(st), "NULL" if rrn is None else repr(rrn)]
        # st appears twice in the SQL: typ, st, st, rrn.
        (answer,) = db.execute(
            "SELECT " + sql.format(literal[0], literal[1], literal[1], literal[2])
        ).fetchone()
        assert answer == may_wait(typ, st, rrn), (typ, st, rrn)
