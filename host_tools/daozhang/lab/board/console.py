"""The virtual board's serial console: a pseudo-terminal relay around one MicroPython process.

Two pseudo-terminals: the *console* one, whose path is published for mpremote (raw mode, like
a USB serial port), and the *board* one, the MicroPython process's controlling terminal (no
echo, no output processing, no signals from the terminal). Output nobody reads is dropped, as
a UART drops it, so a board that logs never blocks on its console. The relay exits when the
MicroPython process does; killing that process is a power cut.

Ctrl-C is the relay's job, not the terminal's. On a real board it raises KeyboardInterrupt in
running code and is an ordinary character otherwise (at the REPL, during boot). Here it would
be SIGINT, and the `micropython` command is CPython hosting the port: until the port installs
its handler (it does while it runs code), SIGINT meets CPython's own KeyboardInterrupt handler
or the default action, and the process ends. A Ctrl-C from mpremote within ~20 ms of a
power-on killed the board that way (measured: 8 of 8 at 0-10 ms), the cause of boards dying
under a console session. So the board process starts with SIGINT ignored (CPython then leaves
it alone), the terminal's ISIG is off, and the relay sends SIGINT for a Ctrl-C only while the
process catches it (SigCgt in /proc); otherwise it passes the byte on, as a UART would.
While the agent runs, SIGINT is off and the agent reads the byte itself (boards/virtual/README.md,
"Ctrl-C"): the port's handler raises from inside C code, which a real board never does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import selectors
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path


def _board_terminal_modes(fd: int) -> None:
    attrs = termios.tcgetattr(fd)
    attrs[1] &= ~termios.OPOST  # oflag: bytes out exactly as written (mpremote expects \r\n)
    attrs[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)  # lflag: Ctrl-C is the relay's
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


CTRL_C = b"\x03"
# A Ctrl-C this soon after the last SIGINT is the same interrupt: the unix port force-quits on
# a second SIGINT that comes before it handled the first, which a real board never does.
SAME_INTERRUPT_S = 0.2


def catches_sigint(pid: int) -> bool:
    """Whether the process has a handler for SIGINT now (the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGINT - 1) & 1)
    return False


class BoardInput:
    """Console bytes to the board, each Ctrl-C taken as a real board takes it (module doc)."""

    def __init__(self, pid: int, board_master: int) -> None:
        self.pid = pid
        self.board_master = board_master
        self.last_interrupt = -SAME_INTERRUPT_S

    def write(self, data: bytes) -> None:
        pieces = data.split(CTRL_C)
        for i, piece in enumerate(pieces):
            if piece:
                os.write(self.board_master, piece)
            if i < len(pieces) - 1:
                self._ctrl_c()

    def _ctrl_c(self) -> None:
        if not catches_sigint(self.pid):
            os.write(self.board_master, CTRL_C)  # a character, as at a real board's REPL
            return
        now = time.monotonic()
        if now - self.last_interrupt < SAME_INTERRUPT_S:
            return
        self.last_interrupt = now
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)


def _spawn_board(argv: list[str], env: dict[str, str], log_path: Path) -> tuple[int, int]:
    board_master, board_slave = pty.openpty()
    _board_terminal_modes(board_slave)
    log = log_path.open("ab")

    def become_session_leader() -> None:
        # Ignored until MicroPython installs its own handler to run code: the `micropython`
        # command is CPython hosting the port, and CPython keeps an inherited SIG_IGN instead
        # of installing its KeyboardInterrupt handler, which a Ctrl-C during its start-up hit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.setsid()
        # The pty becomes the controlling terminal, as a console is a board's.
        import fcntl

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        argv,
        stdin=board_slave,
        stdout=board_slave,
        stderr=log,
        env=env,
        preexec_fn=become_session_leader,  # noqa: PLW1509 - single-threaded relay process
        close_fds=True,
    )
    os.close(board_slave)
    return process.pid, board_master


def relay(link_path: Path, argv: list[str], env: dict[str, str], state: Path) -> int:
    console_master, console_slave = pty.openpty()
    tty.setraw(console_slave)
    # Keep our own handle on the console side so reads never fail while nobody is attached.
    console_name = os.ttyname(console_slave)
    tmp_link = link_path.with_suffix(".new")
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(console_name, tmp_link)
    os.replace(tmp_link, link_path)

    pid, board_master = _spawn_board(argv, env, state / "board.log")
    (state / "mp.pid").write_text(f"{pid}\n")
    os.set_blocking(console_master, False)
    board_input = BoardInput(pid, board_master)

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    selector = selectors.DefaultSelector()
    selector.register(console_master, selectors.EVENT_READ, "console")
    selector.register(board_master, selectors.EVENT_READ, "board")
    try:
        while True:
            for key, _ in selector.select(timeout=1.0):
                if key.data == "board":
                    try:
                        data = os.read(board_master, 4096)
                    except OSError as exc:
                        if exc.errno == errno.EIO:  # the board process is gone
                            return _reap(pid)
                        raise
                    if not data:
                        return _reap(pid)
                    # Nobody reading the console: drop the bytes, like a UART does.
                    with contextlib.suppress(BlockingIOError):
                        os.write(console_master, data)
                else:
                    try:
                        data = os.read(console_master, 4096)
                    except (BlockingIOError, OSError):
                        continue
                    if data:
                        board_input.write(data)
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                return os.waitstatus_to_exitcode(status)
    finally:
        if link_path.is_symlink() and os.readlink(link_path) == console_name:
            link_path.unlink()


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main() -> int:
    """`python -m daozhang.lab.board.console STATE_DIR -- ARGV...` (started by `daozhang board`)."""
    state = Path(sys.argv[1])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    env = dict(os.environ)
    code = relay(state / "tty", argv, env, state)
    # relay.log: how the board ended (-9 is a power cut; anything else after a console
    # session is the first thing to look at when a board dies under mpremote).
    how = f"exit status {code}"
    if code < 0:
        with contextlib.suppress(ValueError):
            how = f"signal {signal.Signals(-code).name}"
    sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} board process ended: {how}\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
