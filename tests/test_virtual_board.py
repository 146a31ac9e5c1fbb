"""A virtual board: real MicroPython on a pseudo-terminal, LittleFS flash, real mpremote."""

from __future__ import annotations

import ast
import os
import re
import select
import time
import tty as termios_tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.cli import main as cli_main
from daozhang.lab.board.console import catches_sigint
from daozhang.lab.board.manager import VirtualBoard

from tests.mpremote_run import mpremote
from tests.waiting import wait_until


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    return tmp_path


@pytest.fixture
def board(state: Path) -> Iterator[VirtualBoard]:
    vb = VirtualBoard.named("vb1")
    vb.start(state / "vb1.img", 1024 * 1024)
    try:
        yield vb
    finally:
        vb.stop(power_cut=True)


def test_mpremote_copies_a_file_that_survives_a_power_cut(board: VirtualBoard, state: Path) -> None:
    source = state / "receipt.txt"
    source.write_text("到账 survives\n")
    mpremote(board.tty, "fs", "cp", str(source), ":receipt.txt")
    board_pid = board.board_pid()
    assert board_pid is not None

    board.stop(power_cut=True)  # SIGKILL: no chance to flush anything more
    assert not board.running()
    # How each board process ended is kept, for a board that dies under a console session.
    ended = (board.root / "relay.log").read_text().splitlines()[-1]
    assert ended.endswith("board process ended: signal SIGKILL"), ended
    board.start(state / "vb1.img", 1024 * 1024)
    assert board.board_pid() != board_pid

    assert mpremote(board.tty, "fs", "cat", ":receipt.txt") == "到账 survives\n"
    listing = mpremote(board.tty, "exec", "import os; print(os.statvfs('/'))")
    block_size, _, blocks = ast.literal_eval(listing.strip())[:3]
    assert block_size * blocks == 1024 * 1024  # the image is the flash


def test_control_channel_changes_what_the_board_reports(board: VirtualBoard) -> None:
    probe = "import board; print(board.Board().describe())"
    before = ast.literal_eval(mpremote(board.tty, "exec", probe).strip())
    assert before["link"] == "up"

    assert (
        cli_main(["board", "set", "vb1", "--link", "down", "--rat", "lte", "--rsrp", "-115"]) == 0
    )
    after = ast.literal_eval(mpremote(board.tty, "exec", probe).strip())
    assert after["link"] == "down"
    assert after["signal"]["rat"] == "lte"
    assert after["signal"]["rsrp"] == -115


def test_clock_is_set_like_an_rtc_with_an_offset_and_a_rate(board: VirtualBoard) -> None:
    # A business day in the past, 300 board seconds per real second: what a fleet run sets.
    probe = "import board; b = board.Board(); print((b.rtc(), b.wall_time()))"
    assert (
        cli_main(["board", "set", "vb1", "--time", "2026-11-19T09:00+08:00", "--rate", "300"]) == 0
    )
    set_at = time.time()
    rtc, (ntp, src) = ast.literal_eval(mpremote(board.tty, "exec", probe).strip())
    elapsed = time.time() - set_at
    opens = 1795050000  # 2026-11-19 09:00 Beijing
    assert opens <= rtc <= opens + 300 * elapsed + 1, (rtc - opens, elapsed)
    assert src == "ntp" and abs(ntp - rtc) <= 300
    assert board.control()["link"] == "up"  # the rest of the control is kept

    assert cli_main(["board", "set", "vb1", "--time", "none"]) == 0
    assert ast.literal_eval(mpremote(board.tty, "exec", probe).strip()) == (None, None)
    assert cli_main(["board", "set", "vb1", "--time", "host"]) == 0
    rtc, _ = ast.literal_eval(mpremote(board.tty, "exec", probe).strip())
    assert abs(rtc - time.time()) < 5


def test_agent_autostarts_and_mpremote_interrupts_it(state: Path) -> None:
    """mpremote interrupts the agent at any moment after power-on and the board lives. The
    unix port raises Ctrl-C's KeyboardInterrupt from its SIGINT handler, a longjmp out of
    whatever C code runs ("FATAL: uncaught NLR" now and then under `daozhang flash`); so while
    the agent runs SIGINT is off and the agent stops between tasks at the Ctrl-C it reads."""
    vb = VirtualBoard.named("vb2")
    vb.start(state / "vb2.img", 256 * 1024, autostart=True)
    try:
        for delay in (0.0, 0.2, 0.5, 1.0, 2.0):
            time.sleep(delay)
            output = mpremote(vb.tty, "exec", "print('repl reached')")
            assert "repl reached" in output
            vb.power_cycle()

        fd = _console(vb.tty)
        try:
            started = b""
            deadline = time.monotonic() + 20
            while b"next_seq=" not in started and time.monotonic() < deadline:
                started += _read_for(fd, 0.2)
            assert b"daozhang agent: link=up next_seq=" in started, started  # the agent runs
            pid = vb.board_pid()
            assert pid is not None and not catches_sigint(pid)  # the agent reads Ctrl-C itself
        finally:
            os.close(fd)
        assert "repl reached" in mpremote(vb.tty, "exec", "print('repl reached')")
    finally:
        vb.stop(power_cut=True)
    assert "Traceback" not in (vb.root / "board.log").read_text()
    endings = (vb.root / "relay.log").read_text().splitlines()
    assert all(line.endswith("signal SIGKILL") for line in endings), endings  # power cycles only


