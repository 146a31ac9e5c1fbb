"""`daozhang device cmd` against the agent on a virtual board, the real Mosquitto and the real
collector (DESIGN §1.5): signed commands run and are answered; an unsigned command, a recorded
command sent again (also after a power cut), another device's command and a command addressed
to another device are refused, answered as such, and journaled as `cmd_refused` diagnostics
that reach the collector's store."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import cbor2
import paho.mqtt.client as paho
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.remote.send import prepare
from daozhang.remote.wire import decode_answer, mac
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess
from tests.mpremote_run import mpremote
from tests.waiting import wait_until

DEV = "POS-VB-CMD1"
OTHER = "POS-VB-CMD2"
KEY = bytes(range(7, 39))
OTHER_KEY = bytes(range(40, 72))
HEAP = "512K"  # the dev mount compiles .py sources (tests/uplink/test_virtual_board_agent.py)


class Wire:
    """A host-side spy: every command published to the device, and every answer it gives."""

    def __init__(self, port: int) -> None:
        self.commands: list[bytes] = []
        self.answers: list[bytes] = []
        self.heartbeats = 0
        self._lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="spy")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(
            [(f"dz/v1/{DEV}/cmd", 1), (f"dz/v1/{DEV}/reply", 0), (f"dz/v1/{DEV}/hb", 0)]
        )
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            leaf = msg.topic.rsplit("/", 1)[1]
            if leaf == "cmd":
                self.commands.append(bytes(msg.payload))
            elif leaf == "reply":
                self.answers.append(bytes(msg.payload))
            else:
                self.heartbeats += 1

    def publish(self, payload: bytes) -> None:
        self.client.publish(f"dz/v1/{DEV}/cmd", payload, qos=1).wait_for_publish(5)

    def answer_to(self, payload: bytes, timeout: float = 15) -> dict[str, Any]:
        """Publish raw bytes as a command; the device's next (verified) answer."""
        before = len(self.answers)
        self.publish(payload)
        assert wait_until(lambda: len(self.answers) > before, timeout=timeout), "no answer"
        answer = decode_answer(DEV, KEY, self.answers[before])
        assert answer is not None and answer.verified, self.answers[before]
        return {"ok": answer.ok, "why": answer.why, "n": answer.n, "seen": answer.seen}

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def device_cmd(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = cli_main(["device", "cmd", *argv])
    return status, capsys.readouterr().out


def refusals(db: str) -> list[tuple[str, int]]:
    with open_database(db, create=False) as store:
        rows = store.query(
            "SELECT body_json FROM diag_events WHERE dev = ? AND ev = 'cmd_refused' ORDER BY seq",
            (DEV,),
        )
    return [(b["why"], b["n"]) for b in (json.loads(r[0]) for r in rows)]


@pytest.mark.slow
def test_device_cmd_signed_runs_the_rest_is_refused(
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    assert cli_main(["device", "add", OTHER, "--key", OTHER_KEY.hex(), "--db", db]) == 0
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dev": DEV,
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "key": KEY.hex(),
                "hb_s": 600,
                "keepalive_s": 10,
                "backoff_base_ms": 300,
                "backoff_cap_ms": 2000,
            }
        )
    )
    image = tmp_path / "flash.img"
    board = VirtualBoard.named("cmd1")
    collector = CollectorProcess(broker, db, tmp_path).start()
    wire = Wire(mosquitto.port)
    try:
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
        mpremote(board.tty, "fs", "cp", str(config), ":/config.json")  # as the flash tool does
        board.stop()
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)

        # Signed: run and answered. The first may go out before the agent has subscribed (a
        # clean start); asking again with --wait is what a technician does.
        assert wait_until(
            lambda: (
                device_cmd(
                    DEV, "report", "--broker", broker, "--db", db, "--wait", "3", capsys=capsys
                )[0]
                == 0
            ),
            timeout=60,
        ), (board.root / "board.log").read_text()[-3000:]
        heartbeats = wire.heartbeats
        status, out = device_cmd(DEV, "report", "--broker", broker, "--db", db, capsys=capsys)
        assert status == 0 and f"{DEV:<20} 已执行 applied" in out, out
        assert wait_until(lambda: wire.heartbeats > heartbeats, timeout=10)
        status, out = device_cmd(
            DEV, "set", "hb_s=2", "--broker", broker, "--db", db, capsys=capsys
        )
        assert status == 0 and "applied" in out, out
        heartbeats = wire.heartbeats
        assert wait_until(lambda: wire.heartbeats >= heartbeats + 2, timeout=15), "hb_s applied"

        # A recorded command sent again: refused, nothing runs.
        recorded = wire.commands[-1]
        recorded_n = cbor2.loads(recorded[:-32])["n"]
        assert wire.answer_to(recorded) == {
            "ok": False,
            "why": "replay",
            "n": recorded_n,
            "seen": recorded_n,
        }
        # Unsigned (the format of the agent's earlier, unsigned commands, and the current one
        # without its MAC).
        unsigned = cbor2.dumps({"v": 1, "dev": DEV, "n": 10**6, "op": "report"})
        answer = wire.answer_to(unsigned)
        assert (answer["ok"], answer["why"], answer["n"]) == (False, "mac", 0), answer
        assert wire.answer_to(cbor2.dumps({"op": "report"}))["why"] == "mac"
        # Another device's command (signed with its key) published on this device's topic.
        with open_database(db, create=False) as store:
            theirs = prepare(store, [OTHER], "set", {"hb_s": 1})[0].payload
        assert wire.answer_to(theirs)["why"] == "mac"
        # Signed with this device's key but addressed to another device.
        body = cbor2.dumps({"v": 1, "dev": OTHER, "n": 10**6, "op": "report"})
        assert wire.answer_to(body + mac(KEY, body))["why"] == "dev"
        # A tampered command: one byte of a signed `set` changed.
        with open_database(db, create=False) as store:
            signed = bytearray(prepare(store, [DEV], "set", {"hb_s": 60})[0].payload)
        signed[-33] ^= 0x01  # the value 60 -> 61
        assert wire.answer_to(bytes(signed))["why"] == "mac"

        # A receipt commits the lazily written diagnostics before the power cut.
        assert cli_main(["pos", "--board", "cmd1", "--count", "1"]) == 0
        # A power cut: the counter survives, the recorded command is still refused, and the
        # host's next one runs.
        board.stop(power_cut=True)
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)
        assert wait_until(
            lambda: (
                device_cmd(
                    DEV, "flush", "--broker", broker, "--db", db, "--wait", "3", capsys=capsys
                )[0]
                == 0
            ),
            timeout=60,
        )
        assert wire.answer_to(recorded)["why"] == "replay"

        # Every refusal was journaled and reaches the collector's store.
        assert cli_main(["pos", "--board", "cmd1", "--count", "1", "--batch", "000002"]) == 0
        expected = [("replay", recorded_n), ("mac", 0), ("mac", 0), ("mac", 0)]
        expected += [("dev", 10**6), ("mac", 0), ("replay", recorded_n)]
        assert wait_until(lambda: refusals(db) == expected, timeout=30), refusals(db)

        # A device that does not answer, and one the store has no key for.
        status, out = device_cmd(
            OTHER, "flush", "--broker", broker, "--db", db, "--wait", "1", capsys=capsys
        )
        assert status == 1 and f"{OTHER:<20} 无应答 no answer (1 s)" in out, out
    finally:
        board.stop(power_cut=True)
        wire.stop()
        collector.kill()


