"""The HTML report's device timeline, measured where a reader sees it: in headless Chromium.

One hand-made business day (tests/correlate/builder.py writes it through the collector and the
settlement importer): sales at 09:40, 11:20, 13:50, 14:15, 14:45, 16:10 and 17:30 Beijing time;
a TCP outage from 14:05 to 14:30 during which the 14:15 sale got no response and was reversed
(network_reversed); 16:10 missing from the acquirer's file (a gap not caused by the network);
signal readings before, during and after, one of them the next morning, with a second outage
that night. The page is opened with a small script added at its end that writes the bounding
boxes of what `timeline.js` drew into the DOM; `--dump-dom` returns them.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daozhang.cli import main

from tests.correlate.builder import DEV, Shop, bj
from tests.report.test_reports import CHROMIUM_FLAGS

DAY = "2025-01-07"
SALES = ("09:40", "11:20", "13:50", "14:15", "14:45", "16:10", "17:30")
REVERSED, UNCLEARED = "14:15", "16:10"

# Reads what the page drew; runs after timeline.js (it is appended at the end of the body).
MEASURE = """<script>
(function(){
  const box = e => { const b = e.getBoundingClientRect();
    return {x0: b.left, x1: b.right, y0: b.top, y1: b.bottom, cx: (b.left + b.right) / 2}; };
  const all = sel => Array.from(document.querySelectorAll(sel));
  const tip = e => { const t = e.querySelector('title'); return t ? t.textContent : ''; };
  const out = {
    text: document.body.innerText,
    svg: all('svg.timeline').map(e => Object.assign(box(e),
      {t0: +e.dataset.t0, t1: +e.dataset.t1})),
    plot: all('svg.timeline rect.plot').map(box),
    bands: all('.outage-band').map(e => Object.assign(box(e),
      {stage: e.dataset.stage, tip: tip(e)})),
    sales: all('.captured').map(e => Object.assign(box(e), {trc: e.dataset.trc,
      net: e.dataset.network === '1', tag: e.tagName, tip: tip(e)})),
    uploads: all('.uploaded').map(e => Object.assign(box(e), {trc: e.dataset.trc, tip: tip(e)})),
    rows: all('circle.row').map(e => Object.assign(box(e), {trc: e.dataset.trc, tip: tip(e)})),
    signal: all('.signal').map(e => Object.assign(box(e), {tip: tip(e)})),
    lanes: all('text.lane').map(e => e.textContent + ' ' + e.nextElementSibling.textContent),
    ticks: all('text.tick').map(e => Object.assign(box(e), {label: e.textContent})),
    legend: document.getElementById('legend').innerText,
    head: all('.dev .head').map(e => e.innerText),
  };
  const pre = document.createElement('pre');
  pre.id = 'dz-boxes';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The report of one business day, and each sale's trace by its time."""
    work = tmp_path_factory.mktemp("timeline")
    url = f"sqlite:///{work / 'shop.db'}"
    shop = Shop(url, work)
    traces: dict[str, str] = {}
    try:
        shop.record(DEV, "d", _signal(-92), bj(f"{DAY} 06:00"))  # before the day's sales
        for at in SALES:
            if at == REVERSED:
                shop.record(DEV, "d", _signal(-117), bj(f"{DAY} 14:00"))
                shop.record(DEV, "d", {"ev": "link_down", "stage": "tcp", "why": "connect timeout"},
                            bj(f"{DAY} 14:05"))  # fmt: skip
                sale = shop.sale(f"{DAY} {at}", 12_800, st="no_response")
                shop.record(DEV, "d", {"ev": "link_up", "down_ms": 1_500_000, "tries": 9},
                            bj(f"{DAY} 14:30"))  # fmt: skip
                shop.later(sale, f"{DAY} 14:31", st="reversed", rv="98")
                shop.record(DEV, "d", _signal(-95), bj(f"{DAY} 14:35"))
                shop.cleared(sale, on="2025-01-08", flag="B")  # the acquirer took the reversal
            else:
                sale = shop.sale(f"{DAY} {at}", 10_000 + len(traces) * 100)
                if at != UNCLEARED:
                    shop.cleared(sale, on="2025-01-08")
            traces[at] = sale["trc"]
            shop.upload()  # half a minute after the device's newest record
        # The next night and morning: device facts far outside the day of the sales.
        shop.outage("2025-01-08 03:00", "2025-01-08 03:10", stage="link", why="reg 2")
        shop.record(DEV, "d", _signal(-90), bj("2025-01-08 08:00"))
        shop.upload()
        shop.detail_file("2025-01-08")
        shop.payout("2025-01-08")
        shop.run("2025-01-09 12:00")
    finally:
        shop.close()
    page = work / "report.html"
    argv = ["correlate", "--db", url, "--as-of", "2025-01-09 12:00", "--html", str(page)]
    assert main([*argv, "--quiet", "--no-record"]) == 0
    yield page, traces


def _signal(rsrp: int) -> dict[str, Any]:
    return {"ev": "signal", "rat": "lte", "rssi": rsrp + 24, "rsrp": rsrp, "reg": 1}


def _chromium() -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (./run setup installs it as root)"
    return chromium


@pytest.fixture(scope="module")
def boxes(report: tuple[Path, dict[str, str]]) -> dict[str, Any]:
    page, _ = report
    measured = page.with_name("measured.html")
    head, _, tail = page.read_text(encoding="utf-8").rpartition("</body>")
    measured.write_text(head + MEASURE + "</body>" + tail, encoding="utf-8")
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={page.parent / 'profile'}"]
    dom = subprocess.run(
        [_chromium(), *flags, "--window-size=1200,1000", "--dump-dom", measured.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'<pre id="dz-boxes">(.*?)</pre>', dom, re.S)
    assert found, "the page's script did not run"
    result: dict[str, Any] = json.loads(html.unescape(found[1]))
    return result


def _sale(boxes: dict[str, Any], trc: str) -> dict[str, Any]:
    (s,) = [s for s in boxes["sales"] if s["trc"] == trc]
    return s


def test_the_outage_band_lies_under_the_sale_it_broke_and_no_other(
    boxes: dict[str, Any], report: tuple[Path, dict[str, str]]
) -> None:
    _, traces = report
    (band,) = boxes["bands"]  # the night's outage is outside the business day
    assert band["stage"] == "tcp"
    broke = _sale(boxes, traces[REVERSED])
    assert broke["net"]
    assert band["x0"] <= broke["cx"] <= band["x1"]
    for at, trc in traces.items():
        if at != REVERSED:
            other = _sale(boxes, trc)
            assert not other["net"], at
            assert other["x1"] < band["x0"] or other["x0"] > band["x1"], at
    # The band is as long as the outage: 25 minutes of the span's width.
    (svg,), (plot,) = boxes["svg"], boxes["plot"]
    per_s = (plot["x1"] - plot["x0"]) / (svg["t1"] - svg["t0"])
    assert band["x1"] - band["x0"] == pytest.approx(25 * 60 * per_s, abs=1.5)
    start = (bj(f"{DAY} 14:05") - svg["t0"]) * per_s
    assert band["x0"] - plot["x0"] == pytest.approx(start, abs=1.5)
    # It runs under every lane, from the link strip down to the settlement rows.
    assert band["y0"] <= plot["y0"] + 5 and band["y1"] >= max(r["y1"] for r in boxes["rows"])


def test_network_caused_sales_are_drawn_apart(
    boxes: dict[str, Any], report: tuple[Path, dict[str, str]]
) -> None:
    _, traces = report
    broke, uncleared = _sale(boxes, traces[REVERSED]), _sale(boxes, traces[UNCLEARED])
    assert broke["tag"] == "path" and uncleared["tag"] == "circle"  # a diamond, not a dot
    assert broke["x1"] - broke["x0"] > uncleared["x1"] - uncleared["x0"]
    assert [s["trc"] for s in boxes["sales"] if s["net"]] == [traces[REVERSED]]
    assert "无应答冲正 reversed, no response" in broke["tip"]
    assert "网络原因 network-caused" in broke["tip"]
    assert "原因不明 cause unknown" in uncleared["tip"]


def test_the_timeline_spans_the_business_day_in_beijing_time(
    boxes: dict[str, Any], report: tuple[Path, dict[str, str]]
) -> None:
    _, traces = report
    (svg,), (plot,) = boxes["svg"], boxes["plot"]
    first, last = bj(f"{DAY} {SALES[0]}"), bj(f"{DAY} {SALES[-1]}")
    assert svg["t0"] <= first - 15 * 60 and svg["t1"] >= last + 15 * 60
    assert svg["t1"] < bj("2025-01-08 03:00")  # not every fact of the device
    assert svg["t1"] - svg["t0"] <= 12 * 3600
    xs = sorted(s["cx"] for s in boxes["sales"])
    assert plot["x0"] < xs[0] and xs[-1] < plot["x1"]
    assert xs[-1] - xs[0] >= 0.75 * (plot["x1"] - plot["x0"])  # the day fills the timeline
    # The axis is Beijing time: 14:15 is a quarter of the way from 14:00 to 15:00.
    tick = {t["label"]: t["cx"] for t in boxes["ticks"]}
    assert {"10:00", "14:00", "15:00", "17:00"} <= set(tick)
    broke = _sale(boxes, traces[REVERSED])
    assert broke["cx"] == pytest.approx(tick["14:00"] + (tick["15:00"] - tick["14:00"]) / 4, abs=1)
    assert any("1 more outages outside this span" in h for h in boxes["head"])


def test_captured_uploaded_and_settled_line_up(
    boxes: dict[str, Any], report: tuple[Path, dict[str, str]]
) -> None:
    _, traces = report
    (band,) = boxes["bands"]
    uploads = {u["trc"]: u for u in boxes["uploads"]}
    rows = {r["trc"]: r for r in boxes["rows"]}
    for at, trc in traces.items():
        sale = _sale(boxes, trc)
        if at == REVERSED:
            # Its last state reached the host only once the link was back.
            assert uploads[trc]["cx"] >= band["x1"] - 1
            assert "主机接收时间 host receive time" in uploads[trc]["tip"]
        else:
            assert uploads[trc]["cx"] == pytest.approx(sale["cx"], abs=2)  # 30 s later
        if at == UNCLEARED:
            assert trc not in rows  # the acquirer has no row for it
        else:
            assert rows[trc]["cx"] == pytest.approx(sale["cx"], abs=1)
            assert "清算日 settle date 2025-01-08" in rows[trc]["tip"]


def test_the_signal_is_a_line_in_dbm(boxes: dict[str, Any]) -> None:
    (line,), (plot,) = boxes["signal"], boxes["plot"]
    assert "RSRP dBm" in line["tip"]
    assert line["x0"] == pytest.approx(plot["x0"], abs=1)  # the 06:00 reading holds at 09:00
    assert line["x1"] - line["x0"] >= 0.5 * (plot["x1"] - plot["x0"])
    assert line["y1"] - line["y0"] >= 15  # the dip from -92 to -117 dBm shows (0.8 px a dB)


def test_labels_are_chinese_with_english(boxes: dict[str, Any]) -> None:
    def both(text: str) -> bool:
        return bool(re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{3}", text))

    assert len(boxes["lanes"]) == 5 and all(both(label) for label in boxes["lanes"])
    for stage in ("TCP连接 TCP connect", "TLS握手 TLS handshake", "域名解析 DNS lookup"):
        assert stage in boxes["legend"]
    (band,) = boxes["bands"]
    for part in ("14:05", "14:30", "北京时间 Beijing time", "TCP连接 TCP connect",
                 "connect timeout", "25 分钟 min"):  # fmt: skip
        assert part in band["tip"], part
    assert all(both(s["tip"]) for s in boxes["sales"])
    # Codes stay in the JSON and in tooltips for matching it; the page reads in words.
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b", boxes["text"])
    # Money in yuan: the reversed 128.00 and the uncleared 105.00 are missing.
    assert "未到账 missing ¥233.00" in boxes["head"][0]


def test_screenshot_for_a_human(report: tuple[Path, dict[str, str]]) -> None:
    page, _ = report
    shot = page.with_name("timeline.png")
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={page.parent / 'profile-shot'}"]
    subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,1000", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    print(f"\nHTML timeline screenshot: {shot}")
