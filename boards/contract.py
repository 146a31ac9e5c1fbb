"""The board contract: what the portable core (firmware/) asks of a board adapter.

`boards/<board>/board.py` defines `class Board(BoardBase)`; firmware/dzcore/boardbase.py gives the
members marked "default" below, so a board writes the others and overrides a default only where
its hardware differs. `./run check` type-checks every board against `BoardContract` (the
assignment under TYPE_CHECKING at the bottom): a board that lacks a member, or takes other
arguments, fails there. firmware/README.md's board-contract table is tested against this file
(tests/firmware/test_board_contract.py). Never on a device: MicroPython has no `typing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol


class BoardContract(Protocol):
    name: str
    """The board's name, as in its board.json ("board")."""

    @property
    def connecting_errnos(self) -> tuple[int, ...]:
        """Default. The errnos a non-blocking connect() raises while it is under way."""

    def link_up(self) -> bool:
        """Whether the network link (Wi-Fi, data call, ...) is up; a session ends when not."""

    def link_why(self) -> str:
        """Short text saying why the link is down (journaled in `link_down`)."""

    def signal(self) -> dict[str, Any]:
        """The signal map of the `signal` diag record and the heartbeat (rat, rssi, csq, ...)."""

    def reset_cause(self) -> str:
        """Why the board last reset: power_on, watchdog, brownout, soft, crash or unknown."""

    def wall_time(self) -> tuple[int, str] | None:
        """(unix s, "ntp" or "modem") from the board's own time source, or None."""

    def resolve(self, host: str, port: int) -> Any:
        """The address to connect to (raises OSError: stage dns)."""

    def tcp_socket(self, addr: Any) -> Any:
        """A new TCP socket for addr (raises OSError: stage tcp)."""

    def wrap_tls(self, sock: Any, host: str, timeout_ms: int, creds: Any) -> Any:
        """The socket wrapped in TLS with tlscreds.Credentials, broker name checked; left
        non-blocking (raises OSError or ValueError: stage tls)."""

    def feed_watchdog(self) -> None:
        """Default. Called every second by the agent; starts the board's watchdog() first."""

    def spec(self) -> dict[str, Any]:
        """Default. The board's board.json ({} when there is none)."""

    def journal_dir(self) -> str:
        """Default. Where the journal lives on the flash."""

    def terminal_link(self) -> Any:
        """Default. The link to the POS main board (serve(handler)), or None."""

    def describe(self) -> dict[str, Any]:
        """Default. {board, link, signal, cause}, for the console and `device inspect`."""

    def rtc(self) -> int | None:
        """Default. A clock that keeps time by itself (unix s; None while it holds none, or no
        RTC at all): the agent's wall time between syncs then follows it, not uptime."""

    def console_interrupts(self) -> Any:
        """Default. None: the board's console interrupts running code itself (a real UART's
        Ctrl-C). Else a byte stream of the console that the agent watches, raising
        KeyboardInterrupt between its tasks at a Ctrl-C (the virtual board: boards/virtual)."""


if TYPE_CHECKING:
    # Checked by mypy once per board (tools/check.py puts that board's folder on the path).
    from board import Board

    def _holds_to_the_contract(board: Board) -> BoardContract:
        return board
