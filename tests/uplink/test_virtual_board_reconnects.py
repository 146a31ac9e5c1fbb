"""Issue 29, the whole agent on a virtual board: its open descriptors stay flat across 100
reconnects (the link reset under it, the broker handing its session to another client, a
refused connect, a dead link found by keepalive), and a 4 KB command, more than its receive
buffer holds, is read past without stopping its uploads. (Before: the MQTT client left one
socket open per session end on some paths, and one packet over 1,024 bytes ended every
session before its PUBACK, so the broker redelivered it after every CONNACK, for good.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.faults.proxy import FaultProxy

from tests.fakes.ack_responder import AckResponder
from tests.mpremote_run import mpremote
from tests.uplink.test_virtual_board_agent import HEAP
from tests.waiting import wait_until

DEV = "POS-VB-0002"
RECONNECTS = int(os.environ.get("DZ_TEST_RECONNECTS", "100"))


def _records(responder: AckResponder, kind: str) -> list[dict[str, Any]]:
    log = responder.devices.get(DEV)
    if log is None:
        return []
    return [rec["b"] for rec in map(cbor2.loads, list(log.records.values())) if rec["k"] == kind]


def _receipts(responder: AckResponder) -> int:
    return len(_records(responder, "r"))


def _onlines(responder: AckResponder) -> int:
    return sum(1 for dev, word in list(responder.status) if dev == DEV and word == b"online")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _take_over_session(port: int) -> None:
    """Another client connects under the device's id: the broker closes the device's link."""
    thief = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=DEV)
    thief.connect("127.0.0.1", port)
    thief.loop_start()
    time.sleep(0.2)
    thief.disconnect()
    thief.loop_stop()


@pytest.mark.slow
def test_descriptors_stay_flat_across_100_reconnects_and_a_4k_command_is_read_past(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    proxy = FaultProxy("127.0.0.1", mosquitto.port).start()
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dev": DEV,
                "host": "127.0.0.1",
                "port": proxy.port,
                "hb_s": 60,
                "keepalive_s": 2,
                "ack_timeout_s": 5,
                "backoff_base_ms": 50,
                "backoff_cap_ms": 200,
            }
        )
    )
    image = tmp_path / "flash.img"
    board = VirtualBoard.named("reconn1")
    responder = AckResponder(mosquitto.port).start()
    try:
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
        mpremote(board.tty, "fs", "cp", str(config), ":/config.json")
        board.stop()
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)
        pid = board.board_pid()
        assert pid is not None
        assert cli_main(["pos", "--board", "reconn1", "--count", "10"]) == 0
        assert wait_until(lambda: _receipts(responder) >= 10, timeout=60)
        baseline = _fds(pid)

        counts = []
        for n in range(RECONNECTS):
            before = _onlines(responder)
            if n % 20 == 19:  # a dead link: no RST, found by the unanswered PINGREQ
                proxy.blackhole(True)
                time.sleep(0.5)
                proxy.reset()
                proxy.blackhole(False)
            elif n % 3 == 0:
                proxy.reset()  # the link drops under the session
            elif n % 3 == 1:
                _take_over_session(mosquitto.port)  # the broker ends the session
            else:
                proxy.refuse(True)  # the next connects are refused, then it gets through
                proxy.reset()
                time.sleep(0.3)
                proxy.refuse(False)
            assert wait_until(lambda b=before: _onlines(responder) > b, timeout=30), (
                f"no reconnect after fault {n}: " + (board.root / "board.log").read_text()[-2000:]
            )
            counts.append(_fds(pid))
        print("open descriptors: baseline", baseline, "after each reconnect", counts)
        # Flat: not one descriptor more per session ended.
        assert max(counts, default=baseline) <= baseline + 1, counts

        # A 4 KB command: more than the client's buffer. Read past, PUBACKed, journaled.
        sessions = _onlines(responder)
        sender = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="cmd-sender")
        sender.connect("127.0.0.1", mosquitto.port)
        sender.loop_start()
        sender.publish(f"dz/v1/{DEV}/cmd", b"\xa1bopfreport" + b"x" * 4096, qos=1)
        assert cli_main(["pos", "--board", "reconn1", "--count", "10", "--batch", "000002"]) == 0
        # A new batch number: the same traces again would be repeats of the first sales.
        assert wait_until(lambda: _receipts(responder) >= 20, timeout=60), (
            board.root / "board.log"
        ).read_text()[-3000:]
        assert wait_until(
            lambda: any(e["ev"] == "rx_skipped" for e in _records(responder, "d")), timeout=30
        )
        time.sleep(3)  # a redelivery loop would show as sessions ending one after another
        assert _onlines(responder) <= sessions + 1
        sender.loop_stop()
        sender.disconnect()
    finally:
        board.stop(power_cut=True)
        responder.stop()
        proxy.stop()
