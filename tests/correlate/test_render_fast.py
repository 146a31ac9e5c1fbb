"""The streamed outputs' rendering (render_fast.py: JSON, CSV, the HTML report's problem rows)
says what render.py says, character for character, for every cause, status and data value,
payouts included, and so are the recorded findings: a speed-up cannot change a word unnoticed
(issue 24).

The plain rendering is render.to_dict / render.explain written out as the files did before
the fast path: `json.dumps(to_dict(f))` a line, and the CSV row built from `to_dict(f)`.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from daozhang import words
from daozhang.correlate.classify import Finding
from daozhang.correlate.engine import Recorder, analyse
from daozhang.correlate.finding import CAUSES, DATA_VALUES, STATUSES
from daozhang.correlate.render import evidence, explain, to_dict
from daozhang.correlate.render_fast import Renderer
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.report.export import CSV_COLUMNS, CsvFile, JsonFile, cell, id_cell
from daozhang.report.groups import row
from daozhang.schema import open_database
from daozhang.units import BEIJING, beijing_text, fen_to_yuan
from daozhang.words import label


@pytest.fixture(scope="module")
def findings(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    work = tmp_path_factory.mktemp("fast")
    sc = generate(1006, cases=8)  # every cause and data value (test_explain.py)
    with open_database(f"sqlite:///{work / 'x.db'}") as store:
        load(store, sc, work / "files")
        found = analyse(store, sc.as_of).findings
    return found + _odd(found)


def _odd(found: list[Finding]) -> list[Finding]:
    """Values the fast path treats apart: an amount past 10^9 (render.time_text shows it as a
    time), empty and missing ids, ids that start like a formula or hold other than digits, a
    confidence that is no round number, a finding without its receipt, a missing number, an
    acquirer's reason with quotes, a comma and a line break."""
    sale = next(f for f in found if f.kind == "transaction" and f.receipt and f.row and f.payout)
    r = sale.receipt
    assert r is not None and sale.row is not None and sale.payout is not None
    return [
        replace(sale, amount_fen=2_000_000_000, receipt=r._replace(amt=2_000_000_000)),
        replace(sale, dev="", rrn="", payout_id=""),
        replace(sale, rrn=None, trc="０１２", mid="=HYPERLINK(1)", tid="-12", bat="+1"),  # type: ignore[arg-type]
        replace(sale, confidence=0.123456, cause="", rule="T1 (2 day(s) off skipped, 周末)"),
        replace(sale, receipt=None, lt=None),
        replace(
            sale, also=["fee", "unknown"], extra=[("diag", "x {0} at {1}", ("a", 1_742_000_000))]
        ),
        replace(sale, bat=None, row=sale.row._replace(fee=None, line=3_000_000_000)),  # type: ignore
        replace(sale, status="gap", payout=sale.payout._replace(fail_reason='账户"冻结",\r\n2')),
    ]


def test_the_scenario_has_every_cause_status_and_data_value(findings: list[Finding]) -> None:
    assert {f.cause for f in findings} >= set(CAUSES)
    assert {f.status for f in findings} >= set(STATUSES)
    assert {f.data for f in findings} >= set(DATA_VALUES)
    assert any(f.kind == "payout" for f in findings)


def test_explanations_and_json_lines_equal_the_plain_rendering(findings: list[Finding]) -> None:
    renderer = Renderer()
    for _ in range(2):  # the second time from the caches
        for f in findings:
            plain = explain(f)
            assert renderer.explain(f) == (plain["zh"], plain["en"]), (f.cause, f.status)
            assert json.loads(renderer.evidence_json(f)) == evidence(f)
            want = json.dumps(to_dict(f), ensure_ascii=False, separators=(",", ":"))
            assert renderer.json_line(f, plain["zh"], plain["en"]) == want


def test_recorded_findings_are_the_plain_json(findings: list[Finding], tmp_path: Path) -> None:
    findings = [f for f in findings if f.rrn is not None and f.bat is not None]  # NOT NULL
    with open_database(f"sqlite:///{tmp_path / 'r.db'}") as store:
        out = Recorder(store, 1_742_000_000)
        out.add(findings)
        run_id = out.close()
        rows = store.query("SELECT body_json FROM findings WHERE run_id = ? ORDER BY n", (run_id,))
    assert [str(body) for (body,) in rows] == [
        json.dumps(to_dict(f), ensure_ascii=False, separators=(",", ":")) for f in findings
    ]


