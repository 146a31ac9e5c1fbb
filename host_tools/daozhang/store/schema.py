"""Which components own tables, in the order their migrations apply."""

from __future__ import annotations

from daozhang.collector.tables import MIGRATIONS as CORE_MIGRATIONS
from daozhang.flash.registry import MIGRATIONS as FLASH_MIGRATIONS
from daozhang.settle.schema import MIGRATIONS as SETTLE_MIGRATIONS
from daozhang.store.migrate import Migration

# Each entry: (component name, its migrations). Components add themselves here.
COMPONENTS: list[tuple[str, list[Migration]]] = [
    ("core", CORE_MIGRATIONS),
    ("settle", SETTLE_MIGRATIONS),
    ("flash", FLASH_MIGRATIONS),
]
