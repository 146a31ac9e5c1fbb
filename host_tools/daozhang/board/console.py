"""The virtual board's serial console: a pseudo-terminal relay around one MicroPython process.

Two pseudo-terminals: the *console* one, whose path is published for mpremote (raw mode, like
a USB serial port), and the *board* one, the MicroPython process's controlling terminal (no
echo, no output processing, but Ctrl-C raises KeyboardInterrupt as on a real board). Output
nobody reads is dropped, as a UART drops it, so a board that logs never blocks on its console.
The relay exits when the MicroPython process does; killing that process is a power cut.
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
    attrs[3] &= ~(termios.ECHO | termios.ICANON)  # lflag: keep ISIG for Ctrl-C
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _spawn_board(argv: list[str], env: dict[str, str], log_path: Path) -> tuple[int, int]:
    board_master, board_slave = pty.openpty()
    _board_terminal_modes(board_slave)
    log = log_path.open("ab")

    def become_session_leader() -> None:
        os.setsid()
        # The pty becomes the controlling terminal, so Ctrl-C reaches MicroPython as SIGINT.
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
                        os.write(board_master, data)
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
    """`python -m daozhang.board.console STATE_DIR -- ARGV...` (started by `daozhang board`)."""
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
