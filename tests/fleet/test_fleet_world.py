"""The generator's fleet world: what the POS simulators send, and the acquirers' files."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import cbor2
from daozhang.collector.ingest import ingest_batch
from daozhang.correlate.engine import analyse
from daozhang.lab.fleet import scenario as fleet_scenario
from daozhang.lab.fleet.scenario import load
from daozhang.lab.fleet.supervisor import Supervisor
from daozhang.lab.fleet.wiring import Session
from daozhang.lab.sim.fleet import Day, fleet_world, import_settlement
from daozhang.schema import open_database

DEVS = [f"dz{i:04d}" for i in range(1, 15)]
DAY = Day(date(2026, 11, 19), 9 * 3600, 22 * 3600, 100)  # a Thursday
CAUSES = {
    "timing": 5,
    "fee": 5,
    "account_problem": 2,
    "risk_hold": 2,
    "acquirer_side": 1,
    "file_missing": 1,
}
OUTAGES = {"dz0001": [(20.0, 40.0)], "dz0003": [(50.0, 55.0)]}


def world():  # type: ignore[no-untyped-def]
    return fleet_world(11, DEVS, DAY, 60, OUTAGES, CAUSES, no_response_pct=1)


def test_sales_in_an_outage_are_reversed_and_their_truth_is_network_reversed() -> None:
    w = world()
    frames = w.frames["dz0001"]
    assert [f.at_s for f in frames] == sorted(f.at_s for f in frames)
    in_outage = [f for f in frames if 20 <= f.at_s < 40 and f.body["typ"] == "sale"]
    assert in_outage and all(f.body["st"] == "no_response" for f in in_outage)
    for f in in_outage:
        reversal = [
            g for g in frames if g.body["trc"] == f.body["trc"] and g.body["st"] == "reversed"
        ]
        assert len(reversal) == 1 and reversal[0].at_s >= 40 and reversal[0].body["rv"] == "98"
        key = ("r", f.body["mid"], f.body["tid"], f.body["bat"], f.body["trc"])
        assert w.scenario.truth[key].cause == "network_reversed"
        assert w.scenario.truth[key].status == "gap"
    outside = [f for f in frames if not 20 <= f.at_s < 41 and f.body["st"] == "approved"]
    assert outside and all("rrn" in f.body for f in outside)


def test_injected_causes_appear_in_the_truth_and_the_world_is_reproducible() -> None:
    w = world()
    counts = w.truth_counts()
    assert counts["timing"] == 5
    assert counts["acquirer_side"] == 40
    assert counts["file_missing"] > 0 and len(w.scenario.missing_files) == 1
    assert counts["account_problem"] > 0 and counts["risk_hold"] > 0
    assert counts["network_reversed"] >= 1 and counts["settled"] > 0
    assert world().frames == w.frames
    # Every receipt body has the natural key, and no full PAN leaves the generator.
    for frames in w.frames.values():
        for f in frames:
            assert {"mid", "tid", "bat", "trc", "st", "amt"} <= f.body.keys()
            assert "pan" not in f.body or "******" in f.body["pan"]


def test_settlement_files_import_and_the_missing_file_is_missing(tmp_path: Path) -> None:
    w = world()
    with open_database(f"sqlite:///{tmp_path / 'd.db'}") as store:
        results = import_settlement(store, w, tmp_path / "settlement")
        # Empty detail files of two acquirers are the same bytes: the second is "already imported".
        assert {r.outcome for r in results} <= {"imported", "already imported"}
        with store.transaction() as tx:
            n_detail = tx.execute("SELECT COUNT(*) FROM settle_detail")[0][0]
            n_payouts = tx.execute("SELECT COUNT(*) FROM payouts")[0][0]
    ((acq, day),) = w.scenario.missing_files
    names = [r.name for r in results]
    assert not [n for n in names if acq in n and f"{day:%Y%m%d}" in n and "payout" not in n]
    written = sum(
        len(rows)
        for key, rows in w.scenario.detail_rows.items()
        if key not in w.scenario.missing_files
    )
    assert n_detail == written > 0
    acquirer = {m.mid: m.acquirer for m in w.scenario.merchants}
    paid = [
        p
        for p in w.scenario.payouts
        if (acquirer[p["mid"]], date.fromisoformat(p["settle_date"]))
        not in w.scenario.missing_files
    ]  # that acquirer-day sent no file at all
    assert n_payouts == len(paid) > 0


def test_correlation_finds_the_truth_when_every_receipt_is_stored(tmp_path: Path) -> None:
    # The board side replaced by the collector's own ingest path (what a perfect fleet run
    # stores): then correlation must give every transaction its planned status and cause.
    w = world()
    with open_database(f"sqlite:///{tmp_path / 'd.db'}") as store:
        for dev, frames in w.frames.items():
            recs = [
                {"seq": i + 1, "k": "r", "t": f.body["lt"], "boot": 1, "up": i * 1000, "b": f.body}
                for i, f in enumerate(frames)
            ]
            for start in range(0, len(recs), 12):
                payload = cbor2.dumps(
                    {"v": 1, "dev": dev, "epoch": 5, "boot": 1, "recs": recs[start : start + 12]}
                )
                with store.transaction() as tx:
                    assert not ingest_batch(tx, dev, payload, w.scenario.as_of - 3600).quarantined
        import_settlement(store, w, tmp_path / "settlement")
        findings = analyse(store, w.scenario.as_of).findings
    got = {("r", f.mid, f.tid, f.bat, f.trc): f for f in findings if f.kind == "transaction"}
    wrong = Counter()
    for key, truth in w.scenario.truth.items():
        f = got.get(key)
        found = (f.status, f.cause) if f else ("(none)", "")
        if found != (truth.status, truth.cause):
            wrong[(truth.status, truth.cause, *found)] += 1
    assert not wrong, wrong
    assert len(w.scenario.truth) > 500


def test_the_runs_settlement_step_runs_daozhang_correlate_and_checks_the_truth(
    tmp_path: Path,
) -> None:
    # The fleet run's last step on a store a perfect run would leave (receipts through the
    # collector's ingest path): the real `daozhang correlate`, JSON and HTML out, truth held.
    w = world()
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with open_database(url) as store:
        for dev, frames in w.frames.items():
            recs = [
                {"seq": i + 1, "k": "r", "t": f.body["lt"], "boot": 1, "up": i * 1000, "b": f.body}
                for i, f in enumerate(frames)
            ]
            with store.transaction() as tx:
                for start in range(0, len(recs), 12):
                    payload = cbor2.dumps(
                        {
                            "v": 1,
                            "dev": dev,
                            "epoch": 5,
                            "boot": 1,
                            "recs": recs[start : start + 12],
                        }
                    )
                    ingest_batch(tx, dev, payload, w.scenario.as_of - 3600)
    scenario = load(Path(fleet_scenario.__file__).with_name("scenarios") / "demo.toml")
    with Supervisor(tmp_path / "logs", handle_signals=False) as sup:
        session = Session(scenario, tmp_path, sup, w)
        lines, report = session.settle_and_correlate(url)
    assert session.causes_ok, "\n".join(lines)
    assert "  every transaction got the cause its ground truth says" in lines
    assert report is not None and report.read_text().lstrip().lower().startswith("<!doctype html")
    # The table names causes in words (daozhang.words), Chinese first.
    assert "无应答冲正" in (tmp_path / "correlate.txt").read_text()
