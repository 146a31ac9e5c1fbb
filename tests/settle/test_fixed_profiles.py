"""UnionPay's fixed-width files, described in TOML (settle/profiles.toml, reader `fixed`):
the merchant's ZM file and the acquirer's ACOM journal import their samples (synthetic
values, the published layout), take the year of their MMDDhhmmss times from the file name,
and never keep a full card number anywhere."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.schema import open_database
from daozhang.settle.importer import import_file

from tests.correlate.builder import ACQ, Shop
from tests.settle.test_import import counts

SAMPLES = Path(__file__).with_name("samples")
ZM = SAMPLES / "INN25010701ZM_898310048161234"
ACOM = SAMPLES / "IND25010701ACOM"
COLS = "typ, amt, fee, settle_amt, mid, tid, trc, rrn, xid, ord, pan, direction, settle_date"
# The full card numbers in the ACOM sample (synthetic, as an acquirer's file carries them).
MID = "898310048161234"
FULL_PANS = ("6214830012341234", "6228480098765678")


def _rows(url: str) -> list[tuple[object, ...]]:
    with open_database(url) as store, store.transaction() as tx:
        return [tuple(r) for r in tx.execute(f"SELECT {COLS}, txn_time FROM settle_detail")]


def test_unionpay_zm_file_imports_by_its_name_and_layout(db_url: str) -> None:
    with open_database(db_url) as store:
        r = import_file(store, ZM, acquirer="CUP")
    assert (r.profile, r.recognised, r.rows, r.date_from, r.date_to) == (
        "unionpay-zm",
        True,
        3,
        "2025-01-07",
        "2025-01-07",
    )
    assert "the file carries no row count: completeness not checked" in r.notes
    sale, lunch, refund = sorted(_rows(db_url), key=lambda x: int(str(x[-1])))
    # queryId is the channel's transaction id, orderId the merchant's order number; the fee
    # D000000000015 is charged (plus), the settle amount C000000002485 is paid in.
    assert sale[:12] == (
        "sale",
        2500,
        15,
        2485,
        "898310048161234",
        "10293847",
        "100001",
        "",
        "512501070915020000011",
        "DZ20250107000201",
        "621483******1234",
        "in",
    )
    assert sale[12:] == ("2025-01-07", 1736212502)  # 0107091502, the year from the name
    assert lunch[1:4] == (12880, 77, 12803)
    # txnType 04 (退货): the fee comes back (C), the money goes out (D).
    assert (refund[0], refund[1:4], refund[11]) == ("refund", (2500, -15, -2485), "refund")


def test_a_december_sale_in_a_january_zm_file_is_last_years(
    sqlite_url: str, tmp_path: Path
) -> None:
    data = ZM.read_bytes().replace(b"0107091502", b"1231235800", 1)
    path = tmp_path / "INN25010201ZM_898310048161234"
    path.write_bytes(data.replace(b"0107", b"0101"))
    with open_database(sqlite_url) as store:
        import_file(store, path)
    times = sorted(int(str(x[-1])) for x in _rows(sqlite_url))
    assert times[0] == 1735660680  # 2024-12-31 23:58:00 Beijing, not 2025-12-31


def test_a_zm_file_needs_its_name_and_its_widths(sqlite_url: str, tmp_path: Path) -> None:
    renamed = tmp_path / "zm_download.txt"
    shutil.copy(ZM, renamed)
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError, match="does not carry one like"):
            import_file(store, renamed, profile="unionpay-zm")
        # A field one byte too wide shifts every separator after it.
        shifted = tmp_path / "INN25010701ZM_898310048161234"
        lines = ZM.read_bytes().split(b"\r\n")
        lines[1] = lines[1][:4] + b"0" + lines[1][4:-1]
        shifted.write_bytes(b"\r\n".join(lines))
        with pytest.raises(InputError, match=r"line 2: field traceNo: no separator after it"):
            import_file(store, shifted)
        cut = tmp_path / "INN25010701ZM_898310048161234x"
        cut.write_bytes(ZM.read_bytes()[:-300])
        with pytest.raises(InputError, match="truncated: the last line has no line end"):
            import_file(store, cut, profile="unionpay-zm")
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_unionpay_acom_masks_card_numbers_on_the_way_in(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    assert main(["settle", "import", "--db", sqlite_url, str(ACOM)]) == 0
    out = capsys.readouterr()
    assert "(looks like unionpay-acom): detail, 3 rows, 2025-01-07" in out.out
    rows = _rows(sqlite_url)
    assert [(x[0], x[1], x[7], x[10]) for x in rows] == [
        ("sale", 2500, "500700000011", "621483******1234"),
        ("sale", 12880, "500700000012", "622848******5678"),
        ("void", 12880, "500700000013", "622848******5678"),
    ]
    assert rows[0][2:4] == (0, 2500)  # interbank fees are not the merchant's
    # A rejected file: its bad row after a full card number, the error logged.
    bad = tmp_path / "IND25010801ACOM"
    bad.write_bytes(ACOM.read_bytes().replace(b"000000002500", b"0000000025X0", 1))
    assert main(["settle", "import", "--db", sqlite_url, str(bad)]) == 2
    # A card number that is not one: the error never repeats it.
    odd = tmp_path / "IND25010901ACOM"
    odd.write_bytes(ACOM.read_bytes().replace(b"6214830012341234", b"62148300123412A4", 1))
    assert main(["settle", "import", "--db", sqlite_url, str(odd)]) == 2
    out2 = capsys.readouterr()
    assert "field pan: bad value (a card number, not shown)" in out2.err
    seen = out.out + out.err + out2.out + out2.err
    stored = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("daozhang.db*"))
    for pan in (*FULL_PANS, "62148300123412A4"):
        assert pan not in seen
        assert pan.encode() not in stored
    with open_database(sqlite_url) as store:
        logged = " ".join(str(m) for (m,) in store.query("SELECT message FROM settle_import_log"))
    assert "line 1: field txnAmt: bad value '0000000025X0'" in logged
    assert not any(pan in logged for pan in FULL_PANS)


def test_a_fixed_width_user_profile_works_from_its_toml_alone(
    sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "fw.toml").write_text(
        """
