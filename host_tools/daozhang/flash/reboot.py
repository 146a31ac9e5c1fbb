"""Restarting the agent after a flash, a self-test or an inspection.

Backends say which ports they handle; the first that claims a port reboots it:
- a virtual board's console (`<state>/boards/<name>/tty`, or the pty it points to): a power
  cycle through the board manager, now running only what is on its flash (no development
  mounts) with the agent autostarted: what unplugging a USB board does;
- any other port: `machine.reset()` over mpremote (a hard reset runs boot.py then main.py),
  then wait until the port answers again.
The journal is power-cut safe by design, so a reset never loses a stored receipt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from daozhang.board.manager import board_on_port
from daozhang.flash.link import DeviceError, Port

_RESET_CODE = "import time, machine\ntime.sleep_ms(100)\nmachine.reset()"
_BACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RebootBackend:
    name: str
    claims: Callable[[Port], bool]
    restart: Callable[[Port], None]


def _is_virtual(port: Port) -> bool:
    return board_on_port(port.port) is not None


def _power_cycle_virtual(port: Port) -> None:
    board = board_on_port(port.port)
    if board is None:
        raise DeviceError(f"{port.port}: the virtual board went away")
    tty = board.power_cycle(dev=False, autostart=True)
    # The console pty is new after a power cycle; the tty link keeps the name.
    if port.port != str(board.tty):
        port.port = str(tty)


def _hard_reset(port: Port) -> None:
    # Only wait for the port to come back (USB re-enumerates): talking to the REPL now would
    # interrupt the agent that has just started. The next mpremote call waits for the REPL.
    port.mpremote("exec", "--no-follow", _RESET_CODE)
    time.sleep(1.0)
    deadline = time.monotonic() + _BACK_TIMEOUT_S
    while not os.path.exists(port.port):
        if time.monotonic() > deadline:
            raise DeviceError(f"{port.port}: the device did not come back after its reset")
        time.sleep(0.5)


BACKENDS = [
    RebootBackend("virtual board power cycle", _is_virtual, _power_cycle_virtual),
    RebootBackend("machine.reset over mpremote", lambda port: True, _hard_reset),
]


def restart_agent(port: Port) -> str:
    """Reboot the device so the agent starts from its flash; returns the backend's name."""
    for backend in BACKENDS:
        if backend.claims(port):
            backend.restart(port)
            return backend.name
    raise DeviceError(f"{port.port}: no way to reboot this device")
