"""The ota component's tables: bundles offered, rollouts and each device's state in them
(DESIGN §1.6). A rollout lives here, so it survives a restart of the host that drives it."""

from __future__ import annotations

from daozhang.store.migrate import Migration

MIGRATIONS = [
    Migration(
        1,
        "rollouts",
        """
CREATE TABLE ota_bundles (
    id TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    board TEXT NOT NULL,
    data {blob} NOT NULL,
    added_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE ota_rollouts (
    id {id},
    bundle_id TEXT NOT NULL REFERENCES ota_bundles (id),
    cohorts TEXT NOT NULL,
    halt_pct DOUBLE PRECISION NOT NULL,
    cohort INTEGER NOT NULL,
    state TEXT NOT NULL,
    why TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE ota_targets (
    rollout_id BIGINT NOT NULL,
    dev TEXT NOT NULL,
    cohort INTEGER NOT NULL,
    state TEXT NOT NULL,
    fw TEXT,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (rollout_id, dev)
)
""",
    ),
    # Who drives a running rollout, and until when its hold lasts unless renewed
    # (rollout.drive): two rollout services on one store never drive the same rollout.
    Migration(
        2,
        "rollout drivers",
        """
ALTER TABLE ota_rollouts ADD COLUMN driver TEXT;
ALTER TABLE ota_rollouts ADD COLUMN driver_until DOUBLE PRECISION
""",
    ),
]
