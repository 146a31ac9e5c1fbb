"""The HTML report's problem groups in real Chromium: the page sums the problems by cause,
acquirer, sale day and device without embedding their rows; opening a group adds that group's
row files (`report.html.d/`) as scripts, as a page opened from a local file must (Chromium
refuses its fetch()), a page of rows at a time."""

from __future__ import annotations

import shutil

import pytest
from daozhang.cli import main
from playwright.sync_api import sync_playwright

from tests.correlate.builder import M1, M2, Shop

CHROMIUM = shutil.which("chromium")


def test_a_group_opened_shows_its_rows_a_page_at_a_time(
    shop: Shop, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CHROMIUM, "Debian's chromium is needed (./run setup installs it as root)"
    monkeypatch.setattr("daozhang.report.groups.PAGE", 10)  # 35 rows: four files
    shop.merchant(M1)
    shop.merchant(M2)
    shop.cleared(shop.sale("2025-01-07 10:00", amt=123_450), on="2025-01-08")
    shop.payout("2025-01-08")
    for n in range(35):
        s = shop.sale(f"2025-01-07 {9 + n // 6:02d}:{n % 6 * 10:02d}", amt=10_000 + n, mid=M2,
                      tid="20000001", dev="DEV00002")  # fmt: skip
        shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", M2, state="failed", reason="账户已冻结 account frozen")
    shop.run("2025-01-09 12:00")
    report = shop.dir / "report.html"
    assert main(["correlate", "--db", shop.url, "--as-of", "2025-01-09 12:00", "--html",
                 str(report), "--quiet", "--no-record"]) == 0  # fmt: skip
    rows_dir = shop.dir / "report.html.d"
    assert len(list(rows_dir.glob("c*-*.js"))) == 4  # one cause, 35 rows in pages of 10
    page_text = report.read_text(encoding="utf-8")
    assert "账户已冻结" not in page_text  # the rows' words are in the row files only
    assert "账户已冻结" in (rows_dir / "c0-0.js").read_text(encoding="utf-8")
    shots = tmp_path_factory.mktemp("group-screenshots")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 1000}, locale="zh-CN")
        page.goto(report.as_uri())
        page.wait_for_selector("body[data-groups=ready]")
        problems = page.locator("#problems tbody tr")
        assert problems.count() == 0  # nothing shown until a group is opened
        cause = page.locator("#by-cause tr.group").first
        cells = [cause.locator("td").nth(i).inner_text() for i in range(4)]
        assert cells[0] == "结算账户异常 account problem"  # Chinese, English beside
        assert cells[1:] == ["35", "3505.95", "3505.95"]  # yuan: 100.00 + ... + 100.34
        cause.click()
        page.wait_for_function("document.querySelectorAll('#problems tbody tr').length == 10")
        assert "显示 10 / 35" in page.locator("#group-count").inner_text()
        first = problems.first
        assert first.locator("td").nth(0).inner_text() == M2
        assert first.locator("td").nth(5).inner_text().startswith("2025-01-07 09:00")  # Beijing
        assert "账户已冻结" in first.locator("td").nth(12).inner_text()
        for shown in (20, 30, 35):
            page.locator("#more").click()
            page.wait_for_function(
                f"document.querySelectorAll('#problems tbody tr').length == {shown}"
            )
        assert page.locator("#more").is_hidden()
        # Another dimension: the device's group holds the same 35.
        page.locator("#by-device tr.group", has_text="DEV00002").click()
        page.wait_for_function("document.querySelectorAll('#problems tbody tr').length == 10")
        assert "DEV00002" in page.locator("#group-title").inner_text()
        shot = shots / "groups.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    print(f"\nreport groups screenshot: {shot}")
