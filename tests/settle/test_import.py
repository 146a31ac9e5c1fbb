"""Settlement import: both formats, both encodings, atomic, idempotent, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.schema import open_database
from daozhang.settle.importer import import_file, list_imports

T0 = 1736130000  # 2025-01-06 10:20 Beijing


def detail(n: int, settle_date: str = "2025-01-07", mid: str = "898310048161234") -> dict[str, Any]:
    return {
        "settle_date": settle_date,
        "mid": mid,
        "tid": "10293847",
        "txn_time": T0 + n * 60,
        "typ": "sale",
        "ch": "card",
        "bat": "000001",
        "trc": f"{n:06d}",
        "rrn": f"5006{n:08d}",
        "orrn": "",
        "pan": "622848******1234",
        "ck": "D",
        "amt": 10000 + n,
        "fee": 60,
        "settle_amt": 9940 + n,
        "direction": "in",
        "settle_type": "T1",
        "check_flag": "Y",
        "payout_id": "P20250107A",
        "merchant_name": "上海测试便利店",
    }


def payout() -> dict[str, Any]:
    return {
        "payout_id": "P20250107A",
        "mid": "898310048161234",
        "settle_type": "T1",
        "settle_date": "2025-01-07",
        "plan_fen": 29823,
        "fee_fen": 0,
        "suspend_fen": 0,
        "retained_fen": 0,
        "real_fen": 29823,
        "state": "paid",
        "fail_reason": "",
        "bank_account": "6222****1234",
    }


def merchant() -> dict[str, Any]:
    return {
        "mid": "898310048161234",
        "acquirer": "ACQ1",
        "fee_rate": "0.0060",
        "debit_cap_fen": 2000,
        "d0_surcharge": "0.0010",
        "settle_type": "T1",
        "bank_account": "6222****1234",
        "status": "active",
    }


def counts(url: str) -> tuple[int, int, int, int]:
    with open_database(url) as store, store.transaction() as tx:
        return tuple(  # type: ignore[return-value]
            int(tx.execute(f"SELECT COUNT(*) FROM {t}")[0][0])
            for t in ("settle_files", "settle_detail", "payouts", "merchants")
        )


def test_generic_files_import_once_in_utf8_and_gbk(db_url: str, tmp_path: Path) -> None:
    files = {
        "merchants.csv": csv_bytes("merchants", [merchant()], "utf-8"),
        "detail_20250107.csv": csv_bytes("detail", [detail(1), detail(2), detail(3)]),
        "payout_20250107.csv": csv_bytes(
            "payout", [{**payout(), "fail_reason": "账户冻结"}], "gbk"
        ),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with open_database(db_url) as store:
        results = [import_file(store, tmp_path / n) for n in files]
        assert [r.outcome for r in results] == ["imported"] * 3
        assert results[1].acquirer == "ACQ1"  # from the merchants already imported
        assert (results[1].date_from, results[1].date_to) == ("2025-01-07", "2025-01-07")
        again = import_file(store, tmp_path / "detail_20250107.csv")
        assert again.outcome == "already imported"
        with store.transaction() as tx:
            row = tx.execute(
                "SELECT amt, fee, settle_amt, txn_time, pan FROM settle_detail WHERE trc = '000002'"
            )[0]
            enc = tx.execute("SELECT encoding FROM settle_files ORDER BY id")
            reason = tx.execute("SELECT fail_reason FROM payouts")[0][0]
        assert row == (10002, 60, 9942, T0 + 120, "622848******1234")
        assert [e[0] for e in enc] == ["utf-8", "utf-8", "gbk"] and reason == "账户冻结"
        assert [f["kind"] for f in list_imports(store)] == ["merchants", "detail", "payout"]
    assert counts(db_url) == (3, 3, 1, 1)


def test_fixed_width_file_in_gbk_and_utf8(db_url: str, tmp_path: Path) -> None:
    rows = [detail(i) for i in range(1, 6)]
    (tmp_path / "a.txt").write_bytes(fixed_width_bytes("2025-01-07", "ACQ2", rows, "gbk"))
    (tmp_path / "b.txt").write_bytes(
        fixed_width_bytes("2025-01-08", "ACQ2", [detail(9, "2025-01-08")], "utf-8")
    )
    with open_database(db_url) as store:
        a = import_file(store, tmp_path / "a.txt")
        b = import_file(store, tmp_path / "b.txt", fmt="unionpay")
        assert (a.kind, a.rows, a.acquirer, a.date_to) == ("detail", 5, "ACQ2", "2025-01-07")
        assert (b.rows, b.date_from) == (1, "2025-01-08")
        with store.transaction() as tx:
            got = tx.execute(
                "SELECT rrn, amt, fee, settle_amt, typ, ch, direction FROM"
                " settle_detail WHERE trc = '000003'"
            )
        assert got == [("500600000003", 10003, 60, 9943, "sale", "card", "in")]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda rows: rows[1].update(amt="12x"), "line 3: field amount"),
        (lambda rows: rows[2].update(trc="12345"), "line 4: field trace_no"),
        (lambda rows: rows[0].update(pan="6228481234567890"), "line 2: field card_masked"),
        (lambda rows: rows[1].update(settle_date="2025-13-01"), "line 3: field settle_date"),
        (lambda rows: rows[2].update(check_flag="X"), "line 4: field check_flag"),
    ],
)
def test_a_bad_row_rejects_the_whole_file(
    sqlite_url: str, tmp_path: Path, mutate: Any, expected: str
) -> None:
    rows = [detail(1), detail(2), detail(3)]
    mutate(rows)
    path = tmp_path / "detail_bad.csv"
    path.write_bytes(_raw_csv(rows))
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError) as err:
            import_file(store, path)
        assert str(path) in str(err.value) and expected in str(err.value)
        with store.transaction() as tx:
            log = tx.execute("SELECT outcome, message FROM settle_import_log")
        assert log[0][0] == "rejected" and expected in log[0][1]
    assert counts(sqlite_url) == (0, 0, 0, 0)


def _raw_csv(rows: list[dict[str, Any]]) -> bytes:
    """Like csv_bytes, but passes strings through untouched (to write bad values)."""
    from daozhang.settle import rows as R

    out = [",".join(R.DETAIL)]
    for r in rows:
        cells = []
        for col, (key, _) in R.DETAIL.items():
            v = r[key]
            if isinstance(v, int) and col == "txn_time":
                v = "2025-01-06 10:21:00"
            elif isinstance(v, int):
                v = f"{v // 100}.{v % 100:02d}"
            cells.append(str(v))
        out.append(",".join(cells))
    return ("\r\n".join(out) + "\r\n").encode()


def test_wrong_encoding_is_named(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "detail_20250107.csv"
    path.write_bytes(csv_bytes("detail", [detail(1)], "utf-16"))
    latin = tmp_path / "merchants.csv"
    latin.write_bytes(csv_bytes("merchants", [merchant()], trailer=False) + b"\xff\xfe\xff\r\n")
    forced = tmp_path / "gbk_detail_20250107.csv"
    forced.write_bytes(csv_bytes("payout", [{**payout(), "fail_reason": "账户冻结"}], "gbk"))
    with open_database(db_url) as store:
        with pytest.raises(InputError, match=r"line 1: wrong encoding: not utf-8 or gbk"):
            import_file(store, path)
        with pytest.raises(InputError, match=r"line 3: wrong encoding: not utf-8 or gbk"):
            import_file(store, latin)
        with pytest.raises(InputError, match=r"line 2: wrong encoding: not utf-8 text"):
            import_file(store, forced, encoding="utf-8")
    assert counts(db_url) == (0, 0, 0, 0)


def test_future_dated_and_overlapping_files_are_refused(db_url: str, tmp_path: Path) -> None:
    future = tmp_path / "future.csv"
    future.write_bytes(csv_bytes("detail", [detail(1, "2099-01-01")]))
    first = tmp_path / "first.txt"
    first.write_bytes(fixed_width_bytes("2025-01-07", "ACQ2", [detail(1)]))
    second = tmp_path / "second.txt"
    second.write_bytes(fixed_width_bytes("2025-01-07", "ACQ2", [detail(1), detail(2)]))
    with open_database(db_url) as store:
        with pytest.raises(InputError, match="dated in the future: settle date 2099-01-01"):
            import_file(store, future)
        import_file(store, first)
        with pytest.raises(InputError, match="already imported"):
            import_file(store, second)
    assert counts(db_url) == (1, 1, 0, 0)


def test_fixed_width_damage_is_located(sqlite_url: str, tmp_path: Path) -> None:
    good = fixed_width_bytes("2025-01-07", "ACQ2", [detail(1), detail(2)])
    lines = good.split(b"\r\n")
    cases = {
        "short": (b"\r\n".join([*lines[:2], lines[2][:-5], *lines[3:]]), "line 3: field record"),
        "truncated": (b"\r\n".join(lines[:3]), "missing trailer"),
        "count": (good.replace(b"T 00000002", b"T 00000003"), "field count"),
        "amount": (good.replace(b" 000000010001 ", b" 0000000100x1 "), "line 2: field amount"),
    }
    with open_database(sqlite_url) as store:
        for name, (data, expected) in cases.items():
            path = tmp_path / f"{name}.txt"
            path.write_bytes(data)
            with pytest.raises(InputError, match=expected):
                import_file(store, path)
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_cli_import_and_list(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "detail_20250107.csv"
    good.write_bytes(csv_bytes("detail", [detail(1)]))
    bad = tmp_path / "payout_20250107.csv"
    bad.write_bytes(csv_bytes("payout", [payout()]).replace(b"paid", b"gone"))
    assert main(["settle", "import", "--db", sqlite_url, str(good), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert "imported: " in out and "field state" in err and "line 2" in err
    assert main(["settle", "import", "--db", sqlite_url, str(good)]) == 0
    assert "already imported" in capsys.readouterr().out
    assert main(["settle", "list", "--db", sqlite_url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(f["kind"], f["date_from"], f["rows"]) for f in listed] == [("detail", "2025-01-07", 1)]


def test_merchants_update_and_acquirer_mismatch(sqlite_url: str, tmp_path: Path) -> None:
    first = tmp_path / "merchants1.csv"
    first.write_bytes(csv_bytes("merchants", [merchant()]))
    second = tmp_path / "merchants2.csv"
    second.write_bytes(csv_bytes("merchants", [{**merchant(), "status": "frozen"}]))
    clearing = tmp_path / "clear.txt"
    clearing.write_bytes(fixed_width_bytes("2025-01-07", "ACQ2", [detail(1)]))
    with open_database(sqlite_url) as store:
        import_file(store, first)
        import_file(store, second)
        with store.transaction() as tx:
            assert tx.execute("SELECT status FROM merchants") == [("frozen",)]
        with pytest.raises(InputError, match="the header says 'ACQ2', --acquirer says 'ACQ9'"):
            import_file(store, clearing, acquirer="ACQ9")
    assert counts(sqlite_url) == (2, 0, 0, 1)