_LOOPING_MAIN = "import time\n\ndef main():\n    while True:\n        time.sleep_ms(10)\n"


def _console(tty: Path) -> int:
    fd = os.open(tty, os.O_RDWR | os.O_NOCTTY)
    termios_tty.setraw(fd)
    return fd


def _read_for(fd: int, seconds: float, until: bytes | None = None) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (until is None or not out.endswith(until)):
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            out += os.read(fd, 4096)
    return out


def test_ctrl_c_at_any_moment_interrupts_code_and_never_kills_the_board(
    board: VirtualBoard, state: Path
) -> None:
    """A real board takes Ctrl-C as KeyboardInterrupt in running code and as a character
    otherwise. The unix port died of one sent during its start-up (measured before the fix:
    every time at 0-10 ms after power-on), which is what mpremote does right after a flash's
    power cycle; and of two sent together."""
    (state / "main.py").write_text(_LOOPING_MAIN)
    mpremote(board.tty, "fs", "cp", str(state / "main.py"), ":main.py")
    deaths = []
    for delay in (0.0, 0.0, 0.005, 0.01, 0.02, 0.05):
        board.power_cycle(dev=False, autostart=True)
        fd = _console(board.tty)
        try:
            time.sleep(delay)
            os.write(fd, b"\r\x03")
            _read_for(fd, 0.3)
        finally:
            os.close(fd)
        if not board.running():
            deaths.append((delay, (board.root / "relay.log").read_text().splitlines()[-1]))
            board.start(state / "vb1.img", 1024 * 1024)
    assert deaths == [], deaths

    board.power_cycle(dev=False, autostart=True)
    fd = _console(board.tty)
    try:
        pid = board.board_pid()
        assert pid is not None
        assert wait_until(lambda: catches_sigint(pid), timeout=30)  # MicroPython runs code
        os.write(fd, b"\x03\x03")  # twice at once: the unix port force-quits on that
        seen = _read_for(fd, 15.0, until=b">>> ")
    finally:
        os.close(fd)
    assert board.running(), (board.root / "relay.log").read_text().splitlines()[-1]
    assert b"agent stopped by the console" in seen and seen.endswith(b">>> "), seen
    assert "print" in mpremote(board.tty, "exec", "print('print')")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["board", "start", "--image", "{tmp}/x.img", "--flash-size", "4Q"], "expected a size"),
        (["board", "start", "--image", "{tmp}/x.img", "--flash-size", "5000"], "multiple of 4096"),
        (["board", "start", "--image", "{tmp}/x.img", "--flash-size", "1G"], "expected a size"),
        (["board", "start", "--image", "{tmp}/nodir/x.img"], "does not exist"),
        (["board", "start", "--image", "{tmp}/x.img", "--name", "bad name"], "board name"),
        (["board", "stop", "nosuch"], "is not running"),
        (["board", "set", "nosuch", "--link", "down"], "no virtual board"),
    ],
)
def test_bad_options_get_one_clear_line(
    state: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [a.replace("{tmp}", str(state)) for a in argv]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("daozhang: ")
    assert message in err
    assert "Traceback" not in err


def test_image_size_mismatch_is_refused(board: VirtualBoard, state: Path) -> None:
    board.stop()
    with pytest.raises(Exception, match="use the size it was created with"):
        board.start(state / "vb1.img", 2 * 1024 * 1024)


@pytest.mark.slow
def test_readme_example_board_start_then_flash(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's own example, as a technician types it: `board start` with no --heap, then
    `flash`. The agent's bytecode sits on the unix port's heap, so the default heap must hold
    it (issue 29: it ran out of RAM at 64K)."""
    monkeypatch.delenv("DAOZHANG_DB", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # the result line is not wrapped
    image = state / "b1.img"
    assert (
        cli_main(["board", "start", "--image", str(image), "--flash-size", "4M", "--name", "b1"])
        == 0
    )
    tty = capsys.readouterr().out.strip()
    try:
        status = cli_main(
            [
                "flash",
                "--port",
                tty,
                "--board",
                "virtual",
                "--device-id",
                "README-01",
                "--broker",
                "mqtt://127.0.0.1:9",
                "--db",
                f"sqlite:///{state / 'fleet.db'}",
                "--heartbeat-wait",
                "0",
            ]
        )
        seen = capsys.readouterr()
        # No broker listens there: the self-test says so; everything before it must pass.
        assert "ran out of RAM" not in seen.out + seen.err
        assert "MemoryError" not in seen.out + seen.err
        assert re.search(r"\d+ written, 0 removed", seen.out), (status, seen.out, seen.err)
    finally:
        VirtualBoard.named("b1").stop(power_cut=True)
