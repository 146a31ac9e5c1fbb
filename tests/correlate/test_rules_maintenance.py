"""The acquirer's announced maintenance and upgrade windows (DESIGN §2.3
`acquirer_maintenance`): imported with `settle notices import`, cited by the sales and payouts
inside one, and the explanation of a gap on an acquirer-day a window covers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.correlate.render import explain
from daozhang.errors import InputError
from daozhang.settle.notices import import_notices, load

from tests.correlate.builder import M1, M2, M3, Shop, bj, day, facts

UPGRADE = "清算系统升级 clearing system upgrade"


def test_a_gap_on_an_acquirer_day_in_a_window_is_explained_by_it(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00", amt=123_450)
    any_shop.detail_file("2025-01-08")  # imported, and the sale is not in it
    any_shop.notice("2025-01-07 23:00", "2025-01-08 04:00", UPGRADE)
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "acquirer_maintenance", "complete")
    assert (f.expected_date, f.short_fen) == (day("2025-01-08"), 0)
    assert facts(f, "notice") == [
        f"ACQ1 announced {UPGRADE} from 2025-01-07 23:00:00 to 2025-01-08 04:00:00 (notice line 2)"
    ]
    text = explain(f)
    assert text["zh"].startswith("2025-01-07 15:00:00的¥1234.50交易：收单机构ACQ1公告")
    assert "2025-01-07 23:00至2025-01-08 04:00" in text["zh"] and "原定2025年1月8日" in text["zh"]
    assert "下一步：请联系收单机构确认维护结束后的补清算" in text["zh"]
    assert text["en"].startswith("The ¥1234.50 sale at 2025-01-07 15:00:00: ACQ1 announced")
    assert "from 2025-01-07 23:00 to 2025-01-08 04:00" in text["en"]
    assert "(due 2025-01-08)" in text["en"] and "Next: Ask the acquirer when it will" in text["en"]


def test_a_window_of_another_acquirer_or_another_day_explains_nothing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.detail_file("2025-01-08")
    shop.notice("2025-01-07 23:00", "2025-01-08 04:00", UPGRADE, acquirer="ACQ2")
    shop.notice("2025-01-10 23:00", "2025-01-11 04:00", UPGRADE)
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("gap", "unknown")
    assert facts(f, "notice") == [] and f.notice is None


def test_many_merchants_unpaid_in_a_window_are_maintenance_not_acquirer_side(shop: Shop) -> None:
    sales = [
        shop.sale("2025-01-07 15:00", mid=mid, tid=f"{n + 1}0000001", dev=f"DEV0000{n + 1}")
        for n, mid in enumerate((M1, M2, M3))
    ]
    shop.detail_file("2025-01-08")
    shop.notice("2025-01-08 01:00", "2025-01-08 06:00", UPGRADE)
    found = shop.run("2025-01-09 12:00")
    assert {found.of(s).cause for s in sales} == {"acquirer_maintenance"}


def test_a_payout_late_on_a_window_day_is_maintenance_with_the_bank_delay_beside(
    shop: Shop,
) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="in_progress")
    shop.notice("2025-01-08 09:00", "2025-01-08 18:00", "出款系统维护 payout system maintenance")
    found = shop.run("2025-01-11 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.also) == ("gap", "acquirer_maintenance", ["bank_delay"])
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.also) == ("gap", "acquirer_maintenance", ["bank_delay"])
    assert "出款系统维护" in explain(p)["zh"] and "¥99.40" in explain(p)["zh"]
    assert "payout system maintenance" in explain(p)["en"]


def test_a_sale_inside_a_window_cites_it_whatever_its_cause(shop: Shop) -> None:
    s = shop.sale("2025-01-08 02:00")  # not due yet as of the 8th
    shop.notice("2025-01-08 01:00", "2025-01-08 06:00", UPGRADE)
    f = shop.run("2025-01-08 12:00").of(s)
    assert (f.status, f.cause) == ("pending", "timing")
    assert len(facts(f, "notice")) == 1
    assert UPGRADE in explain(f)["en"]


# --- the file -------------------------------------------------------------------------------


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'n.db'}"


def test_csv_and_toml_import_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "notices.csv"
    csv.write_text(
        "acquirer,start,end,what\nACQ1,2025-01-07 23:00,2025-01-08 04:00,清算系统升级\n",
        encoding="utf-8",
    )
    toml = tmp_path / "notices.toml"
    toml.write_text(
        '[[notice]]\nacquirer = "ACQ2"\nstart = "2025-02-01 00:00"\nend = "2025-02-01 02:30"\n'
        'what = "网关割接"\n',
        encoding="utf-8",
    )
    db = _db(tmp_path)
    assert main(["settle", "notices", "import", str(csv), "--db", db]) == 0
    assert main(["settle", "notices", "import", str(toml), "--db", db]) == 0
    assert main(["settle", "notices", "import", str(csv), "--db", db]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("1 new window(s), 0 already known")
    assert out[2].endswith("0 new window(s), 1 already known")
    assert main(["settle", "notices", "list", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ACQ1     2025-01-07 23:00 .. 2025-01-08 04:00  清算系统升级",
        "ACQ2     2025-02-01 00:00 .. 2025-02-01 02:30  网关割接",
    ]


BAD = [
    ("n.csv", "acquirer,start,what\n", "line 1: missing columns: end"),
    (
        "n.csv",
        "acquirer,start,end,what\nACQ1,2025-01-07 23:00,2025-01-08 04:00,ok\n"
        "ACQ1,2025-01-09 25:00,2025-01-10 01:00,bad hour\n",
        "line 3: field start: bad value '2025-01-09 25:00'",
    ),
    (
        "n.csv",
        "acquirer,start,end,what\nACQ1,2025-01-08 04:00,2025-01-07 23:00,backwards\n",
        "line 2: field end: the window ends before it starts",
    ),
    ("n.csv", "acquirer,start,end,what\nACQ 1,2025-01-07 23:00,2025-01-08 04:00,x\n", "line 2"),
    ("n.csv", "acquirer,start,end,what\nACQ1,2025-01-07 23:00,2025-01-08 04:00,\n", "field what"),
    (
        "n.toml",
        '[[notice]]\nacquirer = "ACQ1"\nstart = "2025-01-07 23:00"\nend = "2025-01-08 04:00"\n'
        'what = "x"\n\n[[notice]]\nacquirer = "ACQ1"\nstart = "2025-01-07"\n'
        'end = "2025-01-08 04:00"\nwhat = "y"\n',
        "n.toml: line 7: field start",
    ),
    ("n.toml", '[[notice]]\nacquirer = "ACQ1\n', "n.toml: line 2:"),
]


@pytest.mark.parametrize(("name", "text", "says"), BAD, ids=[b[2] for b in BAD])
def test_a_bad_file_is_refused_with_its_line_and_nothing_is_stored(
    tmp_path: Path, name: str, text: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    db = _db(tmp_path)
    assert main(["settle", "notices", "import", str(path), "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"daozhang: {path}: ") and says in err, err
    from daozhang.schema import open_database

    with open_database(db) as store:
        assert load(store) == []
        with pytest.raises(InputError):
            import_notices(store, path)
        assert load(store) == []


def test_times_are_beijing(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("acquirer,start,end,what\nACQ1,2025-01-07 23:00,2025-01-08 04:00:30,x\n")
    from daozhang.schema import open_database

    with open_database(_db(tmp_path)) as store:
        import_notices(store, path)
        (n,) = load(store)
    assert (n.start, n.end) == (bj("2025-01-07 23:00"), bj("2025-01-08 04:00:30"))
