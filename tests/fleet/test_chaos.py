"""The chaos test: 20 boards, 5,000+ receipts, every fault at once -> nothing lost.

Real MicroPython agents on LittleFS images (flashed with the real tool), the journal's POS
simulators, a fault proxy per board, real Mosquitto restarted with persistence off, two real
collectors on one shared subscription (one killed and restarted, repeatedly), power cuts,
half-open links, resets, link-down and delay windows (scenarios/chaos.toml). Then the
acquirers' files, the real `daozhang correlate`, and the ground truth.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from daozhang.fleet import scenario as scenario_mod
from daozhang.fleet.invariants import render
from daozhang.fleet.runner import run_scenario

CHAOS = Path(scenario_mod.__file__).with_name("scenarios") / "chaos.toml"


@pytest.mark.slow
def test_chaos_run_loses_nothing_and_every_cause_is_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    scenario = scenario_mod.load(CHAOS)
    out = tmp_path / "run"
    lines: list[str] = []
    result = run_scenario(scenario, out, progress=lines.append)
    log = "\n".join(lines)
    print(log)
    check = result.invariants
    assert check is not None, log
    print(render(check))

    # Every fault kind really happened, and none failed to apply.
    applied = Counter(
        json.loads(line).get("action") or json.loads(line)["path"]
        for line in (out / "timeline.jsonl").read_text().splitlines()
    )
    for kind in (
        "power_cut",
        "power_on",
        "broker_stop",
        "broker_start",
        "collector_kill",
        "collector_start",
        "reset",
        "blackhole",
        "down",
    ):
        assert applied[kind] > 0, (kind, applied)
    assert result.timeline_errors == [], result.timeline_errors

    # The invariant, Jepsen style: what each POS was acked is stored exactly once.
    assert check.total("sent") >= 5000
    assert (check.total("lost"), check.total("duplicated"), check.total("unexpected")) == (
        0,
        0,
        0,
    ), render(check, only_problems=True)
    assert check.total("acked") == check.total("sent")

    # Correlation gives every transaction the cause its ground truth says, the sales the
    # boards reversed for lack of a response during the injected outages included.
    assert "every transaction got the cause its ground truth says" in "\n".join(result.summary), (
        "\n".join(result.summary)
    )
    findings = json.loads((out / "findings.json").read_text())["findings"]
    reversed_in_outage = [f for f in findings if f.get("cause") == "network_reversed"]
    assert len(reversed_in_outage) >= 20
    assert result.ok
