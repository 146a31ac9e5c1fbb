"""The remote component's tables: the per-device command counter (DESIGN §1.5)."""

from __future__ import annotations

from daozhang.store.migrate import Migration

MIGRATIONS = [
    Migration(
        1,
        "remote_counters",
        """
CREATE TABLE remote_counters (
    dev TEXT PRIMARY KEY,
    last_n BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
""",
    ),
]
