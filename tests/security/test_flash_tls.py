"""The whole path: `daozhang pki` credentials written into the flash slots by the real
`daozhang flash`, the agent on a virtual board (its own flash, autostarted) connecting with
TLS and its client certificate to the broker of `daozhang broker`, the collector over TLS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.schema import open_database
from daozhang.security.pki import Pki
from daozhang.security.scan import scan

from tests.collector.procs import CollectorProcess


@pytest.mark.slow
def test_flashed_board_uploads_over_tls(
    fleet_broker: Mosquitto,
    fleet_pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    dev = "POS0100"
    fleet_pki.issue_device(dev)
    slots = fleet_pki.device_dir(dev)
    db_url = f"sqlite:///{tmp_path / 'daozhang.db'}"
    open_database(db_url).close()
    # The flash tool registers the device's HMAC key in the collector's store (no heartbeat
    # wait: the agent's first heartbeat comes after its interval).
    monkeypatch.setenv("DAOZHANG_DB", db_url)
    collector = CollectorProcess(
        fleet_broker.url, db_url, tmp_path, "c1", "--tls-dir", str(fleet_pki.collector_dir("main"))
    ).start()
    board = VirtualBoard.named("tls1")
    board.start(tmp_path / "tls1.img", 512 * 1024, heapsize="256K")
    try:
        argv = [
            "flash", "--board", "virtual", "--port", str(board.tty), "--device-id", dev,
            "--broker", fleet_broker.url,
            "--ca", str(slots / "ca.pem"),
            "--client-cert", str(slots / "client.crt"),
            "--client-key", str(slots / "client.key"),
        ]  # fmt: skip
        assert cli_main(argv) == 0
        out = capsys.readouterr().out
        assert "answers MQTT CONNECT" in out and "mqtts://" in out, out  # handshake checked
        deadline = time.monotonic() + 60
        seen: list[tuple[str]] = []
        while time.monotonic() < deadline:
            with open_database(db_url, migrate=False) as store, store.transaction() as tx:
                seen = tx.execute("SELECT ev FROM diag_events WHERE dev = ?", (dev,))
            if ("link_up",) in seen:
                break
            time.sleep(0.5)
        # The agent connected over TLS with its certificate, uploaded, and was acked.
        assert ("link_up",) in seen and ("boot",) in seen, seen
    finally:
        board.stop(power_cut=True)
        collector.stop()
    with open_database(db_url, migrate=False) as store, store.transaction() as tx:
        links = tx.execute(
            "SELECT body_json FROM diag_events WHERE dev = ? AND ev = 'link_down'", (dev,)
        )
        quarantined = tx.execute("SELECT reason FROM quarantine")
        acked = tx.execute("SELECT upto FROM ack_state WHERE dev = ?", (dev,))
        keys = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
    assert keys and keys[0][0] is not None and len(bytes(keys[0][0])) == 32
    assert not [b for (b,) in links if '"tls"' in b], links
    assert quarantined == [] and acked and acked[0][0] >= 3  # signed batches, verified
    # The board's flash image and the database hold no full card number.
    assert scan([tmp_path / "tls1.img", tmp_path / "daozhang.db"]).findings == []


@pytest.mark.slow
def test_flash_self_test_refuses_a_broker_from_another_ca(
    fleet_pki: Pki,
    foreign_pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from daozhang.broker.config import FleetListeners

    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("DAOZHANG_DB", f"sqlite:///{tmp_path / 'daozhang.db'}")
    evil = Mosquitto(
        workdir=tmp_path / "evil", listeners=FleetListeners(foreign_pki, tmp_path / "evil")
    ).start()
    slots = fleet_pki.device_dir("devA01")
    board = VirtualBoard.named("tls2")
    board.start(tmp_path / "tls2.img", 512 * 1024, heapsize="256K")
    try:
        argv = [
            "flash", "--board", "virtual", "--port", str(board.tty), "--device-id", "devA01",
            "--broker", evil.url,
            "--ca", str(slots / "ca.pem"),
            "--client-cert", str(slots / "client.crt"),
            "--client-key", str(slots / "client.key"),
        ]  # fmt: skip
        assert cli_main(argv) == 1
    finally:
        board.stop(power_cut=True)
        evil.stop()
    out = capsys.readouterr().out
    assert "TLS handshake with mqtts://" in out and "not correctly signed" in out, out
