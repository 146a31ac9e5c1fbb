"""`daozhang sim check|verify|run` from the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cbor2
import pytest
from daozhang.cli import main
from daozhang.collector.ingest import ingest_batch
from daozhang.lab.fleet import runner, scenario
from daozhang.lab.fleet.invariants import Sent, write_truth
from daozhang.schema import open_database

CHAOS = Path(scenario.__file__).with_name("scenarios") / "chaos.toml"
KEY = {"mid": "898440358120001", "tid": "10000001", "bat": "000001", "st": "approved"}


def test_check_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "check", str(CHAOS), "--events"]) == 0
    out = capsys.readouterr().out
    assert "20 boards x 250 receipts = 5000 receipts" in out
    assert "time x312 for POS times" in out
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert any(e.get("action") == "broker_stop" for e in events)
    assert any(e.get("path") == "blackhole" for e in events)


def test_check_reports_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[boards]\ncount = 'many'\n")
    assert main(["sim", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"daozhang: scenario {bad}: boards.count: expected an integer, got a string\n"


def make_db(tmp_path: Path, trcs: list[int]) -> str:
    """Receipts stored through the collector's own ingest path."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    recs = [
        {
            "seq": seq,
            "k": "r",
            "t": 1795000000,
            "boot": 1,
            "up": seq,
            "b": {**KEY, "trc": f"{trc:06d}", "typ": "sale", "amt": 100, "cur": "CNY"},
        }
        for seq, trc in enumerate(trcs, 1)
    ]
    payload = cbor2.dumps({"v": 1, "dev": "dz0001", "epoch": 1, "boot": 1, "recs": recs})
    with open_database(url) as store, store.transaction() as tx:
        assert not ingest_batch(tx, "dz0001", payload, 1795000100.0).quarantined
    return url


def truth(tmp_path: Path, trcs: list[int]) -> Path:
    path = tmp_path / "truth.jsonl"
    key = (KEY["mid"], KEY["tid"], KEY["bat"])
    write_truth(
        path,
        [
            Sent("dz0001", (*key, f"{t:06d}", "approved"), 100, "acked", i)
            for i, t in enumerate(trcs, 1)
        ],
    )
    return path


def test_verify_passes_and_fails_with_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_db(tmp_path, [1, 2, 3])
    assert (
        main(["sim", "verify", "--db", url, "--truth", str(truth(tmp_path, [1, 2, 3])), "--all"])
        == 0
    )
    assert "dz0001     3      3       3   3          0     0           0           0  ok" in (
        capsys.readouterr().out
    )
    assert main(["sim", "verify", "--db", url, "--truth", str(truth(tmp_path, [1, 2, 3, 4]))]) == 1
    out = capsys.readouterr().out
    assert "lost 898440358120001/10000001/000001/000004/approved" in out


def test_verify_on_a_database_without_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    sqlite3.connect(tmp_path / "empty.db").close()
    assert main(["sim", "verify", "--db", url, "--truth", str(truth(tmp_path, [1]))]) == 2
    assert "is it a collector's database?" in capsys.readouterr().err


def test_run_refuses_to_start_without_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "PARTS", [("a part", "module:daozhang.no_such_part", "nowhere")])
    assert main(["sim", "run", str(CHAOS), "--out", str(tmp_path / "out")]) == 2
    assert "this build lacks a part [nowhere]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
