"""A board flashed by `daozhang flash` uploads to a real Mosquitto and a real collector:
the self-test sees its first heartbeat, and receipts from the POS arrive signed with the key
the flash registered (the collector runs with --require-key)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.flash import build, deploy
from daozhang.lab.board.manager import VirtualBoard
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess


def wait_rows(db_url: str, sql: str, params: tuple[object, ...], want: int) -> int:
    deadline = time.monotonic() + 60
    while True:
        with open_database(db_url, migrate=False) as store, store.transaction() as tx:
            count = int(tx.execute(sql, params)[0][0])
        if count >= want or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


@pytest.mark.slow
def test_a_flashed_board_uploads_to_mosquitto_and_the_collector(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mosquitto: Mosquitto,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    # Flashed as another version than the source's: the heartbeat must name what was flashed.
    monkeypatch.setattr(build, "__version__", "0.1.7")
    monkeypatch.setattr(deploy, "__version__", "0.1.7")
    collector = CollectorProcess(mosquitto.url, sqlite_url, tmp_path, "c1", "--require-key")
    vb = VirtualBoard.named("field1")
    try:
        collector.start()
        vb.start(tmp_path / "field1.img", 512 * 1024, heapsize="256K")
        argv = [
            "flash",
            "--board",
            "virtual",
            "--port",
            str(vb.tty),
            "--device-id",
            "SHOP0001",
            "--broker",
            mosquitto.url,
            "--db",
            sqlite_url,
            "--heartbeat-wait",
            "60",
        ]
        assert cli_main(argv) == 0, capsys.readouterr()
        out = capsys.readouterr().out
        assert "SHOP0001: PASS" in out
        assert "heartbeat   │ PASS" in out
        assert (
            wait_rows(
                sqlite_url,
                "SELECT COUNT(*) FROM heartbeats WHERE dev = ? AND fw = ?",
                ("SHOP0001", "0.1.7"),
                1,
            )
            >= 1
        )

        # The POS main board sends receipts over the terminal link; the agent journals them
        # and uploads them, MAC'd with the key the flash put on the device.
        assert cli_main(["pos", "--board", "field1", "--count", "5", "--seed", "7"]) == 0
        stored = wait_rows(
            sqlite_url,
            "SELECT COUNT(*) FROM records WHERE kind = 'r' AND dev = ?",
            ("SHOP0001",),
            5,
        )
        assert stored == 5
        assert wait_rows(sqlite_url, "SELECT COUNT(*) FROM quarantine", (), 0) == 0

        # In the field: inspect shows the journal, everything acked once the collector
        # has it, and the agent comes back afterwards.
        capsys.readouterr()
        deadline = time.monotonic() + 60
        while True:
            assert cli_main(["device", "inspect", "--port", str(vb.tty), "--json"]) == 0
            report = json.loads(capsys.readouterr().out)
            journal = report["journal"]
            if journal.get("records") == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert journal["records"] == 0, journal  # nothing left unacked
        assert journal["next_seq"] >= 6  # boot record(s) + 5 receipts
        assert journal["acked"] == journal["next_seq"] - 1
        assert report["diag"] == []  # acked diag records are gone from the device
    finally:
        vb.stop(power_cut=True)
        collector.stop()


@pytest.mark.slow
def test_over_tls_the_flashed_ca_is_what_the_board_verifies_the_broker_with(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil
    import tempfile

    from daozhang.ports import free_port

    from tests.uplink.test_uplink_e2e import _make_pki

    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    # Outside pytest's private tmp: Mosquitto started as root reads its files as `mosquitto`.
    pki = Path(tempfile.mkdtemp(prefix="dz-flash-pki-"))
    pki.chmod(0o755)
    ca, cert, key = _make_pki(pki)
    for f in pki.iterdir():
        f.chmod(0o644)
    other = pki / "other"
    other.mkdir(mode=0o755)
    wrong_ca = _make_pki(other)[0]
    tls_port = free_port()
    broker = Mosquitto(
        workdir=tmp_path / "mosquitto",
        extra_config=[
            f"listener {tls_port} 127.0.0.1",
            f"cafile {ca}",
            f"certfile {cert}",
            f"keyfile {key}",
        ],
    ).start()
    collector = CollectorProcess(broker.url, sqlite_url, tmp_path, "c1", "--require-key")
    vb = VirtualBoard.named("tls1")
    try:
        collector.start()
        vb.start(tmp_path / "tls1.img", 512 * 1024, heapsize="256K")
        base = ["flash", "--board", "virtual", "--port", str(vb.tty), "--device-id", "TLS0001"]
        tls = ["--broker", f"mqtts://localhost:{tls_port}", "--db", sqlite_url]

        # A CA that did not sign the broker's certificate: the board refuses the broker.
        assert cli_main([*base, *tls, "--ca", str(wrong_ca), "--heartbeat-wait", "5"]) == 1
        err = capsys.readouterr().err
        assert f"self-test broker FAIL: TLS handshake with mqtts://localhost:{tls_port}" in err

        assert cli_main([*base, *tls, "--ca", str(ca), "--heartbeat-wait", "60"]) == 0
        out = capsys.readouterr().out
        assert "answers MQTT CONNECT, TLS verified" in out
        assert "heartbeat   │ PASS" in out
        assert cli_main(["pos", "--board", "tls1", "--count", "3", "--seed", "3"]) == 0
        stored = wait_rows(
            sqlite_url, "SELECT COUNT(*) FROM records WHERE kind = 'r' AND dev = ?", ("TLS0001",), 3
        )
        assert stored == 3
    finally:
        vb.stop(power_cut=True)
        collector.stop()
        broker.stop()
        shutil.rmtree(pki, ignore_errors=True)
