"""One view per payout (issue 24): gross − fees − refunds − holds = net against what reached
the account, its transactions folded under it; `correlate --payouts` on the terminal and the
payout section of the HTML report, looked at in real Chromium."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from daozhang.cli import main
from daozhang.correlate.engine import analyse
from daozhang.report.payouts import views
from playwright.sync_api import sync_playwright

from tests.correlate.builder import M1, M2, Shop, bj
from tests.report.eighty import whole_at_80

CHROMIUM = shutil.which("chromium")


def _week(shop: Shop) -> None:
    """M1: three sales and a refund, a reserve held back, paid. M2: 35 sales, payout failed."""
    shop.merchant(M1)
    for n, amt in enumerate((123_450, 5_000, 30_000_000)):
        shop.cleared(shop.sale(f"2025-01-07 1{n}:00", amt=amt), on="2025-01-08")
    shop.cleared(on="2025-01-08", at="2025-01-07 16:00", amt=5_000, fee=-30, typ="refund",
                 direction="refund")  # fmt: skip
    shop.payout("2025-01-08", retained=1_000)
    for n in range(35):
        s = shop.sale(
            f"2025-01-07 {9 + n // 6:02d}:{n % 6 * 10:02d}", amt=10_000 + n, mid=M2,
            tid="20000001", dev="DEV00002",
        )  # fmt: skip
        shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", M2, state="failed", reason="账户已冻结 account frozen")


def test_each_payout_adds_up_and_folds_its_transactions(shop: Shop) -> None:
    _week(shop)
    shop.run("2025-01-09 12:00")
    result = analyse(shop.store, as_of=bj("2025-01-09 12:00"))
    failed, paid = views(result.data, result.findings)  # most missing money first
    fees = 741 + 30 + 180_000  # 0.6 % of each sale, rounded half up
    assert (paid.gross, paid.fees, paid.refunds, paid.holds) == (30_128_450, fees, 4_970, 1_000)
    assert paid.net == 30_128_450 - fees - 4_970 - 1_000 == paid.reached
    assert paid.missing == 0 and paid.adds_up and len(paid.transactions) == 4
    assert failed.payout.payout_id == "PO000220250108" and failed.reached == 0
    assert len(failed.transactions) == 35 and failed.missing == failed.net > 0
    assert {t.cause for t in failed.transactions} == {"account_problem"}
    assert failed.finding is not None and failed.finding.cause == "account_problem"


def test_correlate_payouts_on_an_80_column_terminal(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _week(shop)
    shop.run("2025-01-09 12:00")
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["correlate", "--db", shop.url, "--as-of", "2025-01-09 12:00", "--payouts",
            "--no-record"]  # fmt: skip
    assert main([*argv, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    whole_at_80(out)
    assert "301284.50" in out and "=299417.09" in out  # never cut to "3012…"
    assert "PO000220250108" in out and "898310048160002" in out and "│ failed " in out
    assert "失败" not in out  # --lang en: English labels only
    assert main([*argv, "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "出款失败" in out and "结算账户异常" in out
    assert "另有1笔出款未列出，未到账¥0.00（--all 全部列出）" in out


def test_the_payout_view_as_json_and_csv_files(shop: Shop) -> None:
    """`--payouts-json` and `--payouts-csv`: each payout once with its sums and its
    transactions folded under it; the CSV in yuan with ids kept as text, names in `--lang`."""
    _week(shop)
    shop.run("2025-01-09 12:00")
    as_json, as_csv = shop.dir / "payouts.json", shop.dir / "payouts.csv"
    assert main(["correlate", "--db", shop.url, "--as-of", "2025-01-09 12:00", "--quiet",
                 "--no-record", "--payouts-json", str(as_json), "--payouts-csv",
                 str(as_csv)]) == 0  # fmt: skip
    doc = json.loads(as_json.read_text(encoding="utf-8"))
    assert doc["as_of"] == "2025-01-09 12:00:00+08:00"
    by_id = {p["payout_id"]: p for p in doc["payouts"]}
    assert len(by_id) == len(doc["payouts"]) == 2
    failed = by_id["PO000220250108"]
    assert failed["state"] == "failed" and failed["cause"] == "account_problem"
    assert failed["reached_fen"] == 0 and failed["missing_fen"] == failed["net_fen"] > 0
    assert failed["n_transactions"] == len(failed["transactions"]) == 35
    assert failed["n_missing_money"] == 35
    assert {t["tid"] for t in failed["transactions"]} == {"20000001"}
    assert failed["fail_reason"] == "账户已冻结 account frozen"
    assert "开户行" in failed["explain"]["zh"] and failed["explain"]["en"]
    (paid,) = (p for p in doc["payouts"] if p["payout_id"] != "PO000220250108")
    fees = 741 + 30 + 180_000
    assert (paid["gross_fen"], paid["fees_fen"], paid["refunds_fen"], paid["holds_fen"]) == (
        30_128_450, fees, 4_970, 1_000)  # fmt: skip
    assert paid["net_fen"] == paid["reached_fen"] and paid["missing_fen"] == 0
    assert paid["adds_up"] and len(paid["transactions"]) == 4

    with as_csv.open(encoding="utf-8-sig", newline="") as f:
        rows = {r["payout_id"]: r for r in csv.DictReader(f)}
    row = rows["PO000220250108"]  # not only digits: written as it is
    assert row["mid"].startswith('="') and row["state_name"] == "出款失败 failed"
    assert row["missing_yuan"] == row["net_yuan"] and row["reached_yuan"] == "0.00"
    assert row["transactions"] == row["transactions_missing_money"] == "35"
    assert row["cause_name"].startswith("结算账户异常")
    assert len(rows) == 2


def test_the_payout_view_in_chromium(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert CHROMIUM, "Debian's chromium is needed (./run setup installs it as root)"
    _week(shop)
    shop.run("2025-01-09 12:00")
    report = shop.dir / "report.html"
    assert main(["correlate", "--db", shop.url, "--as-of", "2025-01-09 12:00", "--html",
                 str(report), "--quiet", "--no-record"]) == 0  # fmt: skip
    shots = tmp_path_factory.mktemp("payout-screenshots")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 900}, locale="zh-CN")
        page.goto(report.as_uri())
        failed = page.locator("#payout-PO000220250108")
        first = failed.locator("tr").first
        assert first.locator("td").nth(3).inner_text() == "出款失败 failed"
        assert first.locator("td.miss").inner_text() == "3484.95"  # 35 sales less 0.6 %
        folded = failed.locator("details")
        assert not folded.locator("table").is_visible()  # one row per payout, not 35
        assert (
            "35笔交易 transactions，35笔未到账 not paid" in folded.locator("summary").inner_text()
        )
        folded.locator("summary").click()
        assert folded.locator("tbody tr").count() == 35 and folded.locator("table").is_visible()
        paid = page.locator("#payout-PO000120250108 tr").first
        cells = [paid.locator("td").nth(i).inner_text() for i in range(5, 12)]
        assert cells == ["301284.50", "−1807.71", "−49.70", "−10.00", "=299417.09", "299417.09",
                         "0.00"]  # fmt: skip
        shot = shots / "payouts.png"
        page.locator("#payouts").screenshot(path=str(shot))
        browser.close()
    assert shot.stat().st_size > 10_000
    print(f"\npayout view screenshot: {shot}")