def test_html_problem_rows_equal_the_plain_ones(findings: list[Finding]) -> None:
    renderer = Renderer()
    for f in findings:
        assert row(f, renderer) == row(f)


def test_json_file_equals_the_plain_one(findings: list[Finding], tmp_path: Path) -> None:
    many = findings * (4_100 // len(findings) + 1)  # past two of the file's 2,000-line writes
    renderer = Renderer()
    out = JsonFile(tmp_path / "f.json", 1_742_000_000, renderer)
    out.add(findings[:5])
    out.add([])
    out.add(findings[5:], [renderer.explain(f) for f in findings[5:]])
    out.add(many, lines=[renderer.json_line(f, *renderer.explain(f)) for f in many])
    out.close()
    lines = [json.dumps(to_dict(f), ensure_ascii=False, separators=(",", ":")) for f in findings]
    lines += lines * (len(many) // len(findings))
    want = '{"as_of": "2025-03-15 08:53:20+08:00", "findings": [\n ' + ",\n ".join(lines)
    assert (tmp_path / "f.json").read_text(encoding="utf-8") == want + "\n]}\n"


@pytest.mark.parametrize("lang", words.LANGS)
def test_csv_file_equals_the_plain_one(findings: list[Finding], tmp_path: Path, lang: str) -> None:
    many = findings * (4_100 // len(findings) + 1)  # past two of the file's 2,000-line writes
    out = CsvFile(tmp_path / "f.csv", lang)
    out.add(findings)
    out.add(many)  # again, from the caches
    out.close()
    want = io.StringIO(newline="")
    writer = csv.writer(want)
    writer.writerow(CSV_COLUMNS)
    writer.writerows([_plain_row(f, lang) for f in findings] * (1 + len(many) // len(findings)))
    assert (tmp_path / "f.csv").read_bytes().decode("utf-8-sig") == want.getvalue()


def _plain_row(f: Finding, lang: str) -> list[object]:
    """The CSV row as export.py wrote it before the fast path, from to_dict."""
    d = to_dict(f)
    ids = [id_cell(str(cell(v))) for v in (f.mid, f.tid, f.bat, f.trc, f.dev, f.rrn, f.payout_id)]
    transaction = f.kind == "transaction"
    return [f.kind, *ids, *map(cell, [
        fen_to_yuan(f.amount_fen), f.status, f.cause, f.data if transaction else "",
        d.get("network_caused", False), f.expected_date.isoformat() if f.expected_date else "",
        fen_to_yuan(f.paid_fen), fen_to_yuan(f.short_fen), d["confidence"],
        d["explain"]["zh"], d["explain"]["en"], label(words.STATUS, f.status, lang),
        label(words.CAUSE, f.cause, lang), label(words.DATA, f.data, lang) if transaction else "",
    ])]  # fmt: skip


def test_beijing_times_and_yuan_equal_what_datetime_and_the_formula_say() -> None:
    """The two helpers every finding's text goes through, made quicker (units.py), against
    datetime's strftime in Beijing time and the plain sign-and-remainder formula."""
    rng = random.Random(24)
    times = [0, 1, 28_799, 28_800, 86_399, 10**9, 2**31, 1_742_000_000, 1_742_000_000.5]
    times += [rng.randrange(0, 4 * 10**9) for _ in range(20_000)]
    for t in times:
        for seconds, fmt in ((True, "%Y-%m-%d %H:%M:%S"), (False, "%Y-%m-%d %H:%M")):
            assert beijing_text(t, seconds) == datetime.fromtimestamp(t, BEIJING).strftime(fmt)
    for fen in [0, 1, 99, 100, 101, -1, -99, -100, -12_345, 10**15, *range(-300, 300)]:
        sign = "-" if fen < 0 else ""
        assert fen_to_yuan(fen) == f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}", fen
