"""Issue 27's fleet update through faults, in the suite: 3 virtual boards (cohorts of 1 and 2)
update from the host's version to the next while their POS keep selling, links drop, boards'
connections are reset and the broker restarts; every board ends confirmed on the new version
and no receipt is lost or stored twice (tests/ota/fleet_update.py says what is checked;
bench/ota_fleet.py runs it with 20 boards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ota.fleet_update import run_update


@pytest.mark.slow
def test_a_fleet_updates_through_faults_while_selling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    lines: list[str] = []
    update = run_update(tmp_path / "update", cohorts="33,100", progress=lines.append)
    report = "\n".join(lines) + "\n" + update.render()
    print(report)
    assert update.problems() == [], report
    assert [len(c.devs) for c in update.cohorts] == [1, 2], report
    assert update.sent >= 60, report
