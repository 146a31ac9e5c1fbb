"""Settlement files in zip and gzip, as acquirers send them, and the limits that keep an
archive bomb from filling the disk (settle/container.py)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.errors import InputError
from daozhang.schema import open_database
from daozhang.settle import container
from daozhang.settle.importer import import_files

from tests.settle.test_import import counts

SAMPLES = Path(__file__).with_name("samples")
WECHAT = SAMPLES / "wechat_tradebill_1900000109_20250107.csv"
ALIPAY = SAMPLES / "20880000000000010156_20250107_业务明细.csv"
ZM = SAMPLES / "INN25010701ZM_898310048161234"


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_a_gzip_trade_bill_imports_as_its_inner_file(sqlite_url: str, tmp_path: Path) -> None:
    packed = tmp_path / "wechat_tradebill_1900000109_20250107.csv.gz"
    packed.write_bytes(gzip.compress(WECHAT.read_bytes()))
    with open_database(sqlite_url) as store:
        (r,) = import_files(store, packed)
        # The same bytes unpacked are the same file.
        (again,) = import_files(store, WECHAT)
    assert (r.name, r.profile, r.rows) == (
        f"{packed}/wechat_tradebill_1900000109_20250107.csv",
        "wechat-tradebill",
        3,
    )
    assert again.outcome == "already imported"


def test_an_alipay_zip_imports_its_detail_and_skips_its_summary(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = "#支付宝业务汇总查询\n业务类型,收入笔数,收入金额（+元）\n交易,2,73.00\n".encode("gbk")
    packed = _zip(
        tmp_path / "20880000000000010156_20250107.csv.zip",
        {
            ALIPAY.name: ALIPAY.read_bytes(),
            "20880000000000010156_20250107_业务明细(汇总).csv": summary,
        },
    )
    assert main(["settle", "import", "--db", sqlite_url, str(packed)]) == 0
    out = capsys.readouterr().out
    assert f"imported: {packed}/{ALIPAY.name} (looks like alipay-trade): detail, 3 rows" in out
    assert "skipped: " in out and "(汇总).csv: no profile recognises this file" in out
    assert counts(sqlite_url)[:2] == (1, 3)


def test_a_zm_file_in_a_zip_is_known_by_its_entry_name(sqlite_url: str, tmp_path: Path) -> None:
    packed = _zip(tmp_path / "download.zip", {ZM.name: ZM.read_bytes()})
    with open_database(sqlite_url) as store:
        (r,) = import_files(store, packed)
    assert (r.profile, r.date_from, r.rows) == ("unionpay-zm", "2025-01-07", 3)


def test_a_gzip_bomb_is_refused_while_unpacking(sqlite_url: str, tmp_path: Path) -> None:
    bomb = tmp_path / "detail_20250107.csv.gz"
    bomb.write_bytes(gzip.compress(b"0" * (16 << 20), compresslevel=9))  # 16 MiB in ~16 KiB
    assert bomb.stat().st_size < 100_000
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError, match=r"unpacks to more than 200 times its packed size"):
            import_files(store, bomb)
        logged = store.query("SELECT outcome, message FROM settle_import_log")
    assert logged[0][0] == "rejected" and "archive bomb" in logged[0][1]
    assert counts(sqlite_url) == (0, 0, 0, 0)


def test_zip_limits_entries_size_and_nesting(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = _zip(tmp_path / "many.zip", {f"f{i}.csv": b"x\n" for i in range(65)})
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr(ZM.name, ZM.read_bytes())
    nested = _zip(tmp_path / "nested.zip", {"inner.zip": inner.getvalue()})
    stored = tmp_path / "big.zip"
    with zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as z:
        z.writestr(ZM.name, ZM.read_bytes())
    with open_database(sqlite_url) as store:
        with pytest.raises(InputError, match="65 entries in the zip, at most 64"):
            import_files(store, many)
        with pytest.raises(InputError, match=r"inner\.zip: an archive inside an archive"):
            import_files(store, nested)
        monkeypatch.setattr(container, "MAX_SIZE", 1000)
        with pytest.raises(InputError, match="unpacks to more than 1000 bytes"):
            import_files(store, stored)
        bad = tmp_path / "broken.gz"
        bad.write_bytes(gzip.compress(ZM.read_bytes())[:-20])
        with pytest.raises(InputError, match="not a readable gzip file"):
            import_files(store, bad)
    assert counts(sqlite_url) == (0, 0, 0, 0)
