"""The terminal table and the CSV (issue 24): most missing money first whatever the cause,
every cause's total, `--limit N` / `--all`, no amount ever cut at 80 columns; labels Chinese
over English (`--lang zh`, the default) or English alone; CSV ids kept as text, formulas
escaped."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.report.export import id_cell

from tests.correlate.builder import Shop
from tests.report.eighty import whole_at_80


def _day(shop: Shop) -> None:
    """Five small sales lost to the network, then one very large sale the acquirer lacks."""
    shop.outage("2025-01-07 09:58", "2025-01-07 10:30")
    for n in range(5):
        shop.sale(f"2025-01-07 10:0{n}", amt=1_000 + n, st="no_response")
    shop.sale("2025-01-07 15:00", amt=123_456_789_012, tid="00012345")
    shop.detail_file("2025-01-08")
    shop.run("2025-01-09 12:00")


def _correlate(shop: Shop, capsys: pytest.CaptureFixture[str], *more: str) -> str:
    argv = ["correlate", "--db", shop.url, "--as-of", "2025-01-09 12:00", "--no-record"]
    assert main([*argv, *more]) == 0
    return capsys.readouterr().out


@pytest.fixture(autouse=True)
def _eighty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def test_most_missing_money_first_and_the_rest_counted(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    _day(shop)
    out = _correlate(shop, capsys, "--limit", "2")
    whole_at_80(out)
    assert "1234567890.12" in out and "…" not in out  # never "12345…"
    rows = out.split("未到账交易 money not arrived (2 / 6)")[1]
    assert rows.index("1234567890.12") < rows.index("10.04")  # not network rows first
    assert "10.00" not in rows.split("另有")[0]  # the smallest is below the cut ...
    assert "另有4笔未列出，未到账¥40.06（--all 全部列出）" in out  # ... and counted
    assert "4 more not shown, ¥40.06 missing (--all lists all)" in out
    # Every cause has its total in the summary, the network ones and the others.
    summary = out.split("未到账交易")[0]
    assert "冲正未送达" in summary and "原因不明" in summary and "50.10" in summary


def test_all_lists_every_row_and_english_alone(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    _day(shop)
    out = _correlate(shop, capsys, "--all", "--lang", "en")
    assert "money not arrived (6 / 6)" in out and "more not shown" not in out
    assert "reversal not" in out and "cause unknown" in out
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in out)  # no Chinese left
    whole_at_80(out)


def test_limit_and_all_exclude_each_other(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["correlate", "--db", shop.url, "--all", "--limit", "3"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_csv_keeps_ids_as_text_and_names_in_the_chosen_language(
    shop: Shop, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _day(shop)
    zh, en = tmp_path / "zh.csv", tmp_path / "en.csv"
    _correlate(shop, capsys, "--csv", str(zh), "--quiet")
    _correlate(shop, capsys, "--csv", str(en), "--quiet", "--lang", "en")
    rows = list(csv.DictReader(zh.open(encoding="utf-8-sig")))
    big = next(r for r in rows if r["amount_yuan"] == "1234567890.12")
    assert (big["mid"], big["tid"], big["bat"]) == (
        '="898310048160001"',
        '="00012345"',
        '="000001"',
    )
    assert (big["status_name"], big["cause_name"]) == ("未到账 not paid", "原因不明 cause unknown")
    rows_en = list(csv.DictReader(en.open(encoding="utf-8-sig")))
    assert {r["status_name"] for r in rows_en} == {"not paid"}


def test_an_id_cell_holds_only_digits_between_its_quotes() -> None:
    assert id_cell("000123") == '="000123"'
    assert id_cell('1"+cmd') == '1"+cmd'  # not digits: left to the formula escape
    assert id_cell("DEV00001") == "DEV00001" and id_cell("") == ""
