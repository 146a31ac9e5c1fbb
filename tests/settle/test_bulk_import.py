"""A large detail file into a smaller SQLite table is stored without `settle_detail`'s
secondary indexes, which are built again inside the same transaction (settle/importer.py
`_drop_detail_indexes`): the same rows and the same indexes as row-by-row indexing, and a
refused file leaves the indexes as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.schema import open_database
from daozhang.settle import importer
from daozhang.settle.importer import import_file
from daozhang.settle.source import scan

from tests.settle.test_import import counts, detail, payout


def _indexes(url: str) -> list[tuple[str, str]]:
    with open_database(url) as store, store.transaction() as tx:
        got = tx.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'settle_detail' ORDER BY name"
        )
    return [(str(n), str(s)) for n, s in got]


def _rows(url: str) -> list[tuple[Any, ...]]:
    with open_database(url) as store, store.transaction() as tx:
        return [tuple(r) for r in tx.execute("SELECT * FROM settle_detail ORDER BY line")]


def _bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as large: a few rows take the bulk path."""
    monkeypatch.setattr(importer, "BULK_ROWS", 1)
    monkeypatch.setattr(importer, "_LEAST_ROW_BYTES", 1)


def test_bulk_path_stores_the_same_rows_and_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [detail(n) for n in range(1, 2501)]  # three blocks
    path = tmp_path / "detail_20250107.csv"
    path.write_bytes(csv_bytes("detail", rows))
    plain, bulk = f"sqlite:///{tmp_path / 'plain.db'}", f"sqlite:///{tmp_path / 'bulk.db'}"
    with open_database(plain) as store:
        import_file(store, path)
    _bulk(monkeypatch)
    with open_database(bulk) as store:
        assert import_file(store, path).rows == 2500
    assert _rows(bulk) == _rows(plain)
    assert _indexes(bulk) == _indexes(plain)
    assert len(_indexes(bulk)) >= 10


