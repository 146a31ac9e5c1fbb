"""The updates page over HTTP and in real headless Chromium, against the real console process:
the rollouts newest first with their devices counted (done, under way, failed, not offered), a
rollout's devices failures first in Chinese and English; the halt button halts a running
rollout as `ota halt` does (CSRF, a reason, the user's name), and wrong forms are refused
with a message and change nothing."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from daozhang.ota.rollout import load
from daozhang.schema import open_database
from playwright.sync_api import Browser, expect, sync_playwright

from tests.console import update_data
from tests.console.server import add_user, console, csrf_of, login
from tests.console.test_console_browser import logged_in

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def updates_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, int]:
    url = f"sqlite:///{tmp_path_factory.mktemp('updates') / 'updates.db'}"
    done, running = update_data.build(url)
    for name, role in (("wang", "fleet"), ("li", "support")):
        assert add_user(url, name, role).returncode == 0
    return url, done, running


@pytest.fixture(scope="module")
def updates_url(updates_db: tuple[str, int, int]) -> Iterator[str]:
    with console(updates_db[0]) as url:
        yield url


@pytest.fixture
def wang(updates_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=updates_url, follow_redirects=False, timeout=60) as c:
        assert login(c, "wang").status_code == 303
        yield c


def _rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"')[1].split("</table>", maxsplit=1)[0]
    return re.findall(r"<tr data-[a-z]+=.*?</tr>", body, re.S)


def test_rollouts_newest_first_with_their_devices_counted(
    wang: httpx.Client, updates_db: tuple[str, int, int]
) -> None:
    _, done, running = updates_db
    page = wang.get("/updates")
    assert page.status_code == 200
    rollouts = _rows(page.text, "rollouts")
    assert [re.search(r'data-id="(\d+)"', r).group(1) for r in rollouts] == [  # type: ignore[union-attr]
        str(running), str(done)]  # fmt: skip
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rollouts[0], re.S)
    # devices, done (confirmed + already newer), under way, failed, not offered
    assert [c.strip() for c in cells[5:10]] == ["5", "2", "1", "1", "1"]
    assert "进行中 running" in rollouts[0] and "1/2 (80,100%)" in rollouts[0]
    assert "已完成 done" in rollouts[1]


def test_a_rollouts_devices_failures_first_in_chinese_and_english(
    wang: httpx.Client, updates_db: tuple[str, int, int]
) -> None:
    _, done, running = updates_db
    html = wang.get(f"/updates?rollout={running}").text
    targets = _rows(html, "targets")
    devs = [re.search(r'data-dev="([^"]+)"', t).group(1) for t in targets]  # type: ignore[union-attr]
    d = update_data
    assert devs == [d.ROLLED, d.FETCHING, d.WAITING, d.CONFIRMED, d.NEWER]
    assert "已回退 rolled back" in targets[0] and "crash" in targets[0]
    assert 'class="failed"' in targets[0] and 'class="failed"' not in targets[4]
    assert "下载中 downloading" in targets[1] and "40%" in targets[1]
    assert "等待中 waiting" in targets[2]
    assert 'id="halt-form"' in html
    assert 'id="halt-form"' not in wang.get(f"/updates?rollout={done}").text
    assert wang.get("/updates?rollout=99").status_code == 404
    assert wang.get("/updates?rollout=x").status_code == 404


def test_halting_from_the_page_is_ota_halt(
    wang: httpx.Client, updates_db: tuple[str, int, int]
) -> None:
    url, done, running = updates_db
    token = csrf_of(wang.get("/updates").text)
    # No reason: refused with a message, nothing changed.
    refused = wang.post("/updates/halt", data={"csrf": token, "rollout": str(running), "why": " "})
    assert refused.status_code == 400 and "请写明暂停原因" in refused.text
    # No CSRF token: refused.
    forged = wang.post("/updates/halt", data={"rollout": str(running), "why": "x"})
    assert forged.status_code == 403
    with open_database(url, create=False) as store:
        assert load(store, running).state == "running"
    # A rollout that is not running cannot be halted.
    again = wang.post("/updates/halt", data={"csrf": token, "rollout": str(done), "why": "x"})
    assert again.status_code == 400 and "不在进行中 is not running" in again.text


def test_the_updates_page_in_chromium(
    updates_db: tuple[str, int, int], updates_url: str, artefacts: Path
) -> None:
    assert CHROMIUM, "Debian's chromium is needed (./run setup installs it as root)"
    url, _, running = updates_db
    with sync_playwright() as p:
        browser: Browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = logged_in(browser, updates_url, "wang")
        page.click("nav >> text=升级 Updates")
        expect(page).to_have_url(f"{updates_url}/updates")
        row = page.locator(f"#rollouts tr[data-id='{running}']")
        expect(row.locator(".failed")).to_have_text("1")
        expect(page.locator("#targets tr").nth(1)).to_contain_text("已回退 rolled back")
        page.fill("#halt-form input[name=why]", "新版本在收银台重启 the new version reboots tills")
        page.click("#halt-form button[type=submit]")
        expect(page).to_have_url(f"{updates_url}/updates?rollout={running}")
        expect(row.locator(".state")).to_contain_text("已暂停 halted")
        expect(row.locator(".state")).to_contain_text("the new version reboots tills (wang)")
        expect(page.locator("#halt-form")).to_have_count(0)
        shot = artefacts / "updates.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20_000
        print(f"\nconsole updates page screenshot: {shot}")
        browser.close()
    with open_database(url, create=False) as store:
        r = load(store, running)
    assert (r.state, r.why) == ("halted", "新版本在收银台重启 the new version reboots tills (wang)")
