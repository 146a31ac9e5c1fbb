"""The update rollout rules on a store written as `ota rollout` and its driver write it
(tests/console/update_data.py): `rollout_halted` for the newest rollout once halted, resolved
when a newer one begins; `rollout_stalled` when a running rollout and its devices have not
changed for the rule's hours."""

from __future__ import annotations

import time
from pathlib import Path

from daozhang.alerts.rules import parse
from daozhang.alerts.runner import evaluate
from daozhang.alerts.state import apply, firing_now
from daozhang.ota.rollout import create, halt
from daozhang.schema import open_database

from tests.console import update_data
from tests.ota.test_serve_broker import tiny_bundle

RULES = parse({"rules": {"rollout_halted": {}, "rollout_stalled": {"hours": 6}}})


def test_a_halted_rollout_fires_until_a_newer_one_begins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    _, running = update_data.build(url)
    with open_database(url) as store:
        now = time.time()
        assert evaluate(store, RULES, now).firing == []
        assert halt(store, running, "收银台重启 tills reboot (wang)")
        (alert,) = evaluate(store, RULES, now).firing
        assert alert.key == f"rollout_halted:rollout:{running}"
        assert alert.zh == (f"升级批次 {running}（版本 0.2.0）已暂停：收银台重启 tills reboot"
                            " (wang)；1/5 台失败")  # fmt: skip
        assert "1 of 5 devices failed" in alert.en
        apply(store, evaluate(store, RULES, now), now, RULES.destinations, RULES.severity)
        assert [key for key, _, _ in firing_now(store)] == [alert.key]
        # A fixed version rolled out: the halt is dealt with.
        create(store, tiny_bundle(), update_data.DEVICES[:1], [100.0], 5.0)
        later = evaluate(store, RULES, now)
        assert later.firing == []
        apply(store, later, now + 60, RULES.destinations, RULES.severity)
        assert firing_now(store) == []


def test_a_rollout_without_change_for_hours_is_stalled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    _, running = update_data.build(url)
    with open_database(url) as store:
        now = time.time()
        assert evaluate(store, RULES, now + 5.9 * 3600).firing == []
        (alert,) = evaluate(store, RULES, now + 7 * 3600).firing
        assert alert.key == f"rollout_stalled:rollout:{running}"
        assert "7 小时无进展，第 1/2 组，1 台未开始" in alert.zh
        assert "has not moved for 7 h" in alert.en
        # One device moving is a change: not stalled for six hours after it.
        with store.transaction() as tx:
            tx.execute("UPDATE ota_targets SET state = 'fetching 60%', updated_at = ?"
                       " WHERE rollout_id = ? AND dev = ?",
                       (now + 6 * 3600, running, update_data.FETCHING))  # fmt: skip
        assert evaluate(store, RULES, now + 7 * 3600).firing == []
        # A rule the file leaves out says nothing.
        quiet = parse({"rules": {"rollout_halted": {}}})
        assert evaluate(store, quiet, now + 30 * 3600).firing == []
