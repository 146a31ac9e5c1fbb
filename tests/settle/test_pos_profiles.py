"""The POS statements of Allinpay and ChinaUMS (settle/profiles.toml): the date and the time
in two columns, batch, voucher (凭证号) and RRN; the personal data some exports carry
(cardholder name, ID number) is dropped as the row is read and stored nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.errors import InputError
from daozhang.schema import open_database
from daozhang.settle.importer import import_file

from tests.correlate.builder import ACQ, Shop

SAMPLES = Path(__file__).with_name("samples")
ALLINPAY = SAMPLES / "allinpay_560581048161234_20250107.csv"
CHINAUMS = SAMPLES / "chinaums_898310058121234_20250107.csv"
COLS = "typ, amt, fee, settle_amt, mid, tid, bat, trc, rrn, pan, xid, ord, settle_date, txn_time"
PERSONAL = ("张伟", "李娜", "王芳", "赵强", "110101199001011234", "440101198804045678")


def _rows(url: str) -> list[tuple[object, ...]]:
    with open_database(url) as store, store.transaction() as tx:
        return [tuple(r) for r in tx.execute(f"SELECT {COLS} FROM settle_detail ORDER BY line")]


def _stored(url: str) -> bytes:
    db = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in db.parent.glob("daozhang.db*"))


def test_allinpay_pos_statement(sqlite_url: str) -> None:
    with open_database(sqlite_url) as store:
        r = import_file(store, ALLINPAY, acquirer="ALLINPAY")
    assert (r.profile, r.recognised, r.rows, r.date_from) == (
        "allinpay-pos",
        True,
        3,
        "2025-01-07",
    )
    sale, _, refund = _rows(sqlite_url)
    assert sale == (
        "sale",
        2500,
        13,
        2487,
        "560581048161234",
        "20250001",
        "000003",
        "000101",
        "501709150201",
        "622848******1234",
        "112094120000000101",
        "DZ20250107000301",
        "2025-01-07",
        1736212502,  # 2025-01-07 + 09:15:02, Beijing
    )
    assert refund[:4] == ("refund", 2500, -13, -2487)
    for text in PERSONAL:
        assert text.encode("utf-8") not in _stored(sqlite_url)
        assert text.encode("gbk") not in _stored(sqlite_url)


def test_chinaums_pos_statement(sqlite_url: str) -> None:
    with open_database(sqlite_url) as store:
        r = import_file(store, CHINAUMS, acquirer="CUMS")
    assert (r.profile, r.rows, r.date_from) == ("chinaums-pos", 3, "2025-01-07")
    sale, big, void = _rows(sqlite_url)
    assert sale[:10] == (
        "sale",
        8800,
        48,
        8752,
        "898310058121234",
        "31234567",
        "000012",
        "000201",
        "091502123456",
        "622848******4321",
    )
    assert big[13] == 1736215810  # 20250107 101010
    assert void[:4] == ("void", 100000, -600, -99400)
    for text in PERSONAL:
        assert text.encode("utf-8") not in _stored(sqlite_url)
        assert text.encode("gbk") not in _stored(sqlite_url)


def test_a_bad_date_or_time_column_is_named(sqlite_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "chinaums_20250107.csv"
    bad.write_bytes(CHINAUMS.read_bytes().replace(b",101010,", b",1010,", 1))
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, bad)
    assert "line 3: field 交易日期/交易时间: bad value '20250107 1010'" in str(err.value)


def test_a_profile_may_not_map_a_dropped_column(tmp_path: Path) -> None:
    from daozhang.settle.profiles import load

    path = tmp_path / "p.toml"
    path.write_text(
        '[x]\nreader = "table"\ndetect.header = ["a"]\ndrop = ["name"]\n'
        '[x.fields]\nmid = { column = "name" }\namt = { column = "a", yuan = true }\n'
        'txn_time = { column = "t", time = "%Y" }\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="field 'mid': its column is dropped"):
        load(path)


@pytest.mark.parametrize(
    ("sample", "mid", "rrn", "at", "amt"),
    [
        (ALLINPAY, "560581048161234", "501712304502", "2025-01-07 12:30:45", 30000),
        (CHINAUMS, "898310058121234", "091502123456", "2025-01-07 09:15:02", 8800),
    ],
)
def test_pos_statement_rows_correlate_with_receipts(
    sqlite_url: str, tmp_path: Path, sample: Path, mid: str, rrn: str, at: str, amt: int
) -> None:
    shop = Shop(sqlite_url, tmp_path)
    try:
        receipt = shop.sale(at, amt, mid=mid, rrn=rrn)
        import_file(shop.store, sample, acquirer=ACQ)
        found = shop.run("2025-01-07 20:00")
    finally:
        shop.close()
    f = found.of(receipt)
    assert f.row is not None and (f.row.rrn, f.row.amt) == (rrn, amt)
