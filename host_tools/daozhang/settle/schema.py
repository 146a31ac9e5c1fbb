"""The settle component's tables: imported files, their rows, merchants, findings, the log.

Device tables (receipts, diag events, heartbeats, ...) belong to the collector ("core"); this
component only reads them. Amounts are integers in fen; dates are `YYYY-MM-DD` text in
Beijing time; times are unix seconds (UTC).
"""

from __future__ import annotations

from daozhang.store.migrate import Migration

MIGRATIONS = [
    Migration(
        1,
        "settlement_files",
        """
CREATE TABLE settle_files (
    id {id},
    sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    format TEXT NOT NULL,
    encoding TEXT NOT NULL,
    acquirer TEXT NOT NULL,
    date_from TEXT NULL,
    date_to TEXT NULL,
    n_rows BIGINT NOT NULL,
    imported_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX settle_files_dates ON settle_files (kind, acquirer, date_from, date_to);
CREATE TABLE settle_detail (
    file_id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    settle_date TEXT NOT NULL,
    mid TEXT NOT NULL,
    tid TEXT NOT NULL,
    txn_time BIGINT NOT NULL,
    typ TEXT NOT NULL,
    ch TEXT NOT NULL,
    bat TEXT NOT NULL,
    trc TEXT NOT NULL,
    rrn TEXT NOT NULL,
    orrn TEXT NOT NULL,
    pan TEXT NOT NULL,
    ck TEXT NOT NULL,
    amt BIGINT NOT NULL,
    fee BIGINT NOT NULL,
    settle_amt BIGINT NOT NULL,
    direction TEXT NOT NULL,
    settle_type TEXT NOT NULL,
    check_flag TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    PRIMARY KEY (file_id, line)
);
CREATE INDEX settle_detail_rrn ON settle_detail (rrn);
CREATE INDEX settle_detail_key ON settle_detail (mid, tid, bat, trc);
CREATE INDEX settle_detail_date ON settle_detail (settle_date);
CREATE TABLE payouts (
    file_id BIGINT NOT NULL,
    line BIGINT NOT NULL,
    payout_id TEXT NOT NULL,
    mid TEXT NOT NULL,
    settle_type TEXT NOT NULL,
    settle_date TEXT NOT NULL,
    plan_fen BIGINT NOT NULL,
    fee_fen BIGINT NOT NULL,
    suspend_fen BIGINT NOT NULL,
    retained_fen BIGINT NOT NULL,
    real_fen BIGINT NOT NULL,
    state TEXT NOT NULL,
    fail_reason TEXT NOT NULL,
    bank_account TEXT NOT NULL,
    PRIMARY KEY (file_id, line)
);
CREATE INDEX payouts_id ON payouts (payout_id);
CREATE TABLE merchants (
    mid TEXT PRIMARY KEY,
    acquirer TEXT NOT NULL,
    fee_rate TEXT NOT NULL,
    debit_cap_fen BIGINT NULL,
    d0_surcharge TEXT NOT NULL,
    settle_type TEXT NOT NULL,
    bank_account TEXT NOT NULL,
    status TEXT NOT NULL,
    file_id BIGINT NOT NULL
);
CREATE TABLE settle_import_log (
    id {id},
    at DOUBLE PRECISION NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE correlate_runs (
    id {id},
    as_of DOUBLE PRECISION NOT NULL,
    ran_at DOUBLE PRECISION NOT NULL,
    n_findings BIGINT NOT NULL
);
CREATE TABLE findings (
    run_id BIGINT NOT NULL,
    n BIGINT NOT NULL,
    kind TEXT NOT NULL,
    mid TEXT NOT NULL,
    tid TEXT NOT NULL,
    bat TEXT NOT NULL,
    trc TEXT NOT NULL,
    dev TEXT NOT NULL,
    rrn TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    data TEXT NOT NULL,
    body_json TEXT NOT NULL,
    PRIMARY KEY (run_id, n)
);
CREATE INDEX findings_rrn ON findings (rrn)
""",
    ),
]