[acme-fixed]
description = "a made-up acquirer's fixed-width export"
reader = "fixed"
encodings = ["gbk"]
separator = "|"
detect.name = '^ACME_[0-9]{8}'
name_date = { regex = '^ACME_([0-9]{8})', format = "%Y%m%d" }
settle_date = "file"
defaults = { ch = "card", settle_type = "T1", check_flag = "Y" }
layout = [["mid", 15], ["tid", 8], ["when", 14], ["rrn", 12], ["amount", 10], ["name", 10]]
drop = ["name"]
[acme-fixed.fields]
mid = { column = "mid" }
tid = { column = "tid" }
txn_time = { column = "when", time = "%Y%m%d%H%M%S" }
rrn = { column = "rrn" }
amt = { column = "amount", fen = true }
""",
        encoding="utf-8",
    )
    path = tmp_path / "ACME_20250107.txt"
    path.write_bytes(
        "898310048161234|10293847|20250107101500|500700000099|0000001234|张三      \n".encode("gbk")
    )
    assert (
        main(
            [
                "settle",
                "import",
                "--db",
                sqlite_url,
                "--profiles",
                str(tmp_path / "fw.toml"),
                str(path),
            ]
        )
        == 0
    )
    rows = [(x[1], x[7], x[12]) for x in _rows(sqlite_url)]
    assert rows == [(1234, "500700000099", "2025-01-07")]


def test_acom_rows_correlate_with_the_terminals_receipts(sqlite_url: str, tmp_path: Path) -> None:
    shop = Shop(sqlite_url, tmp_path)
    try:
        sale = shop.sale(
            "2025-01-07 09:15:02",
            2500,
            mid=MID,
            tid="10293847",
            trc="000011",
            rrn="500700000011",
            pan="621483******1234",
        )
        import_file(shop.store, ACOM, acquirer=ACQ)
        found = shop.run("2025-01-07 20:00")
    finally:
        shop.close()
    f = found.of(sale)
    assert f.row is not None and (f.row.line, f.row.rrn) == (1, "500700000011")


ACOMA = SAMPLES / "IND25010701ACOMA"


def test_unionpay_acoma_carries_the_merchants_fee(sqlite_url: str) -> None:
    with open_database(sqlite_url) as store:
        r = import_file(store, ACOMA)
    assert (r.profile, r.recognised, r.rows, r.date_from) == (
        "unionpay-acoma",
        True,
        3,
        "2025-01-07",
    )
    rows = sorted(_rows(sqlite_url), key=lambda x: int(str(x[-1])))
    # 商户手续费 D00000015 is charged; the void's C00000077 comes back as the money goes out.
    assert [(x[0], x[1:4], x[7], x[10], x[11]) for x in rows] == [
        ("sale", (2500, 15, 2485), "500700000011", "621483******1234", "in"),
        ("sale", (12880, 77, 12803), "500700000012", "622848******5678", "in"),
        ("void", (12880, -77, -12803), "500700000013", "622848******5678", "out"),
    ]
    stored = Path(sqlite_url.removeprefix("sqlite:///")).read_bytes()
    assert not any(pan.encode() in stored for pan in FULL_PANS)


def test_an_acom_journal_under_the_other_name_is_named_first_among_the_closest(
    sqlite_url: str, tmp_path: Path
) -> None:
    """ACOM and ACOMA are told apart by name; a record of the other length names the profile
    the name matched first, with both lengths."""
    as_acom = tmp_path / "IND25010701ACOM"
    as_acom.write_bytes(ACOMA.read_bytes())
    as_acoma = tmp_path / "IND25010701ACOMA"
    as_acoma.write_bytes(ACOM.read_bytes())
    with open_database(sqlite_url) as store:
        with pytest.raises(
            InputError, match=r"\(closest: unionpay-acom: line 1 is 401 bytes, a record 300;"
        ):
            import_file(store, as_acom)
        with pytest.raises(
            InputError, match=r"\(closest: unionpay-acoma: line 1 is 300 bytes, a record 401;"
        ):
            import_file(store, as_acoma)
        # Named, the short record is read and its missing fee refused with line and field.
        with pytest.raises(InputError, match=r"line 1: field merFee: bad value ''"):
            import_file(store, as_acoma, profile="unionpay-acoma")
        bad = tmp_path / "IND25010801ACOMA"
        bad.write_bytes(ACOMA.read_bytes().replace(b"C00000077", b"X00000077"))
        with pytest.raises(InputError, match=r"line 3: field merFee: bad value 'X00000077'"):
            import_file(store, bad)
    assert counts(sqlite_url) == (0, 0, 0, 0)


@pytest.mark.parametrize("sample", [ZM, ACOM, ACOMA])
def test_a_record_cut_at_c_speed_has_the_cells_cut_field_by_field(sample: Path) -> None:
    from daozhang.settle import profiles as P
    from daozhang.settle.fixed import _Cutter

    profile = next(
        p for p in P.load().values() if p.detect_name and re.search(p.detect_name, sample.name)
    )
    cutter = _Cutter(sample.name, "gbk", profile)
    records = [r.ljust(profile.record_bytes) for r in sample.read_bytes().split(b"\r\n") if r]
    # The samples as they are (ACOM's are ASCII), in ASCII alone, with a Chinese name, with a
    # character cut in half, and with a shifted field.
    records += [bytes(b if b < 128 else 0x58 for b in r) for r in records]
    records += [r.replace(b"   ", "店".encode("gbk") + b" ", 1) for r in records]
    records += [r.replace(b"   ", b"\xb5  ", 1) for r in records[: len(records) // 2]]
    records += [r[:30] + b"0" + r[30:-1] for r in records]
    assert any(r.isascii() for r in records)  # some take the fast cut
    for line, raw in enumerate(records, start=1):
        try:
            slow: object = cutter.field_by_field(line, raw)
        except InputError as exc:
            slow = str(exc)
        try:
            fast: object = cutter.cells(line, raw)
        except InputError as exc:
            fast = str(exc)
        assert fast == slow, (sample.name, line)


def test_an_empty_journal_is_still_recognised_as_an_empty_day(
    sqlite_url: str, tmp_path: Path
) -> None:
    empty = tmp_path / "IND25010701ACOMA"
    empty.write_bytes(b"")
    with open_database(sqlite_url) as store:
        r = import_file(store, empty)
    assert (r.profile, r.rows, r.date_from, r.date_to) == (
        "unionpay-acoma",
        0,
        "2025-01-07",
        "2025-01-07",
    )


def test_an_empty_csv_is_not_taken_for_a_wechat_bill(sqlite_url: str, tmp_path: Path) -> None:
    empty = tmp_path / "detail_20250107.csv"
    empty.write_bytes(b"")
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, empty)
    assert "(closest: generic: the file is empty (no header);" in str(err.value)
