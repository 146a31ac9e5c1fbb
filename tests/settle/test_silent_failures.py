"""The project's own formats must not lose or invent money in silence (issue 25): each case
here imported "fine" before, with rows lost, doubled or unreadable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.schema import open_database
from daozhang.settle.importer import import_file

from tests.settle.test_import import counts, detail, merchant, payout


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_csv_cut_at_a_line_boundary_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    whole = csv_bytes("detail", [detail(1), detail(2), detail(3)])
    lines = whole.split(b"\r\n")
    # The transfer stopped after the second row: every line complete, the trailer gone.
    cut = _write(tmp_path, "cut_20250107.csv", b"\r\n".join(lines[:3]) + b"\r\n")
    edited = _write(tmp_path, "edit_20250107.csv", b"\r\n".join([*lines[:3], lines[4], b""]))
    with (
        open_database(sqlite_url) as store,
        pytest.raises(InputError, match=r"line 4: no trailer: a generic CSV ends with"),
    ):
        import_file(store, cut, require_trailer=True)
        with pytest.raises(InputError, match=r"line 4: field rows: the trailer says 3 rows"):
            import_file(store, edited)
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_the_command_requires_the_trailer_unless_told(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = _write(tmp_path, "detail_20250107.csv", csv_bytes("detail", [detail(1)], trailer=False))
    assert main(["settle", "import", "--db", sqlite_url, str(bare)]) == 2
    assert "no trailer" in capsys.readouterr().err
    assert main(["settle", "import", "--db", sqlite_url, "--allow-no-trailer", str(bare)]) == 0
    assert "no #rows trailer: completeness not checked" in capsys.readouterr().out
    assert counts(sqlite_url) == (1, 1, 0, 0)


def test_a_csv_cut_mid_line_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    whole = csv_bytes("detail", [detail(1), detail(2)], trailer=False)
    cut = _write(tmp_path, "detail_20250107.csv", whole[:-8])  # "...,P20250107A\r\n" lost its end
    with (
        open_database(sqlite_url) as store,
        pytest.raises(InputError, match=r"truncated: the last line has no line end"),
    ):
        import_file(store, cut)
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_empty_files_with_the_same_bytes_count_for_each_acquirer_and_day(
    db_url: str, tmp_path: Path
) -> None:
    empty = csv_bytes("detail", [])
    a = _write(tmp_path, "ACQ1_detail_20250107.csv", empty)
    b = _write(tmp_path, "ACQ2_detail_20250107.csv", empty)
    c = _write(tmp_path, "ACQ1_detail_20250108.csv", empty)
    with open_database(db_url) as store:
        got = [
            import_file(store, a, acquirer="ACQ1"),
            import_file(store, b, acquirer="ACQ2"),
            import_file(store, c, acquirer="ACQ1"),
            import_file(store, c, acquirer="ACQ1"),
        ]
    assert [(r.outcome, r.acquirer, r.date_from) for r in got] == [
        ("imported", "ACQ1", "2025-01-07"),
        ("imported", "ACQ2", "2025-01-07"),
        ("imported", "ACQ1", "2025-01-08"),
        ("already imported", "ACQ1", "2025-01-08"),
    ]
    assert counts(db_url) == (3, 0, 0, 0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m898310020880000_20250107.csv", "2025-01-07"),
        ("ACQ1-2025-01-07.csv", "2025-01-07"),
    ],
)
def test_a_merchant_number_in_a_file_name_is_not_a_date(
    sqlite_url: str, tmp_path: Path, name: str, expected: str
) -> None:
    path = _write(tmp_path, name, csv_bytes("detail", []))
    with open_database(sqlite_url) as store:
        assert import_file(store, path).date_from == expected


def test_a_file_name_with_digits_but_no_date_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    path = _write(tmp_path, "detail_898310020880000.csv", csv_bytes("detail", []))
    two = _write(tmp_path, "detail_20250107_20250108.csv", csv_bytes("detail", []))
    with open_database(sqlite_url) as store, pytest.raises(InputError, match="no rows and no date"):
        import_file(store, path)
        with pytest.raises(InputError, match="carries two dates"):
            import_file(store, two)
    assert counts(sqlite_url) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("rrn", "５００６00000001", "rrn"),  # full-width
        ("trc", "٠٠٠٠٠١", "trace_no"),  # Arabic-Indic
        ("amt", "１00.00", "amount"),
        ("settle_date", "２025-01-07", "settle_date"),
        ("txn_time", "2025-01-06 １0:21:00", "txn_time"),
    ],
)
def test_only_ascii_digits_are_digits(
    sqlite_url: str, tmp_path: Path, field: str, value: str, column: str
) -> None:
    row: dict[str, Any] = {**detail(1), "amt": 10000, "fee": 60, "settle_amt": 9940}
    cells = _generic_cells(row)
    cells[column] = value
    path = _write(tmp_path, "detail_20250107.csv", _csv([cells]))
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, path)
    assert f"line 2: field {column}: bad value {value!r}: non-ASCII digit" in str(err.value)
    assert str(path) in str(err.value)
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_a_fixed_width_file_with_full_width_digits_is_refused(
    sqlite_url: str, tmp_path: Path
) -> None:
    good = fixed_width_bytes("2025-01-07", "ACQ2", [detail(1)], "gbk")
    # "000001" is 6 bytes; "０1" is 2 GBK characters + 2 bytes: the same width.
    bad = good.replace(b" 000001 000001 ", b" 000001 " + "００01".encode("gbk")[:6] + b" ", 1)
    assert len(bad) == len(good)
    path = _write(tmp_path, "clear.txt", bad)
    with (
        open_database(sqlite_url) as store,
        pytest.raises(InputError, match=r"line 2: field trace_no: .*non-ASCII digit"),
    ):
        import_file(store, path)


def test_a_row_repeated_in_one_file_is_refused_with_both_lines(db_url: str, tmp_path: Path) -> None:
    rows = [detail(1), detail(2), detail(3), detail(2)]
    path = _write(tmp_path, "detail_20250107.csv", csv_bytes("detail", rows))
    pay = _write(tmp_path, "payout_20250107.csv", csv_bytes("payout", [payout(), payout()]))
    with open_database(db_url) as store:
        with pytest.raises(InputError, match=r"line 5: repeats line 3 field for field"):
            import_file(store, path)
        with pytest.raises(InputError, match=r"line 3: repeats line 2"):
            import_file(store, pay)
        # Merchants: a repeated row is the same update twice, harmless.
        m = _write(tmp_path, "merchants.csv", csv_bytes("merchants", [merchant(), merchant()]))
        import_file(store, m)
    assert counts(db_url) == (1, 0, 0, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"settle_amt": 9941},
            "line 3: field settle_amount: 9941 fen, expected amount - fee = 9942",
        ),
        ({"check_flag": "B"}, "line 3: field settle_amount: 9942 fen, expected 0 (check_flag B"),
        ({"direction": "refund"}, "expected -amount - fee = -10062 fen"),
    ],
)
def test_amount_minus_fee_must_be_the_settle_amount(
    sqlite_url: str, tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    rows = [detail(1), {**detail(2), **changes}]
    path = _write(tmp_path, "detail_20250107.csv", csv_bytes("detail", rows))
    with (
        open_database(sqlite_url) as store,
        pytest.raises(InputError, match=message.replace("(", r"\(")),
    ):
        import_file(store, path)
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_settled_rows_in_and_out_add_up(sqlite_url: str, tmp_path: Path) -> None:
    rows = [
        detail(1),
        {**detail(2), "typ": "refund", "direction": "refund", "fee": -60, "settle_amt": -9942},
        {**detail(3), "check_flag": "B", "settle_amt": 0},
    ]
    path = _write(tmp_path, "detail_20250107.csv", csv_bytes("detail", rows))
    with open_database(sqlite_url) as store:
        assert import_file(store, path).rows == 3


def _generic_cells(row: dict[str, Any]) -> dict[str, str]:
    from daozhang.settle import rows as R

    text = csv_bytes("detail", [row]).decode().split("\r\n")
    return dict(zip(R.DETAIL, text[1].split(","), strict=True))


def _csv(rows: list[dict[str, str]]) -> bytes:
    from daozhang.settle import rows as R

    lines = [",".join(R.DETAIL), *(",".join(r[c] for c in R.DETAIL) for r in rows)]
    return ("\r\n".join([*lines, f"#rows,{len(rows)}"]) + "\r\n").encode()


def test_migration_2_keeps_the_files_and_their_rows(db_url: str, tmp_path: Path) -> None:
    """A store imported into before migration 2 keeps every file, its rows and their links."""
    from daozhang.settle.schema import MIGRATIONS
    from daozhang.store import open_store

    with open_store(db_url, [("settle", MIGRATIONS[:1])]) as store, store.transaction() as tx:
        for n, (kind, digest) in enumerate([("merchants", "aa"), ("detail", "bb")], start=7):
            tx.execute(
                "INSERT INTO settle_files (id, sha256, name, kind, format, encoding, acquirer,"
                " date_from, date_to, n_rows, imported_at)"
                " VALUES (?, ?, ?, ?, 'generic', 'utf-8', 'ACQ1', NULL, NULL, 1, 0)",
                (n * 3, digest, f"{kind}.csv", kind),
            )
        tx.execute(
            "INSERT INTO merchants VALUES ('898310048161234', 'ACQ1', '0.006', NULL, '0', 'T1',"
            " '', 'active', 21)"
        )
        row = {**detail(1), "txn_time": 0, "line": 2}
        cols = [c for c in row if c != "merchant_name"]
        tx.execute(
            f"INSERT INTO settle_detail (file_id, {', '.join(cols)}) VALUES (24,"
            f" {', '.join('?' * len(cols))})",
            [row[c] for c in cols],
        )
    with open_database(db_url) as store, store.transaction() as tx:
        got = tx.execute(
            "SELECT f.kind, f.sha256 FROM settle_detail d JOIN settle_files f ON f.id = d.file_id"
            " UNION ALL SELECT f.kind, f.sha256 FROM merchants m"
            " JOIN settle_files f ON f.id = m.file_id"
        )
    assert sorted(got) == [("detail", "bb"), ("merchants", "aa")]
