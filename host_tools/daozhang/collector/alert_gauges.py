"""The fleet-level gauges alert rules need, for `/metrics` (deploy/prometheus/daozhang.rules.yml).

Bounded cardinality: never a series per device, per cell or per merchant. Where a rule has a
threshold in time, the gauge comes in a few fixed steps (`over="15m"`), as histogram buckets
do; where it needs "the worst one", the gauge is the maximum over the fleet. Read at scrape
time from the store (every collector of a shared subscription reports the same truth), with
the same readings as `fleet status` and `daozhang alerts` (DESIGN §2.4): backlog, signal and
journal from each device's latest heartbeat, ages in event time; "silent" in host time.

Money gauges come from the latest `correlate` run's findings (the collector does not
correlate): unpaid by cause, and the most merchants unpaid on one acquirer-day.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from daozhang.collector.accounting import still_unsent
from daozhang.store import Store

# Fixed steps of the time thresholds (label `over`), in seconds.
SILENT_STEPS = {"5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
AGE_STEPS = {"15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
FILL_STEPS = {"0.5": 0.5, "0.8": 0.8, "0.9": 0.9}  # share of the journal's capacity
# A signal below these is poor (the alerts' defaults): RSRP on LTE; RSSI or CSQ in dBm.
POOR_RSRP_DBM = -115
POOR_RSSI_DBM = -95
# Causes correlation names (DESIGN §2.2, §2.3): the label's whole range.
CAUSES = (
    "network_reversed",
    "reversal_pending",
    "reversal_failed",
    "duplicate_charge_risk",
    "late_upload",
    "preauth_open",
    "timing",
    "file_missing",
    "account_problem",
    "risk_hold",
    "fee",
    "bank_delay",
    "settlement_delay",
    "acquirer_maintenance",
    "terminal_fault",
    "terminal_misconfigured",
    "acquirer_side",
    "unknown",
)


@dataclass(frozen=True)
class Gauge:
    name: str
    help: str
    samples: list[tuple[str, float]]  # (labels text, value)


def _poor(signal: object) -> bool:
    if not isinstance(signal, dict):
        return False
    if isinstance(signal.get("rsrp"), int):
        return bool(signal["rsrp"] < POOR_RSRP_DBM)
    if isinstance(signal.get("rssi"), int):
        return bool(signal["rssi"] < POOR_RSSI_DBM)
    csq = signal.get("csq")
    return isinstance(csq, int) and 0 <= csq <= 31 and -113 + 2 * csq < POOR_RSSI_DBM


def fleet_alert_gauges(store: Store, now: float) -> list[Gauge]:
    rows = store.query(
        "SELECT d.last_seen, h.jrec, h.next_seq, a.upto, h.jold_s, h.t, h.jbytes, h.body_json"
        " FROM devices d LEFT JOIN heartbeats h"
        " ON h.id = (SELECT MAX(id) FROM heartbeats WHERE dev = d.dev)"
        " LEFT JOIN ack_state a ON a.dev = h.dev AND a.epoch = h.epoch"
    )
    silent = dict.fromkeys(SILENT_STEPS, 0)
    silent_unsent = dict.fromkeys(SILENT_STEPS, 0)
    older = dict.fromkeys(AGE_STEPS, 0)
    full = dict.fromkeys(FILL_STEPS, 0)
    cells: dict[str, dict[str, int]] = {step: defaultdict(int) for step in SILENT_STEPS}
    oldest_max = 0.0
    journal_max = 0.0
    poor = 0
    for last_seen, jrec, next_seq, upto, jold_s, t, jbytes, body_json in rows:
        silent_s = None if last_seen is None else max(0.0, now - float(last_seen))
        unsent = still_unsent(jrec, next_seq, upto) or 0
        body = json.loads(body_json) if body_json else {}
        signal = body.get("sig") if isinstance(body, dict) else None
        cell = signal.get("cell") if isinstance(signal, dict) else None
        for step, bound in SILENT_STEPS.items():
            if silent_s is not None and silent_s > bound:
                silent[step] += 1
                silent_unsent[step] += unsent > 0
                if cell is not None:
                    cells[step][str(cell)] += 1
        if unsent and jold_s is not None:
            since = now - float(t) if t else (silent_s or 0.0)
            age = float(jold_s) + max(0.0, since)
            oldest_max = max(oldest_max, age)
            for step, bound in AGE_STEPS.items():
                older[step] += age > bound
            if jbytes and jrec:
                held = float(jbytes) * unsent / float(jrec)
                journal_max = max(journal_max, held)
                cap = body.get("jcap") if isinstance(body, dict) else None
                if isinstance(cap, int) and cap > 0:
                    for step, share in FILL_STEPS.items():
                        full[step] += held >= share * cap
        poor += _poor(signal)

    def steps(values: dict[str, int]) -> list[tuple[str, float]]:
        return [(f'{{over="{step}"}}', float(n)) for step, n in values.items()]

    return [
        Gauge(
            "dz_devices_silent",
            "devices not heard from for longer than `over` (host time)",
            steps(silent),
        ),
        Gauge(
            "dz_devices_silent_unsent",
            "devices silent for longer than `over` whose latest heartbeat held records not stored",
            steps(silent_unsent),
        ),
        Gauge(
            "dz_devices_unsent_older",
            "devices whose oldest unsent record is older than `over` (event time)",
            steps(older),
        ),
        Gauge(
            "dz_unsent_oldest_seconds",
            "age of the oldest record any device holds unsent (event time; 0: none)",
            [("", oldest_max)],
        ),
        Gauge(
            "dz_journal_unsent_bytes_max",
            "the most journal bytes any device holds unsent (compare with the board's budget)",
            [("", journal_max)],
        ),
        Gauge(
            "dz_devices_journal_full",
            "devices whose unsent journal bytes reach `over` of its capacity (heartbeat jcap)",
            [(f'{{over="{step}"}}', float(n)) for step, n in full.items()],
        ),
        Gauge(
            "dz_devices_signal_poor",
            f"devices whose latest signal is poor (RSRP < {POOR_RSRP_DBM} dBm, RSSI or CSQ "
            f"< {POOR_RSSI_DBM} dBm)",
            [("", float(poor))],
        ),
        Gauge(
            "dz_cell_devices_silent_max",
            "the most devices of one cell silent for longer than `over` at once",
            [
                (f'{{over="{step}"}}', float(max(counts.values(), default=0)))
                for step, counts in cells.items()
            ],
        ),
    ]


def money_gauges(store: Store, now: float) -> list[Gauge]:
    # The latest complete run: one still being recorded says n_findings = -1 (engine.py).
    runs = store.query(
        "SELECT id, as_of FROM correlate_runs WHERE n_findings >= 0 ORDER BY id DESC LIMIT 1"
    )
    unpaid = dict.fromkeys(CAUSES, 0)
    days: dict[tuple[str, str], set[str]] = defaultdict(set)
    age = 0.0
    if runs:
        run_id, as_of = runs[0]
        age = max(0.0, now - float(as_of))
        rows = store.query(
            "SELECT f.cause, f.mid, f.body_json, m.acquirer FROM findings f"
            " LEFT JOIN merchants m ON m.mid = f.mid"
            " WHERE f.run_id = ? AND f.status = 'gap' AND f.kind = 'transaction'",
            (run_id,),
        )
        for cause, mid, body_json, acquirer in rows:
            body = json.loads(body_json)
            fen = int(body.get("short_fen") or body.get("amount_fen") or 0)
            key = str(cause) if cause in unpaid else "unknown"
            unpaid[key] += fen
            if cause == "acquirer_side":
                days[(str(acquirer or ""), str(body.get("expected_date")))].add(str(mid))
    return [
        Gauge(
            "dz_unpaid_yuan",
            "money due and not paid, by cause, as of the latest correlate run (yuan)",
            [(f'{{cause="{c}"}}', fen / 100) for c, fen in unpaid.items()],
        ),
        Gauge(
            "dz_acquirer_day_unpaid_merchants_max",
            "the most merchants unpaid on one acquirer-day with healthy terminals "
            "(acquirer_side), latest correlate run",
            [("", float(max((len(m) for m in days.values()), default=0)))],
        ),
        Gauge(
            "dz_correlate_age_seconds",
            "seconds since the as-of time of the latest correlate run (0: none yet)",
            [("", age)],
        ),
    ]
