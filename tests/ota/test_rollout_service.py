"""`daozhang ota service` as a real process against the real Mosquitto (daozhang.ota.service):
a rollout put in the store with `ota rollout --detach` is picked up and offered without anyone
running `ota rollout`; SIGTERM stops the service promptly and leaves the rollout running in the
store for its next start, which takes it up again. Devices updating to the end through the
service: tests/ota/test_rollout_boards.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.schema import open_database
from daozhang.store import Store

from tests.ota.test_serve_broker import DEV, KEY, device_on, tiny_bundle
from tests.waiting import wait_until


def _target(store: Store) -> tuple[str, float]:
    ((state, updated),) = store.query("SELECT state, updated_at FROM ota_targets")
    return str(state), float(updated)


def _detached_rollout(mosquitto: Mosquitto, tmp_path: Path) -> tuple[str, str]:
    """A device with a key and a rollout to it left in the store for a service: (db, broker)."""
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    bundle = tmp_path / "v2.dzb"
    bundle.write_bytes(tiny_bundle())
    assert cli_main(["ota", "rollout", str(bundle), "--devices", DEV, "--db", db,
                     "--detach"]) == 0  # fmt: skip
    return db, f"mqtt://127.0.0.1:{mosquitto.port}"


def start_service(broker: str, db: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "daozhang.cli", "ota", "service", "--broker", broker,
             "--db", db, "--poll", "0.5", *extra],
            stdout=out, stderr=out,
        )  # fmt: skip


def test_the_service_drives_a_detached_rollout_and_stops_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    bundle = tmp_path / "v2.dzb"
    bundle.write_bytes(tiny_bundle())
    log = tmp_path / "service.log"
    with device_on(mosquitto) as device:
        device.subscribe()
        capsys.readouterr()
        # No broker needed to put a rollout in the store; nothing is offered yet.
        assert cli_main(["ota", "rollout", str(bundle), "--devices", DEV, "--db", db,
                         "--detach"]) == 0  # fmt: skip
        assert "left to `ota service` to drive" in capsys.readouterr().out
        time.sleep(0.5)
        assert device.heard == []

        service = start_service(broker, db, log)
        try:
            assert wait_until(lambda: len(device.heard) >= 1, timeout=30), log.read_text()
            assert cbor2.loads(device.heard[0][1])["op"] == "offer"
            assert "rollout 1: driving" in log.read_text()
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=15) == 0, log.read_text()
        finally:
            if service.poll() is None:
                service.kill()
                service.wait()
        assert "stopped: the rollouts still running stay so in the store" in log.read_text()
        assert cli_main(["ota", "status", "--db", db]) == 1
        assert "进行中 running" in capsys.readouterr().out

        # Its next start takes the rollout up again: the device is offered it once more.
        heard = len(device.heard)
        service = start_service(broker, db, log)
        try:
            assert wait_until(lambda: len(device.heard) > heard, timeout=30), log.read_text()
        finally:
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=15) == 0


def test_a_rollout_needs_a_broker_unless_detached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert cli_main(["device", "add", DEV, "--key", KEY.hex(), "--db", db]) == 0
    bundle = tmp_path / "v2.dzb"
    bundle.write_bytes(tiny_bundle())
    assert cli_main(["ota", "rollout", str(bundle), "--devices", DEV, "--db", db]) == 2
    err = capsys.readouterr().err
    assert "--broker is needed unless --detach" in err
    # Refused before anything was stored.
    assert cli_main(["ota", "status", "--db", db]) != 0
    assert "no rollout in the store" in capsys.readouterr().err


def test_ota_halt_stops_the_service_driving_it(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rollout halted by hand: the service's driver lets go of it within a wait slice, says
    so, and does not take it up again; halting it twice is refused in one line."""
    db, broker = _detached_rollout(mosquitto, tmp_path)
    log = tmp_path / "service.log"
    with device_on(mosquitto) as device:
        device.subscribe()
        service = start_service(broker, db, log)
        try:
            assert wait_until(lambda: len(device.heard) >= 1, timeout=30), log.read_text()
            # A device that does not answer is written once, as offered, not at every slice:
            # its `updated_at` says when it last changed (alerts' `rollout_stalled`).
            with open_database(db, create=False) as store:
                assert wait_until(lambda: _target(store)[0] == "offered", timeout=10)
                first = _target(store)
                time.sleep(4.5)  # two wait slices of the driver
                assert _target(store) == first
            capsys.readouterr()
            assert cli_main(["ota", "halt", "--why", "收银台重启 tills reboot", "--db", db]) == 0
            out = capsys.readouterr().out
            assert "已暂停 halted: 收银台重启 tills reboot (ota halt)" in out, out
            said = "rollout 1: halted: 收银台重启 tills reboot (ota halt)"
            assert wait_until(lambda: said in log.read_text(), timeout=10), log.read_text()
            time.sleep(1.5)  # three polls: it is not driven again
            assert log.read_text().count("rollout 1: driving") == 1
            assert service.poll() is None
        finally:
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=15) == 0
    assert cli_main(["ota", "halt", "1", "--why", "again", "--db", db]) == 2
    assert "rollout 1 is not running: 已暂停 halted" in capsys.readouterr().err


def test_one_driver_at_a_time_and_a_spare_takes_over(
    mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two services on one store (a spare on another host): one drives the rollout, the other
    says so once and waits; `ota resume` meanwhile is refused; when the first is killed (no
    SIGTERM, its hold not let go) the spare takes the rollout over once the hold lapses."""
    db, broker = _detached_rollout(mosquitto, tmp_path)
    first_log, spare_log = tmp_path / "first.log", tmp_path / "spare.log"
    with device_on(mosquitto) as device:
        device.subscribe()
        first = start_service(broker, db, first_log, "--lease", "4")
        spare = None
        try:
            assert wait_until(lambda: "rollout 1: driving" in first_log.read_text(), timeout=30)
            spare = start_service(broker, db, spare_log, "--lease", "4")
            busy = "rollout 1: rollout 1 is being driven by"
            assert wait_until(lambda: busy in spare_log.read_text(), timeout=30)
            time.sleep(1.5)  # polls go by: said once, and it does not drive
            assert spare_log.read_text().count(busy) == 1
            assert "driving" not in spare_log.read_text()
            capsys.readouterr()
            assert cli_main(["ota", "status", "--db", db]) == 1
            assert "执行者 driven by" in capsys.readouterr().out
            assert cli_main(["ota", "resume", "--broker", broker, "--db", db, "--wait", "1"]) == 2
            assert "is being driven by" in capsys.readouterr().err

            first.kill()
            first.wait()
            heard = len(device.heard)
            assert wait_until(lambda: "rollout 1: driving" in spare_log.read_text(), timeout=20)
            assert wait_until(lambda: len(device.heard) > heard, timeout=10)
        finally:
            for p in (first, spare):
                if p is not None and p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    assert p.wait(timeout=15) == 0
    assert cli_main(["ota", "status", "--db", db]) == 1
    assert "无人执行 nobody drives it" in capsys.readouterr().out
