"""Issue 26's alert test, end to end: a virtual board (the agent in MicroPython) on a weak
link through the fault proxy, real Mosquitto, the real collector and `daozhang alerts run`
as processes, and a local webhook receiver.

The board's uplink is throttled (a weak 2G cell) and takes one small batch at a time, so its
heartbeat tells the collector about receipts it has not been able to send yet; then the
link drops. The collector holds a heartbeat saying "N unsent" and hears nothing more: the
rule "silent with unsent receipts" fires to the webhook once the rule's window has passed,
once; when the link comes back and the journal drains, it resolves, once. On SQLite: the
rules' reads are run on both engines by test_fleet_rules.py (this end-to-end run on PostgreSQL
too cost the suite 28 s and tested no other statement).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.fleet.status import fleet_status
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.faults.proxy import FaultProxy
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.mpremote_run import mpremote
from tests.waiting import wait_until

DEV = "POS-AL-0001"
HEAP = "512K"  # the dev mount runs .py sources (see tests/uplink/test_virtual_board_agent.py)
WINDOW_S = 15  # the rule's window: silent this long with unsent receipts
ROUND_S = 1  # the alerts runner's interval


def _status(db_url: str) -> tuple[float | None, int]:
    """(seconds since the collector last heard from the board, unsent records it reported)."""
    with open_database(db_url, migrate=False) as store:
        rows = [r for r in fleet_status(store, time.time()) if r.dev == DEV]
    if not rows:
        return None, 0
    return rows[0].silent_s, rows[0].backlog or 0


def _stored_receipts(db_url: str) -> int:
    with open_database(db_url, migrate=False) as store:
        sql = "SELECT COUNT(*) FROM records WHERE dev = ? AND kind = 'r'"
        return int(store.query(sql, (DEV,))[0][0])


@pytest.mark.slow
def test_a_board_cut_off_with_receipts_fires_silent_unsent_and_resolves_when_it_drains(
    mosquitto: Mosquitto, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url = sqlite_url
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    receiver = WebhookReceiver()
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[business_hours]\nstart = "00:00"\nend = "00:00"\n\n'  # all day: the test runs any time
        f"[rules.silent_unsent]\nminutes = {WINDOW_S / 60}\n\n"
        f'[[webhooks]]\nkind = "json"\nurl = "{receiver.url("/hook")}"\n\n'
        f'[[webhooks]]\nkind = "wecom"\nurl = "{receiver.url("/wecom")}"\n'
    )
    proxy = FaultProxy("127.0.0.1", mosquitto.port).start()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dev": DEV,
                "host": "127.0.0.1",
                "port": proxy.port,
                "hb_s": 2,
                "keepalive_s": 30,
                "ack_timeout_s": 30,
                "window": 1,  # one batch in flight: a heartbeat goes out between batches
                "batch_records": 4,
                "backoff_base_ms": 300,
                "backoff_cap_ms": 1000,
            }
        )
    )
    collector = CollectorProcess(mosquitto.url, db_url, tmp_path, "c1")
    board = VirtualBoard.named("alert1")
    alerts_log = (tmp_path / "alerts.log").open("wb")
    alerts: subprocess.Popen[bytes] | None = None
    try:
        collector.start()
        image = tmp_path / "flash.img"
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
        mpremote(board.tty, "fs", "cp", str(config), ":/config.json")
        board.stop()
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)
        alerts = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daozhang.cli",
                "alerts",
                "run",
                "--db",
                db_url,
                "--rules",
                str(rules),
                "--interval",
                str(ROUND_S),
            ],
            stdout=alerts_log,
            stderr=alerts_log,
        )
        # A healthy start: receipts go up, nothing fires.
        assert cli_main(["pos", "--board", "alert1", "--count", "6"]) == 0
        assert wait_until(lambda: _stored_receipts(db_url) >= 6, timeout=60)
        assert wait_until(lambda: _status(db_url)[1] == 0, timeout=30)

        # A weak cell: ~600 bytes a second up. The board journals 16 more receipts and sends
        # them four at a time; its heartbeats between batches report what is still unsent.
        proxy.shape(up_bps=600)
        assert cli_main(["pos", "--board", "alert1", "--count", "16", "--batch", "2"]) == 0
        assert wait_until(lambda: _status(db_url)[1] > 0, timeout=60, every=0.05)
        # Then the link drops altogether, the batch on its way lost with it.
        proxy.blackhole(True)
        board.write_control({"link": "down", "signal": {"rat": "gsm", "csq": 3}})
        proxy.reset()
        proxy.blackhole(False)
        proxy.shape()
        cut_at = time.time()
        silent_since, unsent = _status(db_url)
        assert unsent > 0 and silent_since is not None
        last_heard = cut_at - silent_since
        assert receiver.bodies("/hook") == []

        assert wait_until(lambda: receiver.bodies("/hook"), timeout=WINDOW_S + 30)
        fired_at = next(r.at for r in receiver.received if r.path == "/hook")
        (fired,) = receiver.bodies("/hook")
        assert (fired["event"], fired["rule"], fired["subject"]) == (
            "firing",
            "silent_unsent",
            DEV,
        )
        assert f"终端 {DEV}" in fired["zh"] and "条未上传记录" in fired["zh"]
        # Within the window: not before the rule's minutes of silence, and no later than a
        # round (and a little for a loaded machine) after them.
        assert WINDOW_S <= fired_at - last_heard <= WINDOW_S + ROUND_S + 10, fired_at - last_heard
        assert wait_until(lambda: receiver.bodies("/wecom"), timeout=10)
        (wecom,) = receiver.bodies("/wecom")
        assert "【告警·严重】终端失联且有未上传交易" in wecom["markdown"]["content"]
        time.sleep(3 * ROUND_S)  # still silent: no repeat
        assert len(receiver.bodies("/hook")) == 1

        # The link comes back: the journal drains, the alert resolves, once.
        board.write_control({"link": "up", "signal": {"rat": "gsm", "csq": 20}})
        assert wait_until(lambda: len(receiver.bodies("/hook")) >= 2, timeout=60)
        # Resolved because it drained: everything the POS was ACKed for is stored.
        assert wait_until(lambda: _stored_receipts(db_url) >= 22, timeout=30), (
            _stored_receipts(db_url),
            _status(db_url),
        )
        resolved = receiver.bodies("/hook")[1]
        assert (resolved["event"], resolved["subject"]) == ("resolved", DEV)
        time.sleep(3 * ROUND_S)
        assert [b["event"] for b in receiver.bodies("/hook")] == ["firing", "resolved"]
        assert wait_until(lambda: len(receiver.bodies("/wecom")) == 2, timeout=10)
    finally:
        if alerts is not None:
            alerts.terminate()
            alerts.wait(timeout=10)
        alerts_log.close()
        board.stop(power_cut=True)
        collector.stop()
        proxy.stop()
        receiver.stop()
