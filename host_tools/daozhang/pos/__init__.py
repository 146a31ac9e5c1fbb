"""POS main-board simulator: realistic receipts over the terminal link (docs/terminal-link.md).

Usable as a library (`PosSimulator`, `Ledger`, `TerminalLink`) by tests and the fleet
simulation, and as the `daozhang pos` command.
"""

from daozhang.pos.ledger import Ledger, LedgerEntry
from daozhang.pos.link import LinkClosed, TerminalLink
from daozhang.pos.simulator import PosSimulator
from daozhang.pos.transactions import Merchant, TransactionSource

__all__ = [
    "Ledger",
    "LedgerEntry",
    "LinkClosed",
    "Merchant",
    "PosSimulator",
    "TerminalLink",
    "TransactionSource",
]
