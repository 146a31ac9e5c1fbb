"""The "console" store component: its users and the key that signs their session cookies.

The key lives in the database rather than in a file so that every console process on one
store signs and checks the same cookies, and a restart does not log everybody out.
"""

from __future__ import annotations

from daozhang.store.migrate import Migration

MIGRATIONS = [
    Migration(
        1,
        "users",
        """
CREATE TABLE console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    pw_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE console_secret (
    id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
)
""",
    ),
    # The fleet page sums each device's last day of heartbeats (`fleet_status`: reconnects,
    # uploads). Through (dev, t, id) every summed row is a table lookup, and heartbeats lie in
    # the table in arrival order, all devices interleaved: 37 s for 10,000 devices x one day
    # on SQLite (bench/console_bench.py). With the summed columns in the index it is one
    # range of the index per device: 2 s. Kept here, not in the core component, because the
    # console is what needs it; the collector pays one more index entry per heartbeat.
    Migration(
        2,
        "heartbeat_sums_index",
        """
CREATE INDEX heartbeats_sums ON heartbeats (dev, t, recon, sync_ok, sync_fail, received_at)
""",
    ),
]
