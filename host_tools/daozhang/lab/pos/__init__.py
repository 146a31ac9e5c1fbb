"""POS main-board simulator: realistic receipts over the terminal link (docs/terminal-link.md).

Usable as a library (`PosSimulator`, `Ledger`, `TerminalLink`) by tests and the fleet
simulation, and as the `daozhang pos` command.
"""

from daozhang.lab.pos.ledger import Ledger, LedgerEntry
from daozhang.lab.pos.link import LinkClosed, TerminalLink
from daozhang.lab.pos.simulator import PosSimulator
from daozhang.lab.pos.transactions import Merchant, TransactionSource

__all__ = [
    "Ledger",
    "LedgerEntry",
    "LinkClosed",
    "Merchant",
    "PosSimulator",
    "TerminalLink",
    "TransactionSource",
]
