"""`daozhang lookup` by what the caller has, on a generated day loaded the way production data
arrives (collector ingest, settle importer), on SQLite and PostgreSQL: each form finds the
transaction, says what the whole-store run says about it, and lists several matches best
first with what tells them apart."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from daozhang.cli import main
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict, zh_date
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.units import BEIJING


def _beijing(t: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime(fmt)


def _lookup(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    status = main(["lookup", *argv, "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else []


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("answer", "payout")}


def test_each_form_finds_the_sale_and_says_what_the_whole_run_says(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = generate(23, cases=4)
    with open_database(db_url) as store:
        load(store, sc, tmp_path / "files")
        whole = analyse(store, sc.as_of).findings
        # A wallet row carries the merchant's order number (a QR profile fills `ord`).
        with store.transaction() as tx:
            file_id, line = tx.execute(
                "SELECT file_id, line FROM settle_detail ORDER BY file_id, line LIMIT 1"
            )[0]
            tx.execute(
                "UPDATE settle_detail SET ord = 'WX20241001A' WHERE file_id = ? AND line = ?",
                (file_id, line),
            )
            ord_rrn, ord_mid = tx.execute(
                "SELECT rrn, mid FROM settle_detail WHERE file_id = ? AND line = ?",
                (file_id, line),
            )[0]
    as_of = ["--db", db_url, "--as-of", _beijing(sc.as_of, "%Y-%m-%d %H:%M:%S")]
    by_key = {
        (f.receipt.mid, f.receipt.tid, f.receipt.bat, f.receipt.trc): to_dict(f)
        for f in whole
        if f.kind == "transaction" and f.receipt is not None
    }
    # One acquirer-side sale: the cause that needs the whole acquirer-day counted.
    side = next(
        f for f in whole if f.cause == "acquirer_side" and f.receipt is not None and f.receipt.pan
    )
    r = side.receipt
    assert r is not None and r.lt is not None and r.rrn
    want = to_dict(side)
    key = (r.mid, r.tid, r.bat, r.trc)
    forms = [
        ["--rrn", r.rrn],
        ["--tid", r.tid, "--trace", r.trc.lstrip("0") or "0"],
        ["--tid", r.tid, "--trace", r.trc, "--date", _beijing(r.lt, "%Y-%m-%d")],
        ["--mid", r.mid, "--date", _beijing(r.lt, "%Y-%m-%d"), "--amount", f"{r.amt / 100:.2f}"],
        ["--amount", f"{r.amt / 100:.2f}", "--around", _beijing(r.lt + 1500)],
        ["--amount", f"{r.amt / 100:.2f}", "--around", _beijing(r.lt, "%Y-%m-%d")],
        [
            *("--amount", f"{r.amt / 100:.2f}", "--around", _beijing(r.lt + 1500)),
            *("--window", "30m", "--card-last4", r.pan[-4:]),
        ],
    ]
    for form in forms:
        status, docs = _lookup(capsys, *as_of, *form)
        assert status == 0, form
        found = [d for d in docs if d["kind"] == "transaction"]
        hit = [d for d in found if (d["mid"], d["tid"], d["bat"], d["trc"]) == key]
        assert len(hit) == 1, (form, found)
        assert _strip(hit[0]) == want, form
        assert hit[0]["cause"] == "acquirer_side"
        for d in found:  # every other match too is what the whole run says
            assert _strip(d) == by_key.get((d["mid"], d["tid"], d["bat"], d["trc"]), _strip(d))
    # Out of the window, or another card: not found.
    status, docs = _lookup(capsys, *as_of, "--amount", f"{r.amt / 100:.2f}", "--around",
                           _beijing(r.lt + 4 * 3600), "--window", "1h")  # fmt: skip
    assert key not in {(d["mid"], d["tid"], d["bat"], d["trc"]) for d in docs}
    other = "0000" if not r.pan.endswith("0000") else "1111"
    status, docs = _lookup(capsys, *as_of, "--amount", f"{r.amt / 100:.2f}", "--around",
                           _beijing(r.lt), "--card-last4", other)  # fmt: skip
    assert key not in {(d.get("mid"), d.get("tid"), d.get("bat"), d.get("trc")) for d in docs}
    # A merchant's whole day: several matches, latest first, each what the whole run says.
    status, docs = _lookup(capsys, *as_of, "--mid", r.mid, "--date", _beijing(r.lt, "%Y-%m-%d"))
    found = [d for d in docs if d["kind"] == "transaction"]
    assert len(found) > 1
    times = [d["txn_time"] for d in found]
    assert times == sorted(times, reverse=True)
    for d in found:
        assert _strip(d) == by_key[(d["mid"], d["tid"], d["bat"], d["trc"])]
    # The order number is on the acquirer's row: its receipt (or the row alone) answers.
    status, docs = _lookup(capsys, *as_of, "--order", "WX20241001A")
    assert status == 0 and len(docs) == 1
    assert docs[0]["mid"] == ord_mid and docs[0]["rrn"] == ord_rrn
    status, docs = _lookup(capsys, *as_of, "--order", "WX-NO-SUCH")
    assert status == 1 and docs == []
    # A QR sale's receipt carries its order number itself (`ord`, from the POS).
    with open_database(db_url, create=False) as store:
        qr = store.query(
            "SELECT mid, tid, bat, trc, ord FROM receipts WHERE ord IS NOT NULL"
            " ORDER BY ord LIMIT 1"
        )
    assert qr, "the scenario has QR sales with order numbers"
    status, docs = _lookup(capsys, *as_of, "--order", str(qr[0][4]))
    hits = [(d["mid"], d["tid"], d["bat"], d["trc"]) for d in docs if d["kind"] == "transaction"]
    assert status == 0 and hits == [tuple(qr[0][:4])]
    assert _strip(docs[0]) == by_key[tuple(qr[0][:4])]


def test_a_row_no_receipt_claims_is_found_and_explained(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = generate(23, cases=4)
    with open_database(sqlite_url) as store:
        load(store, sc, tmp_path / "files")
        whole = analyse(store, sc.as_of).findings
    lone = next(f for f in whole if f.kind == "transaction" and f.receipt is None and f.rrn)
    as_of = ["--db", sqlite_url, "--as-of", _beijing(sc.as_of, "%Y-%m-%d %H:%M:%S")]
    for form in (["--rrn", lone.rrn], ["--tid", lone.tid, "--trace", lone.trc]):
        status, docs = _lookup(capsys, *as_of, *form)
        assert status == 0
        (doc,) = [d for d in docs if d["kind"] == "transaction" and d["rrn"] == lone.rrn]
        assert _strip(doc) == to_dict(lone)
        assert doc["data"] == lone.data != "complete"


def test_the_answer_is_read_aloud_chinese_first(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = generate(23, cases=4)
    with open_database(sqlite_url) as store:
        load(store, sc, tmp_path / "files")
        whole = analyse(store, sc.as_of).findings
    f = next(
        f
        for f in whole
        if f.cause == "account_problem" and f.receipt is not None and f.payout is not None
    )
    assert f.receipt is not None and f.payout is not None
    as_of = ["--db", sqlite_url, "--as-of", _beijing(sc.as_of, "%Y-%m-%d %H:%M:%S")]
    yuan = f"¥{f.amount_fen // 100:,}.{f.amount_fen % 100:02d}"
    assert main(["lookup", *as_of, "--rrn", f.rrn]) == 0
    text = capsys.readouterr().out
    zh_at = text.index("结果：未到账，原因：结算账户异常")
    en_at = text.index("Result: not paid, because: account problem")
    assert zh_at < en_at  # Chinese first, English beside it
    flat = re.sub(r"[\s│]", "", text)  # the panel may wrap a long line
    assert f"金额{yuan}" in flat
    assert f"交易时间{_beijing(f.receipt.lt or 0, '%Y-%m-%d%H:%M:%S')}（北京时间）" in flat
    assert f"预计到账日：{zh_date(f.expected_date)}" in flat
    assert f"出款：{f.payout.payout_id}" in flat and "出款失败" in flat
    assert "下一步：请商户联系开户行核实账户状态" in flat
    assert main(["lookup", *as_of, "--rrn", f.rrn, "--lang", "en"]) == 0
    text = capsys.readouterr().out
    assert text.index("Result: not paid") < text.index("结果：未到账")
    flat = re.sub(r"[\s│]", "", text)
    assert f"{yuan},soldat" in flat and f"Payout:{f.payout.payout_id}" in flat
    # Several matches: they are counted and what tells them apart is named.
    day = _beijing(f.receipt.lt or 0, "%Y-%m-%d")
    assert main(["lookup", *as_of, "--mid", f.mid, "--date", day]) == 0
    text = capsys.readouterr().out
    assert "按接近程度排列；区别在：时间" in text and "best first; they differ in: time" in text
