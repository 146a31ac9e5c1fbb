"""`load_scoped` reads what the rules look across to for all the asked receipts at once (set
queries, a few hundred keys a statement): each related row must still reach the receipt that
names it, whichever way it names it, also when the keys span several statements.

The generated scenario of test_scoped_equals_whole.py names every void by its RRN too, and
has no settlement row that falls back to a natural key, so those two reads are held here.
"""

from __future__ import annotations

import pytest
from daozhang.correlate import scope
from daozhang.correlate.data import receipt_key
from daozhang.schema import open_database

M, T = "898310048100001", "00000001"


def _receipt(trc: str, typ: str, rrn: str | None, otrc: str | None = None,
             orrn: str | None = None) -> tuple[object, ...]:  # fmt: skip
    lt = 1_780_000_000 + int(trc)
    return (M, T, "000001", trc, "D00001", 7, int(trc), typ, "card", 1000, "156", None, None,
            None, lt, "approved", "00", rrn, None, otrc, orrn, lt, lt, float(lt))  # fmt: skip


def _detail(line: int, typ: str, trc: str, rrn: str, orrn: str = "") -> tuple[object, ...]:
    return (1, line, "20260528", M, T, 1_780_000_000, typ, "card", "000001", trc, rrn, orrn,
            "", "", 1000, 6, 994, "C", "T1", "", "P1")  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 250])
def test_related_rows_reach_the_receipt_naming_them(
    db_url: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scope, "_CHUNK", chunk)
    asked = [
        _receipt("000001", "sale", None),  # no RRN: its void names it by trace only
        _receipt("000002", "void", None, otrc="000001"),
        _receipt("000003", "preauth", "000000000003"),
        _receipt("000004", "preauth_done", "000000000004", orrn="000000000003"),
        _receipt("000005", "sale", "000000000005"),  # no row with its RRN: falls back
        _receipt("000006", "sale", "000000000006"),  # nothing names it
    ]
    with open_database(db_url) as store:
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO receipts (mid, tid, bat, trc, dev, epoch, seq, typ, ch, amt, cur,"
                " pan, ck, ent, lt, st, rc, rrn, auth, otrc, orrn, t, placed_t, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                asked,
            )
            tx.execute(
                "INSERT INTO settle_files (sha256, name, kind, format, encoding, acquirer,"
                " n_rows, imported_at) VALUES ('x', 'f.csv', 'detail', 'csv', 'utf-8', 'A', 3, 0)"
            )
            tx.executemany(
                "INSERT INTO settle_detail (file_id, line, settle_date, mid, tid, txn_time, typ,"
                " ch, bat, trc, rrn, orrn, pan, ck, amt, fee, settle_amt, direction,"
                " settle_type, check_flag, payout_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    _detail(1, "preauth_done", "000007", "000000000007", "000000000003"),
                    _detail(2, "sale", "000005", "999999999999"),  # the fallback row
                    _detail(3, "sale", "000008", "999999999998"),  # no asked key
                ],
            )
        wanted = [(M, T, "000001", trc) for trc in ("000001", "000003", "000005", "000006")]
        with store.snapshot() as tx:
            data = scope.load_scoped(tx, wanted, [], 1_780_100_000)
    got = [receipt_key(r)[3] for r in data.receipts]
    # The asked ones in the order asked, then what names each, in the order they were met.
    assert got == ["000001", "000003", "000005", "000006", "000002", "000004"]
    assert [(d.line, d.trc) for d in data.detail] == [(1, "000007"), (2, "000005")]
