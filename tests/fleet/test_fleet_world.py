"""The generator's fleet world: what the POS simulators send, and the acquirers' files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from daozhang.settle.importer import import_file
from daozhang.sim.fleet import Day, fleet_world, write_settlement
from daozhang.store import open_store

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
    files = write_settlement(w, tmp_path / "settlement")
    ((acq, day),) = w.scenario.missing_files
    assert not (tmp_path / "settlement" / f"detail_{acq}_{day:%Y%m%d}.csv").exists()
    with open_store(f"sqlite:///{tmp_path / 'd.db'}") as store:
        outcomes = [import_file(store, f).outcome for f in files]
        assert outcomes == ["imported"] * len(files)
        with store.transaction() as tx:
            n_detail = tx.execute("SELECT COUNT(*) FROM settle_detail")[0][0]
    written = sum(
        len(rows)
        for key, rows in w.scenario.detail_rows.items()
        if key not in w.scenario.missing_files
    )
    assert n_detail == written > 0