def test_a_refused_bulk_file_keeps_the_indexes(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_database(sqlite_url):
        pass
    before = _indexes(sqlite_url)
    rows = [detail(n) for n in range(1, 2501)]
    rows[2199]["check_flag"] = "X"  # in the third block: the first two are stored by then
    path = tmp_path / "detail_20250107.txt"
    path.write_bytes(fixed_width_bytes("2025-01-07", "ACQ2", rows))
    _bulk(monkeypatch)
    with open_database(sqlite_url) as store, pytest.raises(InputError, match="line 2201"):
        import_file(store, path)
    assert _indexes(sqlite_url) == before
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_a_table_five_times_the_file_keeps_its_indexes(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tmp_path / "detail_20250107.csv"
    first.write_bytes(csv_bytes("detail", [detail(n) for n in range(1, 101)]))
    small = tmp_path / "detail_20250108.csv"
    small.write_bytes(csv_bytes("detail", [detail(n, "2025-01-08") for n in range(201, 203)]))
    monkeypatch.setattr(importer, "BULK_ROWS", 1)
    with open_database(sqlite_url) as store:
        import_file(store, first)
        source = scan(str(small), small, None)
        with store.transaction() as tx:
            # Counted as 19 rows against 100 held (more than 5 x 19): nothing dropped.
            assert importer._drop_detail_indexes(tx, source, source.size // 19) == []
        before = _indexes(sqlite_url)
        with pytest.raises(_RolledBack), store.transaction() as tx:
            # As 20 rows, a fifth of the table: rebuilt.
            assert len(importer._drop_detail_indexes(tx, source, source.size // 20)) == 7
            raise _RolledBack
    assert _indexes(sqlite_url) == before
    # The same file against an empty table is rebuilt.
    with open_database(f"sqlite:///{tmp_path / 'empty.db'}") as store, store.transaction() as tx:
        assert len(importer._drop_detail_indexes(tx, source, 1)) == 7  # all but ord, xid, orrn


class _RolledBack(Exception):
    pass


def test_a_fixed_width_file_is_counted_by_its_record_length() -> None:
    """A ZM record reaches at least its last field read (294 bytes): a 120 MB ZM file holds
    at most ~400,000 rows, not the 1.2 million its size over 100 bytes would say (which would
    rebuild the indexes of a table of 6 million)."""
    chosen = importer.P.load()
    assert importer._least_row_bytes(chosen["generic"]) == 100
    assert importer._least_row_bytes(chosen["unionpay-zm"]) == 295  # and its line end
    assert importer._least_row_bytes(chosen["unionpay-acom"]) > 100


def test_wallet_rows_reach_the_kept_partial_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order-number and wallet-id indexes stay through a bulk import: its QR rows are
    written into them as they are stored, and found through them after."""
    sample = Path(__file__).with_name("samples") / "wechat_tradebill_1900000109_20250107.csv"
    plain, bulk = f"sqlite:///{tmp_path / 'plain.db'}", f"sqlite:///{tmp_path / 'bulk.db'}"
    with open_database(plain) as store:
        import_file(store, sample)
    _bulk(monkeypatch)
    with open_database(bulk) as store:
        import_file(store, sample)
    assert _rows(bulk) == _rows(plain)
    assert _indexes(bulk) == _indexes(plain)
    for url in (plain, bulk):
        with open_database(url) as store, store.transaction() as tx:
            found = tx.execute(
                "SELECT COUNT(*) FROM settle_detail INDEXED BY settle_detail_xid WHERE xid <> ''"
            )
        assert found[0][0] == len(_rows(plain)) > 0


def test_a_repeated_row_is_refused_on_the_bulk_path(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk path's first look (no RRN twice in the table) passes only files without
    repeats: a repeated row, or a row without an RRN, goes to the file's grouping."""
    _bulk(monkeypatch)
    repeated = tmp_path / "detail_20250107.csv"
    repeated.write_bytes(csv_bytes("detail", [detail(1), detail(2), detail(3), detail(2)]))
    # The same RRN on two different rows (a sale and its completion, say): not a repeat.
    shared = tmp_path / "detail_20250108.csv"
    other = {**detail(5, "2025-01-08"), "rrn": detail(4)["rrn"], "amt": 20004, "settle_amt": 19944}
    shared.write_bytes(csv_bytes("detail", [detail(4, "2025-01-08"), other]))
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError, match=r"line 5: repeats line 3 field for field"):
            import_file(store, repeated)
        assert import_file(store, shared).rows == 2
    assert counts(sqlite_url) == (1, 2, 0, 0)


@pytest.mark.parametrize("held", [20_000, 1])
def test_rows_are_paid_whichever_file_comes_first(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: int
) -> None:
    """A detail file whose payouts are not imported yet skips the `paid` update (the file's
    payout ids asked of the payouts' index); one whose payout is imported marks its rows. With
    more payout ids than the importer keeps (held 1), every row is visited as before."""
    monkeypatch.setattr(importer, "_PAYOUT_IDS_HELD", held)
    first = [detail(1), detail(2), {**detail(3), "payout_id": "P20250107B"}]
    later = [detail(n, "2025-01-08") for n in (4, 5)]
    files = {
        "payout_20250107.csv": csv_bytes("payout", [payout()]),
        "detail_20250107.csv": csv_bytes("detail", first),  # its payout A imported before
        "detail_20250108.csv": csv_bytes("detail", [{**r, "payout_id": "P0108"} for r in later]),
        "payout_20250108.csv": csv_bytes("payout", [{**payout(), "payout_id": "P0108"}]),
    }
    with open_database(db_url) as store:
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
            import_file(store, tmp_path / name)
            if name == "detail_20250108.csv":  # before its payout
                assert _paid(store) == {1: 1, 2: 1, 3: 0, 4: 0, 5: 0}
        assert _paid(store) == {1: 1, 2: 1, 3: 0, 4: 1, 5: 1}


def _paid(store: Any) -> dict[int, int]:
    rows = store.query("SELECT trc, paid FROM settle_detail")
    return {int(trc): int(paid) for trc, paid in rows}
