"""An update over MQTT to the agent on a virtual board, with the real Mosquitto and the real
collector (DESIGN §1.6): `daozhang ota offer` serves the compiled agent while the POS keeps
selling; the device stages it, switches, restarts on it and confirms it at the first ack.
Then what must be refused is: an older bundle (a downgrade), a manifest signed with another
device's key, a tampered chunk; and a version that raises at import rolls back by itself."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.flash.build import compilers
from daozhang.lab.board.manager import VirtualBoard
from daozhang.ota.bundle import MAGIC, BundleFile, Manifest, make_bundle, read_bundle
from daozhang.ota.serve import Server
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess
from tests.mpremote_run import mpremote
from tests.waiting import wait_until

DEV = "POS-VB-OTA1"
KEY = bytes(range(9, 41))
OTHER_KEY = bytes(range(50, 82))
HEAP = "512K"  # the dev mount compiles .py sources; the update brings .mpy


def broken(bundle: bytes, version: str) -> bytes:
    """The same agent as `bundle` but `version`, whose main.py raises at import."""
    b = read_bundle(bundle)
    files = [(f.path, b.file_data(i)) for i, f in enumerate(b.manifest.files)]
    files = [
        (p, b"raise ImportError('broken build')\n" if p == "/main.py" else d) for p, d in files
    ]
    m = b.manifest
    manifest = Manifest(
        version,
        m.board,
        m.mpy,
        m.min_version,
        tuple(BundleFile(p, len(d), hashlib.sha256(d).digest()) for p, d in files),
    ).encode()
    return MAGIC + struct.pack(">I", len(manifest)) + manifest + b"".join(d for _, d in files)


def receipts_stored(db: str) -> int:
    """Receipt records (every state of every sale), as the POS had them acked."""
    with open_database(db, create=False) as store:
        return int(store.query("SELECT COUNT(*) FROM records WHERE kind = 'r'")[0][0])


def offer(
    server_args: tuple[str, bytes], dev_key: bytes, wait_s: float = 90, alter: object = None
) -> str:
    broker, bundle = server_args
    with Server(broker, read_bundle(bundle), alter=alter, reoffer_s=10) as server:
        server.offer(DEV, dev_key)
        return server.wait(wait_s)[DEV].state


@pytest.mark.slow
def test_an_update_over_mqtt_switches_confirms_and_refuses_what_it_must(
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "dev": DEV,
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "key": KEY.hex(),
                "hb_s": 3,
                "keepalive_s": 10,
                "backoff_base_ms": 300,
                "backoff_cap_ms": 2000,
                "ota_trial_s": 60,
                "ota_gap_ms": 5,
            }
        )
    )
    compiler = compilers()[0]
    v2 = make_bundle("0.2.0", "virtual", compiler, "0.1.0")
    (tmp_path / "v2.dzb").write_bytes(v2)
    image = tmp_path / "flash.img"
    board = VirtualBoard.named("ota1")
    collector = CollectorProcess(broker, db, tmp_path).start()
    try:
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
        mpremote(board.tty, "fs", "cp", str(config), ":/config.json")
        board.stop()
        board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)
        assert wait_until(
            lambda: (
                cli_main(
                    ["device", "cmd", DEV, "report", "--broker", broker, "--db", db, "--wait", "3"]
                )
                == 0
            ),
            timeout=60,
        ), (board.root / "board.log").read_text()[-3000:]

        # The update, while the POS sells: every receipt stored, the new version confirmed.
        selling = threading.Thread(
            target=cli_main,
            args=(
                [
                    "pos",
                    "--board",
                    "ota1",
                    "--count",
                    "30",
                    "--rate",
                    "3",
                    "--ledger",
                    str(tmp_path / "ledger.jsonl"),
                ],
            ),
        )
        capsys.readouterr()
        selling.start()
        status = cli_main(
            [
                "ota",
                "offer",
                str(tmp_path / "v2.dzb"),
                DEV,
                "--broker",
                broker,
                "--db",
                db,
                "--wait",
                "180",
            ]
        )
        selling.join(60)
        out = capsys.readouterr().out
        log = (board.root / "board.log").read_text()[-4000:]
        assert status == 0, out + log
        assert f"{DEV:<20} 已确认 confirmed (运行版本 running 0.2.0)" in out, out
        ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").open()]
        acked = sum(1 for row in ledger if row["ev"] == "acked")
        assert wait_until(lambda: receipts_stored(db) == acked, timeout=60), (
            receipts_stored(db),
            acked,
            out,
            log,
        )
        assert acked == 30, out

        # Refused: the same bundle's older build (a downgrade), another device's signature,
        # a tampered chunk (asked again three times, then refused).
        v1 = make_bundle("0.1.9", "virtual", compiler, "0.1.0")
        assert offer((broker, v1), KEY) == "refused downgrade"
        v3 = make_bundle("0.3.0", "virtual", compiler, "0.1.0")
        assert offer((broker, v3), OTHER_KEY) == "refused mac"
        v4 = make_bundle("0.3.1", "virtual", compiler, "0.1.0")

        def tamper(dev: str, off: int, data: bytes) -> bytes:
            return data if off < 5000 else bytes([data[0] ^ 1]) + data[1:]

        assert offer((broker, v4), KEY, alter=tamper) == "refused hash"

        # A version that raises at import: switched to, failed on trial, rolled back.
        v5 = broken(make_bundle("0.5.0", "virtual", compiler, "0.1.0"), "0.5.0")
        assert offer((broker, v5), KEY, wait_s=120) == "rolled back crash"
        status = cli_main(["device", "cmd", DEV, "report", "--broker", broker, "--db", db])
        assert status == 0
        with open_database(db, create=False) as store:
            rows = store.query(
                "SELECT fw FROM heartbeats WHERE dev = ? ORDER BY id DESC LIMIT 1", (DEV,)
            )
        assert rows[0][0] == "0.2.0"
        with open_database(db, create=False) as store:
            events = [
                json.loads(r[0])
                for r in store.query(
                    "SELECT body_json FROM diag_events WHERE dev = ? AND ev = 'ota' ORDER BY seq",
                    (DEV,),
                )
            ]
        said = [(e["st"], e.get("why") or e.get("ver")) for e in events]
        assert ("confirmed", "0.2.0") in said and ("refused", "downgrade") in said, said
    finally:
        board.stop(power_cut=True)
        collector.kill()
