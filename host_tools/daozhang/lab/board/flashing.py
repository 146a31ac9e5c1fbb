"""The virtual board as a device backend for flashing (registered in pyproject.toml under
`daozhang.device_backends`; see `daozhang.flash.backends`).

Rebooting a virtual board is a power cycle through its manager that runs only what is on its
flash (no development mounts), with the agent autostarted: what unplugging a USB board does.
"""

from __future__ import annotations

from daozhang.flash.link import DeviceError, Port
from daozhang.lab.board.manager import board_of_console_link, board_on_port


class VirtualBoardBackend:
    name = "virtual board power cycle"

    def claims(self, port: str) -> bool:
        return board_on_port(port) is not None

    def restart(self, port: Port) -> None:
        board = board_on_port(port.port)
        if board is None:
            raise DeviceError(f"{port.port}: the virtual board went away")
        tty = board.power_cycle(dev=False, autostart=True)
        # The console pty is new after a power cycle; the tty link keeps the name.
        if port.port != str(board.tty):
            port.port = str(tty)

    def how_it_ended(self, port: str) -> str | None:
        board = board_of_console_link(port)
        if board is None or (ended := board.how_it_ended()) is None:
            return None
        return f"virtual board {board.name!r}: {ended}"


BACKEND = VirtualBoardBackend()
