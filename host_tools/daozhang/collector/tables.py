"""The "core" store component: what the collector writes and everyone downstream reads.

Interface C (agreed between branches) fixes the tables and columns listed there; the extra
columns and tables here serve the collector's own bookkeeping:
- `ack_state`: per (dev, epoch) the contiguous `upto`, the highest seq accounted for, and the
  last known clock reference used to place records whose device clock was unknown (`t = 0`);
- `declared_gaps`: seq ranges a device declared lost (they count as accounted for);
- `device_terminals`: which merchant/terminal ids each device served, and when;
- `status_events`: the online/offline timeline (device status messages and LWTs).
Merchants belong to the settlement component (their columns come from the acquirer's file).
"""

from __future__ import annotations

from daozhang.contract import may_wait_sql
from daozhang.store.migrate import Migration

_RECEIPT_COLUMNS = """
    mid TEXT NOT NULL, tid TEXT NOT NULL, bat TEXT NOT NULL, trc TEXT NOT NULL,
    dev TEXT NOT NULL, epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    typ TEXT NOT NULL, ch TEXT NOT NULL, amt BIGINT NOT NULL, cur TEXT NOT NULL,
    pan TEXT, ck TEXT, ent TEXT, lt BIGINT, st TEXT NOT NULL, rc TEXT, rrn TEXT, auth TEXT,
    rv TEXT, sd TEXT, sm TEXT, otrc TEXT, orrn TEXT,
    t BIGINT NOT NULL, placed_t BIGINT, received_at DOUBLE PRECISION NOT NULL"""

_CORE_V1 = f"""
CREATE TABLE devices (
    dev TEXT PRIMARY KEY,
    hmac_key {{blob}},
    first_seen DOUBLE PRECISION,
    last_seen DOUBLE PRECISION,
    online INTEGER NOT NULL DEFAULT 0,
    status_at DOUBLE PRECISION,
    mid TEXT,
    tid TEXT,
    key_added_at DOUBLE PRECISION,
    note TEXT
);
CREATE TABLE device_terminals (
    dev TEXT NOT NULL, mid TEXT NOT NULL, tid TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev, mid, tid)
);
CREATE TABLE records (
    dev TEXT NOT NULL, epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    kind TEXT NOT NULL, t BIGINT NOT NULL, boot BIGINT NOT NULL, up BIGINT NOT NULL,
    placed_t BIGINT,
    body_json TEXT NOT NULL,
    raw {{blob}} NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev, epoch, seq)
);
CREATE INDEX records_unplaced ON records (dev, epoch, boot) WHERE placed_t IS NULL;
CREATE TABLE receipts ({_RECEIPT_COLUMNS},
    PRIMARY KEY (mid, tid, bat, trc)
);
CREATE INDEX receipts_rrn ON receipts (rrn);
CREATE INDEX receipts_unplaced ON receipts (dev, epoch) WHERE placed_t IS NULL;
CREATE TABLE receipt_history ({_RECEIPT_COLUMNS},
    PRIMARY KEY (dev, epoch, seq)
);
CREATE INDEX receipt_history_key ON receipt_history (mid, tid, bat, trc);
CREATE TABLE diag_events (
    dev TEXT NOT NULL, epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    boot BIGINT NOT NULL, up BIGINT NOT NULL, t BIGINT NOT NULL, placed_t BIGINT,
    ev TEXT NOT NULL, body_json TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev, epoch, seq)
);
CREATE INDEX diag_events_ev ON diag_events (ev, dev);
CREATE TABLE heartbeats (
    id {{id}},
    dev TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    t BIGINT, epoch BIGINT, boot BIGINT, up BIGINT, fw TEXT, cause TEXT, heap BIGINT,
    link TEXT, jrec BIGINT, jbytes BIGINT, jold_s BIGINT, next_seq BIGINT, ovf BIGINT,
    recon BIGINT, sync_ok BIGINT, sync_fail BIGINT, conn_ms BIGINT, exp_ms BIGINT,
    body_json TEXT NOT NULL
);
CREATE INDEX heartbeats_dev ON heartbeats (dev, received_at);
CREATE TABLE status_events (
    id {{id}},
    dev TEXT NOT NULL, status TEXT NOT NULL, retained INTEGER NOT NULL,
    received_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX status_events_dev ON status_events (dev, received_at);
CREATE TABLE uploads (
    id {{id}},
    dev TEXT NOT NULL, epoch BIGINT NOT NULL,
    seq_from BIGINT, seq_to BIGINT, n_records BIGINT NOT NULL,
    n_new BIGINT NOT NULL, n_dup BIGINT NOT NULL, n_quarantined BIGINT NOT NULL,
    gaps_json TEXT,
    received_at DOUBLE PRECISION NOT NULL, collector TEXT NOT NULL
);
CREATE INDEX uploads_dev ON uploads (dev, epoch, received_at);
CREATE TABLE quarantine (
    id {{id}},
    dev TEXT, topic TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
    epoch BIGINT, seq BIGINT,
    raw {{blob}} NOT NULL,
    digest TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL,
    repeats BIGINT NOT NULL DEFAULT 1,
    collector TEXT NOT NULL
);
CREATE UNIQUE INDEX quarantine_digest ON quarantine (digest);
CREATE INDEX quarantine_seq ON quarantine (dev, epoch, seq);
CREATE TABLE declared_gaps (
    dev TEXT NOT NULL, epoch BIGINT NOT NULL, seq_from BIGINT NOT NULL, seq_to BIGINT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev, epoch, seq_from, seq_to)
);
CREATE TABLE ack_state (
    dev TEXT NOT NULL, epoch BIGINT NOT NULL,
    upto BIGINT NOT NULL,
    max_seen BIGINT NOT NULL,
    unplaced BIGINT NOT NULL DEFAULT 0,
    ref_boot BIGINT, ref_t BIGINT, ref_up BIGINT,
    first_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dev, epoch)
)
"""

