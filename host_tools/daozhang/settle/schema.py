"""The settle component's tables: imported files, their rows, merchants, findings, the log.

Device tables (receipts, diag events, heartbeats, ...) belong to the collector ("core"); this
component only reads them. Amounts are integers in fen; dates are `YYYY-MM-DD` text in
Beijing time; times are unix seconds (UTC).
"""

from __future__ import annotations

from daozhang.settle.waiting import LOWER_WAITS
from daozhang.store.migrate import Migration

# v2 (issue 25): a file is known by its bytes *and* what it covers. Two acquirers' (or two
# days') empty detail files can be byte for byte the same header; with `sha256 UNIQUE` the
# second was "already imported" and its day never counted. SQLite cannot drop a UNIQUE
# constraint, so the table is rebuilt; ids are assigned anew in the old order and the rows
# that point at them follow by the old, unique sha256 (ids cited in the evidence of findings
# written before this migration may no longer point at the same file).
_V2 = """
CREATE TABLE settle_files_v2 (
    id {id},
    sha256 TEXT NOT NULL,
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
INSERT INTO settle_files_v2 (sha256, name, kind, format, encoding, acquirer, date_from,
    date_to, n_rows, imported_at)
    SELECT sha256, name, kind, format, encoding, acquirer, date_from, date_to, n_rows,
    imported_at FROM settle_files ORDER BY id;
UPDATE settle_detail SET file_id = (SELECT n.id FROM settle_files_v2 n JOIN settle_files o
    ON o.sha256 = n.sha256 WHERE o.id = settle_detail.file_id);
UPDATE payouts SET file_id = (SELECT n.id FROM settle_files_v2 n JOIN settle_files o
    ON o.sha256 = n.sha256 WHERE o.id = payouts.file_id);
UPDATE merchants SET file_id = (SELECT n.id FROM settle_files_v2 n JOIN settle_files o
    ON o.sha256 = n.sha256 WHERE o.id = merchants.file_id);
DROP TABLE settle_files;
ALTER TABLE settle_files_v2 RENAME TO settle_files;
CREATE INDEX settle_files_dates ON settle_files (kind, acquirer, date_from, date_to);
CREATE UNIQUE INDEX settle_files_identity ON settle_files
    (sha256, kind, acquirer, date_from, date_to)
"""

# v3 (DESIGN §2.3): QR and wallet sales carry no card RRN; their rows are found by the
# merchant's order number and the channel's transaction id, as receipts' `ord` and `xid`.
_V3 = """
ALTER TABLE settle_detail ADD COLUMN ord TEXT NOT NULL DEFAULT '';
ALTER TABLE settle_detail ADD COLUMN xid TEXT NOT NULL DEFAULT '';
CREATE INDEX settle_detail_ord ON settle_detail (ord);
CREATE INDEX settle_detail_xid ON settle_detail (xid)
"""

# v4 (DESIGN §2.3, issue 24): the acquirers' announced maintenance and upgrade windows
# (`settle notices import`), and the merchant's own settlement settings from the merchants
# file: delayed settlement (days), a reserve (rate of each payout, released on a date) and
# the terminal numbers registered for the merchant (space-separated; empty: not given).
_V4 = """
CREATE TABLE notices (
    id {id},
    acquirer TEXT NOT NULL,
    start_t BIGINT NOT NULL,
    end_t BIGINT NOT NULL,
    what TEXT NOT NULL,
    source TEXT NOT NULL,
    line BIGINT NOT NULL,
    imported_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX notices_identity ON notices (acquirer, start_t, end_t, what);
ALTER TABLE merchants ADD COLUMN delay_days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE merchants ADD COLUMN reserve_rate TEXT NOT NULL DEFAULT '0';
ALTER TABLE merchants ADD COLUMN reserve_release TEXT NOT NULL DEFAULT '';
ALTER TABLE merchants ADD COLUMN terminals TEXT NOT NULL DEFAULT ''
"""

# v5 (issue 24), `daozhang lookup` on rows no receipt claims: the slip's terminal and trace,
# a merchant's day, an amount around a time, and completions or voids naming an original;
# and the payouts a day's rows name, read from the index alone (a lookup checks that they were
# all imported).
_V5 = """
CREATE INDEX settle_detail_trace ON settle_detail (tid, trc);
CREATE INDEX settle_detail_day_payout ON settle_detail (settle_date, payout_id);
CREATE INDEX settle_detail_merchant_time ON settle_detail (mid, txn_time);
CREATE INDEX settle_detail_amount_time ON settle_detail (amt, txn_time);
CREATE INDEX settle_detail_orrn ON settle_detail (orrn) WHERE orrn <> ''
"""

# v6 (issue 24): `paid` once a row's payout is imported, and the receipts the rows prove paid
# lowered to `waits = 0` (settle/waiting.py): a sale waiting on its acquirer is then found by
# reading only the rows and receipts that may still wait. The order number and wallet id
# indexes keep only the rows that carry one (a card row's are ''): smaller, one index write
# fewer per card row imported, and a planner that counted millions of '' under one key no
# longer scans the table for `ord = ?` (queries say `ord <> ''` to use them).
_V6 = f"""
ALTER TABLE settle_detail ADD COLUMN paid INTEGER NOT NULL DEFAULT 0;
UPDATE settle_detail SET paid = 1 WHERE EXISTS
    (SELECT 1 FROM payouts p WHERE p.payout_id = settle_detail.payout_id);
CREATE INDEX settle_detail_unpaid ON settle_detail (mid, txn_time) WHERE paid = 0;
CREATE INDEX settle_detail_unpaid_day ON settle_detail (settle_date) WHERE paid = 0;
DROP INDEX settle_detail_ord;
DROP INDEX settle_detail_xid;
CREATE INDEX settle_detail_ord ON settle_detail (ord) WHERE ord <> '';
CREATE INDEX settle_detail_xid ON settle_detail (xid) WHERE xid <> '';
{LOWER_WAITS}
"""

# v7 (issue 25): two indexes no query needs, each one more B-tree written per imported row
# (a 1 GB file's import is its indexes: bench/settle_import.py). `(settle_date)` is the prefix
# of `(settle_date, payout_id)`; the natural key `(mid, tid, bat, trc)` is found through
# `(tid, trc)`, a terminal's trace naming about one row (the correlator's fallbacks name it,
# `INDEXED BY` on SQLite, whose planner without statistics ranged the merchant instead).
_V7 = """
DROP INDEX settle_detail_date;
DROP INDEX settle_detail_key
"""

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
    Migration(2, "file_identity", _V2),
    Migration(3, "wallet_keys", _V3),
    Migration(4, "notices_and_merchant_settings", _V4),
    Migration(5, "lookup_indexes", _V5),
    Migration(6, "paid_and_waiting", _V6),
    Migration(7, "fewer_detail_indexes", _V7),
]
