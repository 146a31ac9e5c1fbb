"""The whole agent on a virtual board: main.py with /config.json on its flash, the POS
simulator on its terminal link, real Mosquitto and the ack responder, the link cut through
the control channel, a command, and a power cut that leaves the broker's will behind."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cbor2
import paho.mqtt.client as paho
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.remote.wire import encode_command

from tests.fakes.ack_responder import AckResponder
from tests.mpremote_run import mpremote
from tests.waiting import wait_until

DEV = "POS-VB-0001"
KEY = bytes(range(32))  # commands are signed with it (DESIGN §1.5), batches too
# The dev mount runs .py sources: compiling them takes heap a flashed board (.mpy) does not.
HEAP = "512K"


def diag_events(responder: AckResponder) -> list[dict[str, object]]:
    log = responder.devices.get(DEV)
    if log is None:
        return []
    out = []
    for raw in list(log.records.values()):
        rec = cbor2.loads(raw)
        if rec["k"] == "d":
            out.append(rec["b"])
    return out


def receipts(responder: AckResponder) -> int:
    log = responder.devices.get(DEV)
    if log is None:
        return 0
    return sum(1 for raw in list(log.records.values()) if cbor2.loads(raw)["k"] == "r")


@pytest.mark.slow
def test_agent_on_a_virtual_board_end_to_end(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dev": DEV,
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "key": KEY.hex(),
                "hb_s": 5,
                "keepalive_s": 10,
                "ack_timeout_s": 5,
                "backoff_base_ms": 300,
                "backoff_cap_ms": 2000,
            }
        )
    )
    image = tmp_path / "flash.img"
    board = VirtualBoard.named("uplink1")
    responder = AckResponder(mosquitto.port, keys={DEV: KEY}).start()
    try:
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
        mpremote(board.tty, "fs", "cp", str(config), ":/config.json")  # as the flash tool does
        board.stop()
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)

        assert cli_main(["pos", "--board", "uplink1", "--count", "40"]) == 0
        assert wait_until(lambda: receipts(responder) >= 40), (board.root / "board.log").read_text()

        # The link goes down (as the board's control says): receipts keep being journaled.
        board.write_control({"link": "down", "signal": {"rat": "lte", "rsrp": -121}})
        time.sleep(2)
        assert cli_main(["pos", "--board", "uplink1", "--count", "20", "--seed", "2"]) == 0
        time.sleep(2)
        assert receipts(responder) == 40
        board.write_control({"link": "up", "signal": {"rat": "lte", "rsrp": -95}})
        assert wait_until(lambda: receipts(responder) >= 60)
        assert wait_until(
            lambda: any(
                e["ev"] == "link_up" and e.get("tries", 0) >= 1 for e in diag_events(responder)
            )
        )
        downs = [e for e in diag_events(responder) if e["ev"] == "link_down"]
        assert downs and downs[0]["stage"] == "link", downs

        # A signed command from the host: report now.
        before = len(responder.heartbeats)
        cmd = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="cmd-sender")
        cmd.connect("127.0.0.1", mosquitto.port)
        cmd.loop_start()
        signed = encode_command(KEY, DEV, 1, "report", {})
        cmd.publish(f"dz/v1/{DEV}/cmd", signed, qos=1).wait_for_publish()
        assert wait_until(lambda: len(responder.heartbeats) > before, timeout=4)
        hb = responder.heartbeats[-1]
        assert hb["dev"] == DEV and hb["link"] == "up" and hb["jrec"] >= 0
        cmd.loop_stop()
        cmd.disconnect()

        board.stop(power_cut=True)
        # Its will, signed at CONNECT like every status of a keyed device (`offline E.B.N`).
        assert wait_until(
            lambda: any(d == DEV and w.startswith(b"offline ") for d, w in responder.status),
            timeout=30,
        )
    finally:
        board.stop(power_cut=True)
        responder.stop()
    log = responder.devices[DEV]
    assert log.conflicts == 0
