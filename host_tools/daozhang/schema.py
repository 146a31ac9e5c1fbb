"""The product's tables: which components own them, in the order their migrations apply.

The store knows no component (it sits below them all); this list, above the components and
below the commands, is what the commands hand it when they open the database.
"""

from __future__ import annotations

from daozhang.alerts.state import ALERTS_MIGRATIONS
from daozhang.collector.tables import MIGRATIONS as CORE_MIGRATIONS
from daozhang.console.tables import MIGRATIONS as CONSOLE_MIGRATIONS
from daozhang.flash.registry import MIGRATIONS as FLASH_MIGRATIONS
from daozhang.ota.tables import MIGRATIONS as OTA_MIGRATIONS
from daozhang.remote.tables import MIGRATIONS as REMOTE_MIGRATIONS
from daozhang.settle.schema import MIGRATIONS as SETTLE_MIGRATIONS
from daozhang.store import Store, open_store
from daozhang.store.migrate import Component

COMPONENTS: list[Component] = [
    ("core", CORE_MIGRATIONS),
    ("settle", SETTLE_MIGRATIONS),
    ("flash", FLASH_MIGRATIONS),
    ("console", CONSOLE_MIGRATIONS),
    ("alerts", ALERTS_MIGRATIONS),
    ("remote", REMOTE_MIGRATIONS),
    ("ota", OTA_MIGRATIONS),
]


def open_database(url: str, migrate: bool = True, create: bool = True) -> Store:
    """Open the product's database, its schema brought up to date unless `migrate` is off.

    `create=False` for commands that only read or judge what is stored: a mistyped SQLite
    path is refused, never created empty (store/README.md lists who may create)."""
    return open_store(url, COMPONENTS if migrate else (), create=create)