# v2, for ingest speed (issue 5): every receipt state is already in `records.raw`, exactly as
# the device sent it, so `receipt_history` (the same rows again, 27 columns each, read by
# nothing) and `records.body_json` (a JSON copy of the raw CBOR) are dropped. What needs a
# record's fields decodes `raw`; `receipts` and `diag_events` keep their columns.
_CORE_V2 = """
DROP TABLE receipt_history;
ALTER TABLE records DROP COLUMN body_json
"""

# v3, for the fleet readers: each device's latest heartbeat is `MAX(id) WHERE dev = ?`, which
# (dev, received_at) cannot answer without walking all of that device's heartbeats (the
# Prometheus scrape did that once per heartbeat row: 58 s for 300 devices x 1,000 heartbeats);
# (dev, id) answers it in one index probe.
_CORE_V3 = """
CREATE INDEX heartbeats_latest ON heartbeats (dev, id)
"""

# v4, the fast ack path (collector/inbox.py): an upload acked before its records are stored
# is kept whole here, MAC stripped, until `project` stores them and deletes the row.
_CORE_V4 = """
CREATE TABLE inbox (
    id {id},
    dev TEXT NOT NULL, epoch BIGINT NOT NULL, seq_from BIGINT NOT NULL, seq_to BIGINT NOT NULL,
    body {blob} NOT NULL,
    received_at DOUBLE PRECISION NOT NULL, collector TEXT NOT NULL
);
CREATE INDEX inbox_dev ON inbox (dev, id)
"""

# v5, event time (DESIGN §2.3): readers place a device's heartbeats by the terminal's clock
# `t`, not by arrival: its latest heartbeat is the one with the highest `t` (then id), and
# correlation reads a window of `t`.
_CORE_V5 = """
CREATE INDEX heartbeats_event ON heartbeats (dev, t, id)
"""

# v6, a terminal owns its receipts (DESIGN §2.3): a natural key first reported by one device
# is that device's; another device's receipt with that key is a `conflict` unless an operator
# moved the terminal to it (`daozhang device move-terminal`), which this table remembers.
_CORE_V6 = """
CREATE TABLE terminal_moves (
    id {id},
    mid TEXT NOT NULL, tid TEXT NOT NULL, from_dev TEXT, to_dev TEXT NOT NULL,
    moved_at DOUBLE PRECISION NOT NULL, note TEXT
);
CREATE INDEX terminal_moves_terminal ON terminal_moves (mid, tid, id)
"""

