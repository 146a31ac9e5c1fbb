"""Issue 29: a full disk neither loses an acked record nor stops the collector. The database
sits on a small tmpfs that a filler fills to the last byte and empties, over and over, while
devices upload: every record ends up stored exactly once, the collector never exits, and its
log and /metrics say why it waited. (bench/disk_full.py runs the 10,000-record version.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto

from tests.collector.diskfull import can_mount, run_while_filling, small_filesystem
from tests.collector.test_collect_mqtt import _check_exactly_once

pytestmark = pytest.mark.skipif(not can_mount(), reason="mounting a tmpfs needs root")


@pytest.mark.parametrize("max_inbox", ["200000", "0"])
def test_ingest_survives_the_disk_filling_and_emptying(
    mosquitto: Mosquitto, tmp_path: Path, max_inbox: str
) -> None:
    with small_filesystem(tmp_path / "small", 24) as disk:
        db_url = f"sqlite:///{disk / 'c.db'}"
        outcome = run_while_filling(
            mosquitto.url,
            db_url,
            disk,
            tmp_path,
            devices=2,
            records=1500,
            timeout_s=120,
            extra=("--max-inbox", max_inbox),
            fills_at_least=4,  # uploads go on across four fills, whatever the machine's speed
        )
        assert outcome.exit_code is None, outcome.log[-3000:]
        assert outcome.finished, [(p.dev, p.acked) for p in outcome.publishers]
        assert outcome.fills >= 4  # the disk really was full, several times
        assert "database or disk is full" in outcome.log  # says why it waits
        assert 'dz_collector_store_errors_total{kind="disk_full"}' in outcome.metrics
        _check_exactly_once(db_url, outcome.publishers)  # 0 lost, 0 duplicated
