"""Reports: JSON per DESIGN §2.2, CSV, the rich table, and the HTML report in real Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.correlate.engine import analyse
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.report.export import document, write_json
from daozhang.schema import open_database
from daozhang.units import BEIJING

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    work = tmp_path_factory.mktemp("report")
    url = f"sqlite:///{work / 'r.db'}"
    sc = generate(2024, cases=6)
    with open_database(url) as store:
        load(store, sc, work / "files")
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    return url, as_of, work


def _key(finding: dict[str, object]) -> str:
    return json.dumps(finding, sort_keys=True, ensure_ascii=False)


def doc_as_of(doc: dict[str, str]) -> float:
    return datetime.fromisoformat(doc["as_of"]).timestamp()


def test_json_with_no_findings_is_a_document(tmp_path: Path) -> None:
    write_json(tmp_path / "none.json", 1_780_000_000, [])
    assert json.loads((tmp_path / "none.json").read_text())["findings"] == []


def test_json_csv_and_table(
    scenario: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, as_of, _ = scenario
    out_json, out_csv = tmp_path / "f.json", tmp_path / "f.csv"
    assert (
        main(
            [
                "correlate",
                "--db",
                url,
                "--as-of",
                as_of,
                "--json",
                str(out_json),
                "--csv",
                str(out_csv),
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "无应答冲正" in table and "reversed," in table and "合计" in table
    doc = json.loads(out_json.read_text())
    assert doc["as_of"].startswith(as_of)
    txns = [f for f in doc["findings"] if f["kind"] == "transaction"]
    payouts = [f for f in doc["findings"] if f["kind"] == "payout"]
    assert txns and payouts
    for f in txns:
        for key in (
            "mid",
            "tid",
            "bat",
            "trc",
            "dev",
            "rrn",
            "amount_fen",
            "payout_id",
            "status",
            "data",
            "expected_date",
            "paid_fen",
            "short_fen",
            "evidence",
            "confidence",
            "explain",
        ):
            assert key in f, key
        assert ("cause" in f) == (f["status"] not in ("settled", "not_expected"))
        assert f["explain"]["zh"] and f["explain"]["en"]
        assert all(e["source"] and e["fact"] for e in f["evidence"])
    sources = {e["source"] for f in txns for e in f["evidence"]}
    assert sources >= {"receipt", "diag_event", "settlement_row", "payout", "policy", "heartbeat"}
    # Written one finding at a time, a merchant range at a time (those waiting on their
    # acquirer last), it holds the findings of the document built whole.
    with open_database(url, create=False) as store:
        result = analyse(store, doc_as_of(doc))
    whole = json.loads(json.dumps(document(result.as_of, result.findings)))
    assert doc["as_of"] == whole["as_of"]
    assert sorted(map(_key, doc["findings"])) == sorted(map(_key, whole["findings"]))
    reversed_ = [f for f in txns if f.get("cause") == "network_reversed"]
    assert any(
        e["source"] == "diag_event" and "link down" in e["fact"] for e in reversed_[0]["evidence"]
    )
    # One merchant's view keeps the whole store's verdicts (acquirer_side needs them all).
    side = next(f for f in txns if f.get("cause") == "acquirer_side")
    only = tmp_path / "one.json"
    assert (
        main(
            [
                "correlate",
                "--db",
                url,
                "--as-of",
                as_of,
                "--merchant",
                side["mid"],
                "--json",
                str(only),
                "--quiet",
                "--no-record",
            ]
        )
        == 0
    )
    mine = json.loads(only.read_text())["findings"]
    assert {f["mid"] for f in mine} == {side["mid"]}
    assert any(f.get("cause") == "acquirer_side" for f in mine)
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8-sig")))
    assert len(rows) == len(doc["findings"])
    assert {r["cause"] for r in rows} >= {"file_missing", "late_upload", "fee"}


def test_html_report_renders_in_chromium(scenario: tuple[str, str, Path], tmp_path: Path) -> None:
    url, as_of, _ = scenario
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (./run setup installs it as root)"
    report = tmp_path / "report.html"
    assert main(["correlate", "--db", url, "--as-of", as_of, "--html", str(report), "--quiet"]) == 0
    page = report.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no CDN
    assert "https://" not in page
    profile = tmp_path / "profile"
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    # The timelines exist only if the page's own script ran and drew them.
    assert dom.count('<svg class="timeline"') >= 5
    assert 'class="outage"' in dom and 'class="signal"' in dom
    assert 'class="sale captured net"' in dom and 'data-status="gap"' in dom
    assert 'data-rendered="' in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1200,1400", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
    print(f"\nHTML report screenshot: {shot}")


def test_lookup_by_rrn_and_by_card(
    scenario: tuple[str, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, as_of, _ = scenario
    with open_database(url) as store, store.transaction() as tx:
        rrn, pan, amt, lt = tx.execute(
            "SELECT rrn, pan, amt, lt FROM receipts WHERE st = 'reversed' AND pan IS NOT NULL"
            " AND rrn IS NOT NULL AND rv = '98'"
            " ORDER BY trc LIMIT 1"
        )[0]
    assert main(["lookup", "--db", url, "--as-of", as_of, "--rrn", rrn, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["cause"] for h in hits] == ["network_reversed"]
    around = datetime.fromtimestamp(lt + 1800, BEIJING).strftime("%Y-%m-%d %H:%M")
    args = [
        "lookup",
        "--db",
        url,
        "--as-of",
        as_of,
        "--card-last4",
        pan[-4:],
        "--amount",
        f"{amt / 100:.2f}",
        "--around",
        around,
    ]
    assert main([*args, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert rrn in {h["rrn"] for h in hits}
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "结果：未到账，原因：无应答冲正" in text
    assert "Result: not paid, because: reversed" in text
    assert main(["lookup", "--db", url, "--rrn", "000000000000", "--json"]) == 1
    assert main(["lookup", "--db", url, "--card-last4", "12"]) == 2
