"""The artefact scan after a fleet run (issue 9): the world's non-compliant POS, and a
negative control showing the very scan the chaos test runs finds one planted full PAN."""

from __future__ import annotations

import random
import shutil
from datetime import date
from pathlib import Path

from daozhang.lab.fleet.panscan import kind_of, scan_run
from daozhang.lab.pos.ledger import Ledger, mask_pan
from daozhang.lab.sim.fleet import Day, fleet_world, full_pan, import_settlement
from daozhang.schema import open_database
from daozhang.security.pan import is_full_pan

DEVS = [f"dz{i:04d}" for i in range(1, 8)]
DAY = Day(date(2026, 11, 19), 9 * 3600, 22 * 3600, 100)
CAUSES = {"timing": 3, "fee": 3}


def test_some_frames_carry_full_pans_that_mask_back_to_the_truth() -> None:
    plain = fleet_world(3, DEVS, DAY, 80, {}, CAUSES)
    leaky = fleet_world(3, DEVS, DAY, 80, {}, CAUSES, full_pan_pct=10)
    assert leaky.scenario.truth == plain.scenario.truth
    cards = full = 0
    for dev in DEVS:
        for a, b in zip(plain.frames[dev], leaky.frames[dev], strict=True):
            assert a.at_s == b.at_s
            if "pan" not in a.body:
                assert a.body == b.body
                continue
            cards += 1
            if b.body["pan"] != a.body["pan"]:
                full += 1
                assert is_full_pan(b.body["pan"]), b.body["pan"]
                assert {**b.body, "pan": mask_pan(b.body["pan"])} == a.body
    assert 0.05 * cards < full < 0.15 * cards, (full, cards)


def test_full_pan_is_luhn_valid_and_keeps_the_mask() -> None:
    rng = random.Random(1)
    for masked in ("622848******1234", "436742******0000", "625807*********9876"):
        for _ in range(20):
            pan = full_pan(masked, rng)
            assert is_full_pan(pan) and mask_pan(pan) == masked


def _artefacts(folder: Path) -> Path:
    """A run folder with real artefacts of the kinds a run leaves: the database with the
    settlement imported, the acquirers' files (fixed-width ACQ02 with its timestamps), a
    POS ledger fed full PANs, a log."""
    world = fleet_world(5, DEVS, DAY, 80, {}, CAUSES, full_pan_pct=20)
    folder.mkdir()
    with open_database(f"sqlite:///{folder / 'daozhang.db'}") as store:
        import_settlement(store, world, folder / "settlement")
    (folder / "pos").mkdir()
    ledger = Ledger(folder / "pos" / f"{DEVS[0]}.jsonl")
    for i, frame in enumerate(world.frames[DEVS[0]]):
        ledger.sent(i, dict(frame.body))
    ledger.close()
    (folder / "logs").mkdir()
    (folder / "logs" / "collector0.1.log").write_text("collector: stored 5 records\n")
    return folder


def test_the_run_scan_counts_every_kind_and_finds_a_planted_pan(tmp_path: Path) -> None:
    run = _artefacts(tmp_path / "run")
    result = scan_run(run)
    print(result.render())
    assert result.findings == [], result.render()
    for kind in ("database", "settlement", "POS ledger", "log"):
        assert result.files[kind] > 0 and result.bytes[kind] > 0, kind

    # Negative control: a copy of one artefact with one masked PAN made full again.
    clearing = max((run / "settlement").glob("*clear*"), key=lambda p: p.stat().st_size)
    text = clearing.read_bytes()
    masked = next(w for w in text.split() if b"******" in w).decode()
    pan = full_pan(masked, random.Random(7))
    control = tmp_path / "control"
    shutil.copytree(run, control)
    (control / "settlement" / clearing.name).write_bytes(
        text.replace(masked.encode(), pan.encode(), 1)
    )
    found = scan_run(control).findings
    assert found == [f"settlement/{clearing.name}:{text.index(masked.encode())}: full PAN {masked}"]


def test_kinds() -> None:
    out = Path("/r")
    assert kind_of(out, out / "daozhang.db-wal") == "database"
    assert kind_of(out, out / "images" / "dz0001.img") == "flash image"
    assert kind_of(out, out / "state" / "boards" / "dz0001" / "board.log") == "log"
    assert kind_of(out, out / "report.html") == "report"
