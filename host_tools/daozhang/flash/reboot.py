"""Restarting the agent after a flash, a self-test or an inspection.

A registered backend that claims the port reboots it (`backends.py`; the lab's virtual board
power-cycles, running only what is on its flash). Any other port gets `machine.reset()` over
mpremote (a hard reset runs boot.py then main.py), then we wait until the port answers again.
The journal is power-cut safe by design, so a reset never loses a stored receipt.
"""

from __future__ import annotations

import os
import time

from daozhang.flash import backends
from daozhang.flash.link import DeviceError, Port

HARD_RESET = "machine.reset over mpremote"
_RESET_CODE = "import time, machine\ntime.sleep_ms(100)\nmachine.reset()"
_BACK_TIMEOUT_S = 30.0


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


def restart_agent(port: Port) -> str:
    """Reboot the device so the agent starts from its flash; returns how it was done."""
    backend = backends.claiming(port.port)
    if backend is None:
        _hard_reset(port)
        return HARD_RESET
    backend.restart(port)
    return backend.name