# A keyed device's status carries its journal epoch, boot and session count (signed), so
# that a recorded `online` / `offline` replayed later is told from a new one.
_CORE_V7 = """
ALTER TABLE status_events ADD COLUMN epoch BIGINT;
ALTER TABLE status_events ADD COLUMN boot BIGINT;
ALTER TABLE status_events ADD COLUMN session BIGINT;
CREATE INDEX status_events_counter ON status_events (dev, epoch, id)
"""

# v8, receipt keys for QR and wallet sales (DESIGN §2.3): the merchant's order number and the
# channel's transaction id join a receipt without an RRN to the acquirer's row.
_CORE_V8 = """
ALTER TABLE receipts ADD COLUMN ord TEXT;
ALTER TABLE receipts ADD COLUMN xid TEXT;
CREATE INDEX receipts_ord ON receipts (ord);
CREATE INDEX receipts_xid ON receipts (xid)
"""

# v9, `daozhang lookup` by what the caller has (issue 24; IF NOT EXISTS: a store built while
# this was numbered 7 or 8 on its branch already has them): the slip's terminal and trace, a
# merchant's day, an amount around a time, each answered by one index range; voids and
# completions name their original (`otrc`/`orrn`: partial, only the few receipts that carry
# them); and the device that serves a terminal, for a settlement row no receipt claims.
_CORE_V9 = """
CREATE INDEX IF NOT EXISTS receipts_trace ON receipts (tid, trc);
CREATE INDEX IF NOT EXISTS receipts_merchant_time ON receipts (mid, lt);
CREATE INDEX IF NOT EXISTS receipts_amount_time ON receipts (amt, lt);
CREATE INDEX IF NOT EXISTS receipts_orrn ON receipts (orrn) WHERE orrn IS NOT NULL;
CREATE INDEX IF NOT EXISTS receipts_otrc ON receipts (mid, tid, otrc) WHERE otrc IS NOT NULL;
CREATE INDEX IF NOT EXISTS device_terminals_terminal ON device_terminals (mid, tid)
"""

# v10, lookup of a sale waiting on its acquirer (issue 24): `waits` is 0 only for a receipt
# that cannot be waiting for its payout, so the acquirer-day read (correlate/acquirer_day.py)
# reads only the 1s, through the partial indexes, instead of every sale of the days due. The
# collector sets it from the receipt's own fields (contract.may_wait: a declined sale never
# waits); the settlement importer lowers it to 0 once the acquirer's rows show the money paid
# (settle/waiting.py). A 1 that should be 0 costs a row read; a 0 is only ever written when
# it is sure, so the lookup's answer is the whole-store run's (tests/lookup). The order number
# and wallet id indexes hold only the receipts that carry one (card sales have none): once
# ANALYZE had counted ten million NULLs under one key, SQLite scanned the table for `ord = ?`.
_CORE_V10 = f"""
ALTER TABLE receipts ADD COLUMN waits INTEGER NOT NULL DEFAULT 1;
UPDATE receipts SET waits = 0 WHERE {may_wait_sql("typ", "st", "rrn")} = 0;
CREATE INDEX receipts_waiting ON receipts (mid, lt) WHERE waits = 1;
CREATE INDEX receipts_waiting_untimed ON receipts (mid, t) WHERE waits = 1 AND lt IS NULL;
DROP INDEX receipts_ord;
DROP INDEX receipts_xid;
CREATE INDEX receipts_ord ON receipts (ord) WHERE ord IS NOT NULL;
CREATE INDEX receipts_xid ON receipts (xid) WHERE xid IS NOT NULL
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "collector_tables", _CORE_V1),
    Migration(2, "lean_records", _CORE_V2),
    Migration(3, "heartbeat_indexes", _CORE_V3),
    Migration(4, "inbox", _CORE_V4),
    Migration(5, "heartbeat_event_time", _CORE_V5),
    Migration(6, "terminal_moves", _CORE_V6),
    Migration(7, "signed_status", _CORE_V7),
    Migration(8, "receipt_ids", _CORE_V8),
    Migration(9, "lookup_indexes", _CORE_V9),
    Migration(10, "receipt_waits", _CORE_V10),
]
