"""Profiles: the built-in real layouts import their hand-written samples (synthetic values,
the published column layout), files are recognised or refused with the closest profiles, and
a user profile works from its TOML alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes
from daozhang.schema import open_database
from daozhang.settle.importer import import_file
from daozhang.settle.profiles import load

from tests.settle.test_import import counts, detail

SAMPLES = Path(__file__).with_name("samples")
WECHAT = SAMPLES / "wechat_tradebill_1900000109_20250107.csv"
ALIPAY = SAMPLES / "20880000000000010156_20250107_业务明细.csv"
COLS = "typ, amt, fee, settle_amt, mid, tid, ord, xid, rrn, ch, direction, settle_date, txn_time"


def _rows(url: str) -> list[tuple[object, ...]]:
    with open_database(url) as store, store.transaction() as tx:
        return [tuple(r) for r in tx.execute(f"SELECT {COLS} FROM settle_detail ORDER BY line")]


def test_wechat_trade_bill(db_url: str) -> None:
    with open_database(db_url) as store:
        r = import_file(store, WECHAT, acquirer="WXPAY")
    assert (r.profile, r.recognised, r.rows, r.date_from) == (
        "wechat-tradebill",
        True,
        3,
        "2025-01-07",
    )
    sale, lunch, refund = _rows(db_url)
    # 0.15000 yuan fee = 15 fen; the summary lines at the end are not rows.
    assert sale[:8] == (
        "sale",
        2500,
        15,
        2485,
        "1900000109",
        "POS00001",
        "DZ20250107000001",
        "4200000001202501070000000001",
    )
    assert sale[8:12] == ("", "qr", "in", "2025-01-07")
    assert sale[12] == 1736212502  # 2025-01-07 09:15:02 Beijing
    assert lunch[1:4] == (12880, 77, 12803)  # 0.77280 yuan rounds half up to 77 fen
    # The refund: the amount refunded, the fee returned (negative), money out.
    assert refund[:4] == ("refund", 2500, -15, -2485)
    assert (refund[6], refund[10]) == ("DZ20250107000001", "refund")


def test_alipay_trade_detail_in_gbk(db_url: str) -> None:
    with open_database(db_url) as store:
        r = import_file(store, ALIPAY, acquirer="ALIPAY")
    assert (r.profile, r.rows, r.date_from, r.acquirer) == (
        "alipay-trade",
        3,
        "2025-01-07",
        "ALIPAY",
    )
    first, _, refund = _rows(db_url)
    # The PID from '#账号：[2088...0156]'; the ids lose the tab that ends them.
    assert first[:8] == (
        "sale",
        3650,
        22,
        3628,
        "2088000000000001",
        "POS00002",
        "DZ20250107000101",
        "2025010722001100000000000001",
    )
    assert refund[:4] == ("refund", 3650, -22, -3628)


def test_the_command_says_which_profile_it_picked(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["settle", "import", "--db", sqlite_url, str(WECHAT)]) == 0
    assert "(looks like wechat-tradebill): detail, 3 rows, 2025-01-07" in capsys.readouterr().out
    assert main(["settle", "profiles"]) == 0
    listed = capsys.readouterr().out
    for name in (
        "generic",
        "unionpay-fixed",
        "unionpay-zm",
        "unionpay-acom",
        "wechat-tradebill",
        "alipay-trade",
        "allinpay-pos",
        "chinaums-pos",
    ):
        assert name in listed


def test_a_file_no_profile_fits_is_refused_naming_the_closest(
    sqlite_url: str, tmp_path: Path
) -> None:
    text = WECHAT.read_text(encoding="utf-8").replace("微信订单号", "交易单号")
    odd = tmp_path / "bill_20250107.csv"
    odd.write_text(text, encoding="utf-8")
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, odd)
    message = str(err.value)
    assert (
        "no profile recognises this file (closest: wechat-tradebill: no header with 微信订单号"
        in message
    )
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_a_named_profile_that_does_not_fit_says_where(sqlite_url: str, tmp_path: Path) -> None:
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError, match="no profile 'lakala'"):
            import_file(store, WECHAT, profile="lakala")
        with pytest.raises(InputError, match="line 1: field rec: expected a header record"):
            import_file(store, WECHAT, profile="unionpay-fixed")


def test_a_bad_cell_in_a_profiled_file_names_file_line_and_column(
    sqlite_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "wechat_20250107.csv"
    bad.write_text(
        WECHAT.read_text(encoding="utf-8").replace("`0.60%,`128.80,", "`0.60%,`128.8O,"),
        encoding="utf-8",
    )
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, bad)
    assert f"{bad}: line 3: field 订单金额: bad value '128.8O': expected an amount" in str(
        err.value
    )
    assert counts(sqlite_url) == (0, 0, 0, 0)


USER_PROFILE = """
[lakala-export]
description = "a made-up acquirer's portal export"
reader = "table"
kind = "detail"
encodings = ["utf-8"]
header_starts = "流水号"
detect.header = ["流水号", "商户编号", "交易金额", "手续费"]
defaults = { ch = "card", settle_type = "T1", check_flag = "Y" }
settle_date = "txn_time"

[lakala-export.fields]
rrn = { column = "参考号" }
mid = { column = "商户编号" }
tid = { column = "终端编号" }
txn_time = { column = "交易时间", time = "%Y/%m/%d %H:%M:%S" }
typ = { column = "交易类型", map = { "消费" = "sale", "撤销" = "void" } }
amt = { column = "交易金额", yuan = true }
fee = { column = "手续费", yuan = true }
settle_amt = { column = "结算金额", yuan = true }
"""


def test_a_user_profile_works_from_its_toml_alone(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "acq.toml").write_text(USER_PROFILE, encoding="utf-8")
    export = tmp_path / "export_20250107.csv"
    export.write_text(
        "流水号,商户编号,终端编号,参考号,交易时间,交易类型,交易金额,手续费,结算金额\n"
        "1,822290070110001,50000001,500600000001,2025/01/07 10:20:00,消费,100.00,0.38,99.62\n"
        "2,822290070110001,50000001,500600000002,2025/01/07 10:25:00,消费,50.00,0.19,49.81\n",
        encoding="utf-8",
    )
    profiles = load(tmp_path / "acq.toml")
    with open_database(sqlite_url) as store:
        r = import_file(store, export, profiles=profiles, acquirer="LKL")
    assert (r.profile, r.rows) == ("lakala-export", 2)
    rows = _rows(sqlite_url)
    assert [(x[0], x[1], x[2], x[3], x[8]) for x in rows] == [
        ("sale", 10000, 38, 9962, "500600000001"),
        ("sale", 5000, 19, 4981, "500600000002"),
    ]


def test_a_broken_user_profile_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[x]\nreader = "table"\n[x.fields]\nmid = { column = "m" }\n', "utf-8")
    with pytest.raises(InputError, match=r"bad.toml: profile 'x': fields: amt, txn_time missing"):
        load(path)
    path.write_text('[generic]\nreader = "generic"\n', "utf-8")
    with pytest.raises(InputError, match="a built-in profile has that name"):
        load(path)


def test_the_generic_and_fixed_width_files_are_recognised(sqlite_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "detail_20250107.csv"
    csv_path.write_bytes(csv_bytes("detail", [detail(1)]))
    with open_database(sqlite_url) as store:
        assert import_file(store, csv_path).profile == "generic"
