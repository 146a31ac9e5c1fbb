"""Alert state in the store: which alerts are firing, and the messages owed to each webhook.

One transaction per evaluation turns the verdict into transitions: an alert not firing
before fires (one message per webhook queued), a firing alert no longer true resolves (one
message queued); an alert still firing queues nothing, so there are no repeats, and because
both the state and the queue are in the store, none after a restart either; two runners on
one store take turns (and claim what they send, deliver.py), so they do not both send. Delivery
(`deliver.py`) takes messages from the queue (`alert_outbox`) in order and marks each sent,
retried later, or given up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from daozhang.alerts.alert import Verdict
from daozhang.store import Store
from daozhang.store.migrate import Migration

ALERTS_MIGRATIONS = [
    Migration(
        1,
        "alerts",
        """
CREATE TABLE alert_state (
    akey TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    fired_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    zh TEXT NOT NULL,
    en TEXT NOT NULL,
    facts_json TEXT NOT NULL
);
CREATE INDEX alert_state_state ON alert_state (state);
CREATE TABLE alert_outbox (
    id {id},
    akey TEXT NOT NULL,
    event TEXT NOT NULL,
    webhook TEXT NOT NULL,
    message_json TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    gave_up_at DOUBLE PRECISION,
    claimed_until DOUBLE PRECISION,
    last_error TEXT
);
CREATE INDEX alert_outbox_due ON alert_outbox (sent_at, gave_up_at, next_at)
""",
    ),
]


@dataclass(frozen=True)
class Transition:
    key: str
    event: str  # "firing" | "resolved"
    message: dict[str, Any]


def apply(store: Store, verdict: Verdict, now: float, webhooks: list[str]) -> list[Transition]:
    """Record what changed since the last evaluation and queue one message per webhook."""
    done: list[Transition] = []
    with store.transaction() as tx:
        if store.dialect == "postgresql":
            # Two runners on one store take turns: the second sees the first's transitions
            # and queues nothing again (SQLite's BEGIN IMMEDIATE already does this).
            tx.execute("SELECT pg_advisory_xact_lock(7427026)")
        firing = {
            str(key): (str(rule), float(fired_at), str(zh), str(en), str(facts))
            for key, rule, fired_at, zh, en, facts in tx.execute(
                "SELECT akey, rule, fired_at, zh, en, facts_json FROM alert_state"
                " WHERE state = 'firing'"
            )
        }
        seen = set()
        for alert in verdict.firing:
            if alert.key in seen:
                continue
            seen.add(alert.key)
            facts = json.dumps(alert.facts, ensure_ascii=False, sort_keys=True, default=str)
            if alert.key in firing:
                # Still firing: the text may have moved on (minutes silent); no message.
                tx.execute(
                    "UPDATE alert_state SET zh = ?, en = ?, facts_json = ? WHERE akey = ?",
                    (alert.zh, alert.en, facts, alert.key),
                )
                continue
            tx.execute("DELETE FROM alert_state WHERE akey = ?", (alert.key,))
            tx.execute(
                "INSERT INTO alert_state (akey, rule, subject, state, fired_at, zh, en,"
                " facts_json) VALUES (?, ?, ?, 'firing', ?, ?, ?, ?)",
                (alert.key, alert.rule, alert.subject, now, alert.zh, alert.en, facts),
            )
            message = {
                "rule": alert.rule,
                "subject": alert.subject,
                "zh": alert.zh,
                "en": alert.en,
                "facts": alert.facts,
                "fired_at": now,
            }
            done.append(Transition(alert.key, "firing", message))
        for key, (rule, fired_at, zh, en, facts) in sorted(firing.items()):
            if (
                key in seen
                or key in verdict.held
                or rule in verdict.unknown
                or rule in verdict.kept
            ):
                continue
            tx.execute(
                "UPDATE alert_state SET state = 'resolved', resolved_at = ? WHERE akey = ?",
                (now, key),
            )
            message = {
                "rule": rule,
                "subject": key.split(":", 1)[1],
                "zh": zh,
                "en": en,
                "facts": json.loads(facts),
                "fired_at": fired_at,
                "resolved_at": now,
            }
            done.append(Transition(key, "resolved", message))
        for transition in done:
            body = json.dumps(transition.message, ensure_ascii=False, default=str)
            for webhook in webhooks:
                tx.execute(
                    "INSERT INTO alert_outbox (akey, event, webhook, message_json, created_at,"
                    " next_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (transition.key, transition.event, webhook, body, now, now),
                )
    return done


def firing_now(store: Store) -> list[tuple[str, float, str]]:
    """(key, fired at, Chinese text) of every alert firing, oldest first."""
    rows = store.query(
        "SELECT akey, fired_at, zh FROM alert_state WHERE state = 'firing' ORDER BY fired_at, akey"
    )
    return [(str(k), float(f), str(zh)) for k, f, zh in rows]
