"""The console in real headless Chromium (Debian's, driven by Playwright): log in through the
form, read the fleet page in Chinese, watch a row change while the collector writes, open a
device and find its outage; on the money page open a finding's evidence and look up a sale;
tell a carrier's cell outage from one terminal's spot; see the alerts firing and silence one;
be refused without a login.
Screenshots are kept (their paths are printed)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.rules import parse
from daozhang.alerts.state import apply
from daozhang.schema import open_database
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console import fleet_data, money_data
from tests.console.server import PASSWORD

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM, "Debian's chromium is needed (./run setup installs it as root)"
    with sync_playwright() as p:
        # As root Chromium refuses to start without --no-sandbox.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def logged_in(browser: Browser, base_url: str, name: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page.goto(f"{base_url}/fleet")
    expect(page).to_have_url(f"{base_url}/login?next=%2Ffleet")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/fleet")
    return page


def test_fleet_page_worst_first_in_chinese_and_live(
    browser: Browser, base_url: str, db_url: str, artefacts: Path
) -> None:
    page = logged_in(browser, base_url, "wang")
    rows = page.locator("#rows tr")
    expect(rows).to_have_count(3)
    assert rows.nth(0).get_attribute("data-dev") == fleet_data.SILENT
    assert rows.nth(0).get_attribute("data-problem") == "silent_unsent"
    expect(rows.nth(0).locator(".problem")).to_have_text(
        "失联且有未上传记录 silent with unsent records"
    )
    expect(rows.nth(0).locator(".unsent")).to_have_text("5")
    healthy = page.locator(f"#rows tr[data-dev={fleet_data.HEALTHY}]")
    expect(healthy.locator(".problem")).to_have_text("正常 ok")
    expect(healthy).to_contain_text("LTE, RSRP -101 dBm, SINR 3 dB, registered")
    refused = page.locator(f"#rows tr[data-dev={fleet_data.REFUSED}]")
    expect(refused.locator(".problem")).to_contain_text("采集端拒收")
    expect(page.locator("#counts")).to_contain_text(
        "失联且有未上传记录 silent with unsent records 1"
    )
    shot = artefacts / "fleet.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(f"\nconsole fleet page screenshot: {shot}")

    # The silent terminal comes back and drains: the page changes without a reload.
    page.evaluate("window.notReloaded = true")
    now = time.time()
    fleet_data.send(db_url, fleet_data.SILENT, "status", b"online", now)
    fleet_data.heartbeat(db_url, fleet_data.SILENT, now, jrec=0)
    row = page.locator(f"#rows tr[data-dev={fleet_data.SILENT}]")
    expect(row).to_have_attribute("data-problem", "ok", timeout=15_000)
    expect(row.locator(".problem")).to_have_text("正常 ok")
    expect(row).to_have_class("level-0 changed")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(artefacts / "fleet-after-heartbeat.png"), full_page=True)


def test_filters_by_problem_and_merchant(browser: Browser, base_url: str) -> None:
    page = logged_in(browser, base_url, "li")
    page.click("#counts a[data-problem=refused]")
    expect(page.locator("#rows tr")).to_have_count(1)
    assert page.locator("#rows tr").get_attribute("data-dev") == fleet_data.REFUSED
    page.goto(f"{base_url}/fleet")
    page.select_option("#merchant-filter", fleet_data.M1)
    page.click("form.filters button")
    devs = {r.get_attribute("data-dev") for r in page.locator("#rows tr").all()}
    assert devs == {fleet_data.HEALTHY, fleet_data.SILENT}


def test_device_page_shows_its_outage_refusals_and_findings(
    browser: Browser, base_url: str, artefacts: Path
) -> None:
    page = logged_in(browser, base_url, "wang")
    page.click(f"a[href='/device/{fleet_data.HEALTHY}']")
    outage = page.locator("#outages tr[data-stage=dns]")
    expect(outage).to_have_count(1)
    expect(outage).to_contain_text("域名解析 DNS lookup")
    expect(outage).to_contain_text("10分钟 10 min")
    expect(outage).to_contain_text("SERVFAIL")
    # 24 hourly rows (25 when now is past a whole hour); the outage's reconnect is in one.
    expect(page.locator("#heartbeats tbody tr")).not_to_have_count(0)
    expect(page.locator("#findings")).to_contain_text("¥1.01")
    page.screenshot(path=str(artefacts / "device.png"), full_page=True)
    page.click("text=7天 7 d")
    expect(page.locator("#outages tr[data-stage=dns]")).to_have_count(1)
    page.goto(f"{base_url}/device/{fleet_data.REFUSED}")
    expect(page.locator("#quarantine tbody")).to_contain_text("mac")


def test_device_page_marks_its_reboot_and_firmware_change_in_every_range(
    browser: Browser, base_url: str, artefacts: Path
) -> None:
    page = logged_in(browser, base_url, "wang")
    page.goto(f"{base_url}/device/{fleet_data.HEALTHY}")
    changes = page.locator("#changes")
    expect(changes.locator("tr[data-kind=reboot]")).to_have_count(1)
    expect(changes.locator("tr[data-kind=reboot]")).to_contain_text("软件重启 software restart")
    expect(changes.locator("tr[data-kind=reboot]")).to_contain_text("boot record")
    expect(changes.locator("tr[data-kind=firmware]")).to_contain_text("1.4.1 → 1.4.2")
    expect(changes.locator("tr[data-kind=ota]")).to_have_count(2)
    expect(changes.locator("tr[data-kind=ota]").first).to_contain_text("新版本已确认")
    # The history marks the bucket each happened in, and its sale: captured, uploaded, not paid.
    history = page.locator("#heartbeats")
    expect(history.locator("td.mark[data-reboots='1']")).to_have_count(1)
    expect(history.locator("td.mark[data-firmware='1.4.1 → 1.4.2']")).to_have_count(1)
    lanes = history.locator("td.lanes[data-sold='1']")
    expect(lanes).to_have_count(1)
    expect(lanes).to_have_attribute("data-uploaded", "1")
    page.screenshot(path=str(artefacts / "device-changes.png"), full_page=True)
    for label in ("7天 7 d", "30天 30 d"):
        page.click(f"text={label}")
        expect(page.locator("#changes tr[data-kind=reboot]")).to_have_count(1)
        expect(history.locator("td.mark[data-reboots='1']")).to_have_count(1)
        expect(history.locator("td.mark[data-firmware='1.4.1 → 1.4.2']")).to_have_count(1)


def test_money_page_evidence_opens_on_click_and_a_sale_is_looked_up(
    browser: Browser, money_url: str, artefacts: Path
) -> None:
    page = logged_in(browser, money_url, "li")
    page.click("nav >> text=钱款 Money")
    expect(page).to_have_url(f"{money_url}/money")
    expect(page.locator("#by-cause tr[data-cause=acquirer_side]")).to_contain_text("¥600.00")
    expect(page.locator("#by-acquirer tr[data-acquirer=ACQ2]")).to_contain_text("¥40.00")
    reversed_row = page.locator("#findings tr[data-cause=network_reversed]")
    evidence = reversed_row.locator("ul.evidence")
    expect(evidence).to_be_hidden()
    reversed_row.locator("summary").click()
    expect(evidence).to_be_visible()
    expect(evidence).to_contain_text("link down 2025-01-07 14:59:00 .. 2025-01-07 15:04:00")
    expect(reversed_row.locator(".card")).to_have_text("622848******1234")
    page.screenshot(path=str(artefacts / "money.png"), full_page=True)
    print(f"\nconsole money page screenshot: {artefacts / 'money.png'}")

    # Support on the phone: "¥123.45, yesterday around half past four".
    form = page.locator("form:has(input[name=around])")
    form.locator("input[name=amount]").fill("123.45")
    form.locator("input[name=around]").fill("2025-01-07 16:30")
    form.locator("button").click()
    results = page.locator("#results tbody tr")
    expect(results).to_have_count(1)
    expect(results).to_contain_text("无应答冲正 reversed, no response")
    expect(results.locator("ul.evidence")).to_be_visible()
    page.screenshot(path=str(artefacts / "lookup.png"), full_page=True)

    # By RRN, a receipt the collector refused is found too.
    page.fill("input[name=rrn]", money_data.REFUSED_RRN)
    page.locator("form:has(input[name=rrn]) button").click()
    expect(page.locator("#refused")).to_contain_text("still on the terminal")


def test_cells_page_tells_the_carriers_cell_from_a_terminals_spot(
    browser: Browser, money_url: str, artefacts: Path
) -> None:
    page = logged_in(browser, money_url, "wang")
    expect(page.locator("nav")).not_to_contain_text("钱款 Money")  # fleet staff: no money
    page.click("nav >> text=基站 Cells")
    down = page.locator(f"#cells tr[data-cell='{money_data.CELL_DOWN}']")
    expect(down).to_have_attribute("data-verdict", "cell_down")
    expect(down.locator(".down")).to_have_text("4")
    spot = page.locator(f"#cells tr[data-cell='{money_data.CELL_SPOT}']")
    expect(spot.locator(".verdict")).to_have_text("本终端位置问题 this terminal's spot")
    page.screenshot(path=str(artefacts / "cells.png"), full_page=True)
    spot.locator(f"a[href='/device/{money_data.SPOT_DEV}']").click()
    expect(page.locator("#outages tr[data-stage=tcp]")).to_have_count(1)


def test_without_a_login_every_page_is_the_login_form(browser: Browser, money_url: str) -> None:
    page = browser.new_page()
    for path in ("/money", "/money/lookup?by=rrn&rrn=502000000001", "/cells", "/fleet"):
        page.goto(f"{money_url}{path}")
        expect(page).to_have_url(re.compile(rf"{money_url}/login\?next="))
        expect(page.locator("input[name=password]")).to_be_visible()
    page.close()


def test_alerts_page_shows_severity_and_silences_from_the_form(
    browser: Browser, base_url: str, db_url: str, artefacts: Path
) -> None:
    rules = parse({"rules": {"silent_unsent": {}, "journal_full": {}}})
    full = Alert("journal_full", fleet_data.REFUSED, "终端 DEVC0003 日志已用 85%",
                 "device DEVC0003 journal 85% full", {})  # fmt: skip
    with open_database(db_url) as store:
        apply(store, Verdict(firing=[full]), time.time() - 300, rules.destinations, rules.severity)
    page = logged_in(browser, base_url, "wang")
    page.click("nav >> text=告警 Alerts")
    row = page.locator(f"#firing tr[data-key='journal_full:{fleet_data.REFUSED}']")
    expect(row.locator(".severity")).to_have_text("警告 warning")
    expect(row).to_contain_text("终端日志将满 journal nearly full")
    page.select_option("#silence-form select[name=rule]", "journal_full")
    page.fill("#silence-form input[name=subject]", fleet_data.REFUSED)
    page.fill("#silence-form input[name=reason]", "门店装修停业 shop closed for works")
    page.click("#silence-form button[type=submit]")
    expect(page).to_have_url(f"{base_url}/alerts")
    expect(page.locator("#silences tbody tr")).to_contain_text("门店装修停业 shop closed for works")
    expect(row).to_contain_text("至 until")
    shot = artefacts / "alerts.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    print(f"\nconsole alerts page screenshot: {shot}")
