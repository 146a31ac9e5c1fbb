"""Talking to a device over its serial port with the real `mpremote`.

Every call is one `mpremote connect PORT resume ...` process: `resume` keeps MicroPython from
soft-resetting (which on the unix port would end the process), and the raw REPL that mpremote
enters interrupts the running agent with Ctrl-C, as on a USB board. mpremote says "failed to
access PORT" for a missing port and for a busy one alike; we tell them apart first, so the
technician reads which it is.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daozhang.errors import DaozhangError
from daozhang.flash import backends


class DeviceError(DaozhangError):
    """A device-side problem, reported as one line naming the port."""


class NoDevice(DeviceError):
    pass


class PortBusy(DeviceError):
    pass


class NoAnswer(DeviceError):
    pass


class DeviceGone(DeviceError):
    """The port failed in the middle of a session: the device reset, lost power or was
    unplugged (on Linux a serial port whose device went away answers with EIO)."""


# What mpremote (pyserial) prints last when the port dies under it: CPython's words for EIO,
# not MicroPython's ("OSError: [Errno 5] EIO" is the device's own flash failing).
_GONE_MARKERS = ("Input/output error", "device disconnected")


def _port_busy(port: str) -> bool:
    """True if another program holds the port (pyserial's exclusive lock, as mpremote uses)."""
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        return exc.errno == errno.EBUSY
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class Port:
    """One serial port with MicroPython behind it."""

    def __init__(self, port: str, timeout_s: float = 60.0) -> None:
        self.port = port
        self.timeout_s = timeout_s

    def check_present(self) -> None:
        if not os.path.exists(self.port):
            raise NoDevice(f"{self.port}: no device on this port (check the cable and the name)")

    def mpremote(self, *args: str, timeout_s: float | None = None) -> str:
        self.check_present()
        argv = [sys.executable, "-m", "mpremote", "connect", self.port, "resume", *args]
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                timeout=timeout_s or self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NoAnswer(
                f"{self.port}: no MicroPython REPL answered within {exc.timeout:.0f} s (wrong "
                "port, a busy agent that ignores Ctrl-C, or no MicroPython: see the base image)"
            ) from exc
        out = result.stdout.decode(errors="replace")
        err = result.stderr.decode(errors="replace")
        if result.returncode != 0:
            raise self._error(out, err)
        return out

    def _error(self, out: str, err: str) -> DeviceError:
        text = (err.strip() or out.strip()).splitlines()
        last = text[-1] if text else "mpremote failed"
        if "failed to access" in last:
            if not os.path.exists(self.port):
                return NoDevice(f"{self.port}: no device on this port (check the cable and name)")
            if _port_busy(self.port):
                return PortBusy(
                    f"{self.port}: port busy: another program has it open "
                    "(close mpremote, screen, Thonny or the IDE using it)"
                )
            return NoDevice(f"{self.port}: cannot open the port: {last}")
        if any(marker in last for marker in _GONE_MARKERS):
            return self._gone(last)
        if "could not enter raw repl" in last:
            return NoAnswer(
                f"{self.port}: no MicroPython REPL answered (wrong port, or the device is "
                "not running MicroPython: flash the base image first)"
            )
        if last.startswith("MemoryError"):
            return DeviceError(
                f"{self.port}: the device ran out of RAM ({last}): the agent leaves too little "
                "heap for the REPL; on a virtual board give it more (--heap 256K)"
            )
        return DeviceError(f"{self.port}: {last}")

    def _gone(self, last: str) -> DeviceGone:
        message = (
            f"{self.port}: the device went away during the session (it reset, lost power or "
            f"was unplugged; mpremote: {last})"
        )
        ended = backends.how_it_ended(self.port)
        if ended is not None:
            message += f"; {ended}"
        return DeviceGone(message)

    def exec_json(self, code: str, marker: str, timeout_s: float | None = None) -> Any:
        """Run `code` on the device; it prints one line `MARKER <json>`."""
        out = self.mpremote("exec", code, timeout_s=timeout_s)
        for line in out.splitlines():
            if line.startswith(marker + " "):
                return json.loads(line[len(marker) + 1 :])
        tail = out.strip().splitlines()[-3:]
        raise DeviceError(f"{self.port}: unexpected answer from the device: {' | '.join(tail)}")

    def copy(self, pairs: Sequence[tuple[Path, str]], dirs: Sequence[str]) -> None:
        """Create `dirs`, then copy each local file to its device path, in one session."""
        args: list[str] = []
        for d in dirs:
            args += ["exec", f"import os\ntry:\n os.mkdir({d!r})\nexcept OSError:\n pass", "+"]
        for local, remote in pairs:
            args += ["fs", "cp", "-f", str(local), ":" + remote, "+"]
        if args:
            self.mpremote(*args[:-1])

    def remove(self, paths: Sequence[str]) -> None:
        """Remove files, then the folders below /lib they leave empty (a package or subpackage
        no longer shipped: MicroPython would still import an empty folder as a package)."""
        if paths:
            folders = {
                path.rsplit("/", depth)[0]
                for path in paths
                if path.startswith("/lib/")
                for depth in range(1, path.count("/") - 1)
            }
            deepest_first = sorted(folders, key=lambda f: f.count("/"), reverse=True)
            code = (
                f"import os\nfor p in {json.dumps(list(paths))}:\n"
                " try:\n  os.remove(p)\n except OSError:\n  pass\n"
                f"for d in {json.dumps(deepest_first)}:\n"
                " try:\n  os.rmdir(d)\n except OSError:\n  pass"  # kept if not empty
            )
            self.mpremote("exec", code)
