"""`daozhang quarantine list|show` and the refusals in `fleet status`, on both engines.

The rows are made by the collector's own ingest path (not inserted by hand), so the test
reads what the collector really keeps: a batch refused for its MAC, a record refused for its
schema, a record carrying a full PAN, and a conflicting resend.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from daozhang.cli import main
from daozhang.collector.ingest import ingest_batch
from daozhang.collector.keys import add_device
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.collector.wire import mac_of
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import batch_bytes, heartbeat_bytes, receipt_body, record_bytes
from daozhang.schema import open_database

NOW = 1_780_000_000.0
KEY = bytes(range(32))
FULL_PAN = "4111111111111111"


def _fill(db_url: str) -> None:
    with open_database(db_url) as store:
        add_device(store, "KEYED-01", KEY, replace=False, note=None)
        with store.transaction() as tx:
            # A keyed device signs its status and heartbeats (DESIGN §2.0): only its batches
            # below are forged.
            status = b"online 1.1.1"
            ingest_status(tx, "KEYED-01", status + mac_of(KEY, status), NOW - 600)
            beat = heartbeat_bytes("KEYED-01", jrec=0)
            ingest_heartbeat(tx, "KEYED-01", beat + mac_of(KEY, beat), NOW - 60)
            ingest_status(tx, "PLAIN-01", b"online", NOW - 600)
            ingest_heartbeat(tx, "PLAIN-01", heartbeat_bytes("PLAIN-01", jrec=0), NOW - 60)
            ingest_status(tx, "CLEAN-01", b"online", NOW - 600)
            ingest_heartbeat(tx, "CLEAN-01", heartbeat_bytes("CLEAN-01", jrec=0), NOW - 60)
            good = [record_bytes(1, "r", receipt_body(1))]
            # A batch signed with another key, sent three times: one row, three refusals.
            forged = batch_bytes("KEYED-01", 1, good, key=b"\x01" * 32)
            for i in range(3):
                ingest_batch(tx, "KEYED-01", forged, NOW - 300 + i)
            # PLAIN-01: a bad record and a full PAN among good ones, then a conflicting resend.
            recs = [
                record_bytes(1, "r", receipt_body(1)),
                record_bytes(2, "r", receipt_body(2, typ="steal")),
                record_bytes(3, "r", receipt_body(3, pan=FULL_PAN)),
            ]
            ingest_batch(tx, "PLAIN-01", batch_bytes("PLAIN-01", 1, recs), NOW - 200)
            other = [record_bytes(1, "r", receipt_body(1, amt=999))]
            ingest_batch(tx, "PLAIN-01", batch_bytes("PLAIN-01", 1, other), NOW - 100)


def _list(db_url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["quarantine", "list", "--db", db_url, "--json", *extra]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_list_shows_every_refusal_newest_first_with_totals(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db_url)
    data = _list(db_url, capsys)
    listed = [(r["dev"], r["reason"], r["seq"], r["repeats"]) for r in data["refusals"]]
    assert listed == [
        ("PLAIN-01", "conflict", 1, 1),
        ("PLAIN-01", "pan_unmasked", 3, 1),
        ("PLAIN-01", "record_schema", 2, 1),
        ("KEYED-01", "mac", None, 3),
    ]
    totals = {t["reason"]: (t["rows"], t["refusals"]) for t in data["totals"]}
    assert totals == {
        "mac": (1, 3),
        "conflict": (1, 1),
        "pan_unmasked": (1, 1),
        "record_schema": (1, 1),
    }
    # Filters: by device, by reason, by time; the totals follow the filters.
    assert {r["reason"] for r in _list(db_url, capsys, "--dev", "KEYED-01")["refusals"]} == {"mac"}
    only = _list(db_url, capsys, "--reason", "conflict")
    assert [r["seq"] for r in only["refusals"]] == [1] and len(only["totals"]) == 1
    assert _list(db_url, capsys, "--since", "2040-01-01")["refusals"] == []
    # The table says what --limit left out, and the totals still count everything.
    assert main(["quarantine", "list", "--db", db_url, "--limit", "2"]) == 0
    table = capsys.readouterr().out
    assert "... 2 more rows (--limit)" in table
    assert "mac: 1 refused, 3 times with repeats" in table
    assert FULL_PAN not in table


def test_show_decodes_the_kept_bytes_with_pans_masked(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db_url)
    ids = {r["reason"]: r["id"] for r in _list(db_url, capsys)["refusals"]}
    assert main(["quarantine", "show", str(ids["pan_unmasked"]), "--db", db_url]) == 0
    text = capsys.readouterr().out
    assert "reason      pan_unmasked: b.pan carries what looks like a full PAN" in text
    assert "record      epoch 1, seq 3" in text
    assert '"pan": "411111******1111"' in text
    assert FULL_PAN not in text
    assert main(["quarantine", "show", str(ids["mac"]), "--db", db_url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dev"] == "KEYED-01" and shown["repeats"] == 3
    assert shown["trailing_bytes"] == 32 and shown["decode_error"] is None
    assert shown["decoded"]["dev"] == "KEYED-01" and len(shown["decoded"]["recs"]) == 1
    assert main(["quarantine", "show", str(ids["mac"]), "--db", db_url]) == 0
    text = capsys.readouterr().out
    assert "followed by 32 bytes: the batch's HMAC trailer" in text
    assert "000000  a5 61 76 01" in text  # the hex dump opens with {5 keys: "v": 1


def test_show_of_bytes_that_are_not_cbor_says_why(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_database(sqlite_url) as store, store.transaction() as tx:
        ingest_batch(tx, "PLAIN-02", b"\xff\x00 not cbor", NOW)
    (row,) = _list(sqlite_url, capsys)["refusals"]
    assert row["reason"] == "cbor"
    assert main(["quarantine", "show", str(row["id"]), "--db", sqlite_url]) == 0
    assert "as CBOR     not decodable: kept bytes:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "999"], "quarantine: no row with id 999"),
        (["show", "0"], "must be at least 1"),
        (["list", "--limit", "many"], "expected a whole number"),
        (["list", "--since", "yesterday"], '--since: expected "YYYY-MM-DD HH:MM"'),
    ],
)
def test_bad_options_are_refused_clearly(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    open_database(sqlite_url).close()  # an empty store: quarantine never creates one
    try:
        status = main(["quarantine", *argv, "--db", sqlite_url])
    except SystemExit as exc:  # argparse's own refusals exit from inside main
        status = exc.code  # type: ignore[assignment]
    assert status == 2
    assert message in capsys.readouterr().err


def test_fleet_status_names_what_was_refused(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db_url)
    with open_database(db_url) as store:
        rows = {r.dev: r for r in fleet_status(store, NOW)}
    assert rows["KEYED-01"].refused == {"mac": 3}
    assert rows["KEYED-01"].level == 1 and rows["KEYED-01"].problem == "refused 3 (mac 3)"
    assert rows["PLAIN-01"].problem == ("refused 3 (conflict 1, pan_unmasked 1, record_schema 1)")
    assert rows["CLEAN-01"].level == 0 and rows["CLEAN-01"].problem == "ok"
    # A day later the refusals have aged out of the row.
    with open_database(db_url) as store:
        later = {r.dev: r for r in fleet_status(store, NOW + 2 * 86_400)}
    assert later["KEYED-01"].refused == {}


def test_lookup_finds_receipts_the_collector_refused(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(db_url)
    assert main(["lookup", "--db", db_url, "--rrn", "000000000002", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["reason"], doc["dev"], doc["seq"]) == (
        "refused",
        "record_schema",
        "PLAIN-01",
        2,
    )
    assert not doc["still_on_terminal"] and doc["receipt"]["typ"] == "steal"
    # RRN 1: stored from PLAIN-01 (a finding), refused with other content (conflict), and
    # inside KEYED-01's forged batch, which the terminal still holds.
    assert main(["lookup", "--db", db_url, "--rrn", "000000000001", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    kinds = sorted((d["kind"], d.get("reason"), d.get("still_on_terminal")) for d in docs)
    assert kinds == [
        ("refused", "conflict", False),
        ("refused", "mac", True),
        ("transaction", None, None),
    ]
    # By card: the full PAN was masked before it was stored, and its last four still match.
    card = ["--card-last4", "1111", "--amount", "1.03", "--around", "2026-05-29 04:30"]
    assert main(["lookup", "--db", db_url, *card]) == 0
    text = capsys.readouterr().out
    assert "refused by the collector · pan_unmasked · ¥1.03" in text
    assert "quarantine row is its only copy" in text and "采集器拒收" in text
    ids = {r["reason"]: r["id"] for r in _list(db_url, capsys)["refusals"]}
    assert f"daozhang quarantine show {ids['pan_unmasked']}" in text
    assert FULL_PAN not in text
    assert main(["lookup", "--db", db_url, *card[:3], "2.00", *card[4:]]) == 1


def test_a_reader_that_stops_early_gets_no_traceback(sqlite_url: str, tmp_path: Path) -> None:
    """`daozhang quarantine show ID | head`: the hex dump of an oversized message is far
    more than a pipe holds, so the command meets a closed pipe and must end quietly."""
    with open_database(sqlite_url) as store, store.transaction() as tx:
        ingest_batch(tx, "BIG-0001", b"\xa5" + b"\x00" * 40_000, NOW)
    (row,) = _refusal_ids(sqlite_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daozhang.cli", "quarantine", "show", str(row), "--db", sqlite_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"quarantine row")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 128 + signal.SIGPIPE, err
    assert err == ""


def _refusal_ids(url: str) -> list[int]:
    with open_database(url) as store:
        return [int(r[0]) for r in store.query("SELECT id FROM quarantine")]
