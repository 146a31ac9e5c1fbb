"""Rollouts to two virtual boards with the real Mosquitto and collector (DESIGN §1.6): a rollout
left running by its host is taken up again from the store by the rollout service (`ota
service`, a real process) and completes; a broken version, put in the store for the service
with `ota rollout --detach`, rolls back on the first cohort and the rollout halts before the
second."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.flash.build import compilers
from daozhang.lab.board.manager import VirtualBoard
from daozhang.ota.bundle import make_bundle

from tests.collector.procs import CollectorProcess
from tests.mpremote_run import mpremote
from tests.ota.test_ota_virtual_board import broken
from tests.ota.test_rollout_service import start_service
from tests.waiting import wait_until

HEAP = "512K"
BOARDS = {"POS-RO-0001": ("ro1", bytes(range(1, 33))), "POS-RO-0002": ("ro2", bytes(range(2, 34)))}


def start_board(tmp_path: Path, dev: str, port: int) -> VirtualBoard:
    name, key = BOARDS[dev]
    config = tmp_path / f"{name}.json"
    config.write_text(
        json.dumps(
            {
                "dev": dev,
                "host": "127.0.0.1",
                "port": port,
                "key": key.hex(),
                "hb_s": 3,
                "keepalive_s": 10,
                "backoff_base_ms": 300,
                "backoff_cap_ms": 2000,
                "ota_trial_s": 60,
                "ota_gap_ms": 5,
            }
        )
    )
    image = tmp_path / f"{name}.img"
    board = VirtualBoard.named(name)
    board.start(image, 4 * 1024 * 1024, heapsize=HEAP)
    mpremote(board.tty, "fs", "cp", str(config), ":/config.json")
    board.stop()
    board.start(image, 4 * 1024 * 1024, heapsize=HEAP, autostart=True)
    return board


@pytest.mark.slow
def test_rollouts_resume_from_the_store_and_halt_on_a_broken_version(
    mosquitto: Mosquitto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    for dev, (_, key) in BOARDS.items():
        assert cli_main(["device", "add", dev, "--key", key.hex(), "--db", db]) == 0
    compiler = compilers()[0]
    (tmp_path / "v2.dzb").write_bytes(make_bundle("0.2.0", "virtual", compiler, "0.1.0"))
    v3 = broken(make_bundle("0.3.0", "virtual", compiler, "0.1.0"), "0.3.0")
    (tmp_path / "v3.dzb").write_bytes(v3)
    collector = CollectorProcess(broker, db, tmp_path).start()
    boards = []
    service: subprocess.Popen[bytes] | None = None
    try:
        for dev in BOARDS:
            boards.append(start_board(tmp_path, dev, mosquitto.port))
        devs = ",".join(BOARDS)
        assert wait_until(
            lambda: (
                cli_main(
                    ["device", "cmd", devs, "report", "--broker", broker, "--db", db, "--wait", "3"]
                )
                == 0
            ),
            timeout=90,
        )
        serve = ["--broker", broker, "--db", db]

        # A rollout whose host stops after a moment: it stays running in the store...
        capsys.readouterr()
        status = cli_main(
            [
                "ota",
                "rollout",
                str(tmp_path / "v2.dzb"),
                "--devices",
                devs,
                "--cohorts",
                "50,100",
                "--halt-at",
                "0%",
                *serve,
                "--wait",
                "1",
            ]
        )
        out = capsys.readouterr().out
        assert status == 1 and "进行中 running" in out, out
        # ... and the rollout service takes it up from there.
        service = start_service(broker, db, tmp_path / "service.log")

        def status_of(rid: str) -> str:
            cli_main(["ota", "status", rid, "--db", db])
            return capsys.readouterr().out

        assert wait_until(lambda: "已完成 done" in status_of("1"), timeout=240, every=0.5), (
            status_of("1")
        )
        out = status_of("1")
        for dev in BOARDS:
            assert f"{dev:<20} 已确认 confirmed (运行版本 running 0.2.0)" in out, out

        # A version that raises at import, left to the service: the first cohort rolls back,
        # the second is never offered, and the rollout says who failed and how.
        assert cli_main(["ota", "rollout", str(tmp_path / "v3.dzb"), "--all", "--cohorts",
                         "50,100", "--halt-at", "5%", "--db", db, "--detach"]) == 0  # fmt: skip
        assert wait_until(lambda: "已暂停 halted" in status_of("2"), timeout=240, every=0.5), (
            status_of("2")
        )
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=15) == 0
        assert "rollout 2: halted: 1 of 1 failed" in (tmp_path / "service.log").read_text()
        # `ota resume` of a halted rollout offers nothing and says why it stopped.
        assert cli_main(["ota", "resume", "2", *serve, "--wait", "1"]) == 1
        out = capsys.readouterr().out
        assert "已暂停 halted: 1 of 1 failed" in out, out
        assert "[1] POS-RO-0001          已回退 rolled back crash (运行版本 running 0.2.0)" in out
        assert "[2] POS-RO-0002          未开始 not offered yet" in out, out
    finally:
        if service is not None and service.poll() is None:
            service.kill()
            service.wait()
        for board in boards:
            board.stop(power_cut=True)
        collector.kill()
