"""A run's findings are recorded a batch a transaction (engine.Recorder): the run says
`n_findings = -1` until its last batch is in, and the alert gauges read the latest complete
run, never a half-written one. `daozhang correlate` records every finding of the stream."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.collector.alert_gauges import money_gauges
from daozhang.correlate.engine import Recorder, analyse, record
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.store import Store
from daozhang.units import BEIJING


def _unpaid(store: Store, now: float) -> float:
    gauges = money_gauges(store, now)
    return sum(value for g in gauges if g.name == "dz_unpaid_yuan" for _, value in g.samples)


def test_a_run_counts_only_once_complete(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = generate(23, cases=8)
    monkeypatch.setattr(Recorder, "BATCH", 7)
    with open_database(sqlite_url) as store:
        load(store, sc, tmp_path / "files")
        findings = analyse(store, sc.as_of).findings
        first = record(store, sc.as_of, findings)
        before = _unpaid(store, sc.as_of)
        assert before > 0
        half = Recorder(store, sc.as_of)
        half.add([f for f in findings if f.status != "gap"])  # a run cut short: no gaps yet
        assert store.query("SELECT n_findings FROM correlate_runs WHERE id = ?",
                           (half.run_id,)) == [(-1,)]  # fmt: skip
        stored = store.query("SELECT COUNT(*) FROM findings WHERE run_id = ?", (half.run_id,))
        assert stored[0][0] > 0  # batches are in, each committed
        assert _unpaid(store, sc.as_of) == before  # still the first run's money
        assert half.close() > first
        assert _unpaid(store, sc.as_of) == 0  # now the (gapless) second run counts


def test_correlate_records_every_finding(sqlite_url: str, tmp_path: Path) -> None:
    sc = generate(23, cases=8)
    with open_database(sqlite_url) as store:
        load(store, sc, tmp_path / "files")
        n = len(analyse(store, sc.as_of).findings)
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert main(["correlate", "--db", sqlite_url, "--as-of", as_of, "--quiet"]) == 0
    with open_database(sqlite_url, create=False) as store:
        runs = store.query("SELECT id, n_findings FROM correlate_runs")
        assert len(runs) == 1 and runs[0][1] == n
        count = store.query("SELECT COUNT(*), MAX(n) FROM findings WHERE run_id = ?", (runs[0][0],))
        assert count == [(n, n - 1)]