def test_device_cmd_refuses_what_it_cannot_send(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    assert cli_main(["device", "add", "NOKEY-01", "--db", db]) == 0
    broker = "mqtt://127.0.0.1:9"
    cases = [
        ([DEV, "set", "keepalive_s=30"], "keepalive_s is read at boot"),
        ([DEV, "set", "hb_s=0"], "hb_s must be an integer in 1..86400, not 0"),
        ([DEV, "set", "port=1"], "unknown agent setting 'port'"),
        ([DEV, "set"], "set needs KEY=VALUE"),
        ([DEV, "flush", "hb_s=1"], "flush takes no KEY=VALUE"),
        (["bad id!", "flush"], "is not [A-Za-z0-9_-]{4,32}"),
        (["NOKEY-01", "flush"], "no key for NOKEY-01"),
        (["NOPE-0001", "flush"], "no device 'NOPE-0001'"),
    ]
    for argv, message in cases:
        status = cli_main(["device", "cmd", *argv, "--broker", broker, "--db", db])
        err = capsys.readouterr().err
        assert status == 2 and message in err, (argv, err)
    # Nothing was sent, and no counter was spent on a refused command line.
    with open_database(db, create=False) as store:
        assert store.query("SELECT dev, last_n FROM remote_counters") == []
    # The broker down: said in one line.
    status = cli_main(["device", "cmd", DEV, "flush", "--broker", broker, "--db", db])
    assert status == 2 and "cannot connect to the broker" in capsys.readouterr().err
