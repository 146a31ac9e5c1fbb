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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daozhang.alerts.alert import Verdict
from daozhang.alerts.silence import active_silences, silenced
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
    Migration(
        2,
        "silences",
        # `notified`: whether the firing message went out (0 while a silence held it back);
        # an alert fired before silences existed was told.
        """
CREATE TABLE alert_silences (
    id {id},
    rule TEXT,
    subject TEXT,
    ends_at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION
);
CREATE INDEX alert_silences_ends ON alert_silences (ends_at);
ALTER TABLE alert_state ADD COLUMN notified INTEGER NOT NULL DEFAULT 1
""",
    ),
    Migration(
        3,
        "severity",
        # The rules file's severity of a firing alert, as the runner judged it, for readers
        # without the rules file (the console); '' for alerts from before.
        "ALTER TABLE alert_state ADD COLUMN severity TEXT NOT NULL DEFAULT ''",
    ),
]


@dataclass(frozen=True)
class Transition:
    key: str
    event: str  # "firing" | "resolved"
    message: dict[str, Any]
    told: bool = True  # False: a silence held the message back (silence.py)


# Webhook name -> whom to mention there, for an alert of a rule (Rules.destinations).
Destinations = Callable[[str], dict[str, tuple[str, ...]]]


def apply(
    store: Store,
    verdict: Verdict,
    now: float,
    destinations: Destinations,
    severity: Callable[[str], str] | None = None,
) -> list[Transition]:
    """Record what changed since the last evaluation and queue one message per webhook the
    rule goes to. A silenced alert is recorded but not told; told once its silence ends while
    it still fires; its resolution is told only when its firing was. `severity` (the rules
    file's, Rules.severity) is written into each message for its title and the JSON body."""
    done: list[Transition] = []
    with store.transaction() as tx:
        if store.dialect == "postgresql":
            # Two runners on one store take turns: the second sees the first's transitions
            # and queues nothing again (SQLite's BEGIN IMMEDIATE already does this).
            tx.execute("SELECT pg_advisory_xact_lock(7427026)")
        silences = active_silences(tx, now)
        firing = {
            str(key): (str(rule), float(fired_at), str(zh), str(en), str(facts), bool(told))
            for key, rule, fired_at, zh, en, facts, told in tx.execute(
                "SELECT akey, rule, fired_at, zh, en, facts_json, notified FROM alert_state"
                " WHERE state = 'firing'"
            )
        }
        seen = set()
        for alert in verdict.firing:
            if alert.key in seen:
                continue
            seen.add(alert.key)
            facts = json.dumps(alert.facts, ensure_ascii=False, sort_keys=True, default=str)
            quiet = silenced(silences, alert.rule, alert.subject)
            level = severity(alert.rule) if severity is not None else ""
            if alert.key in firing:
                # Still firing: the text may have moved on (minutes silent); no message,
                # unless a silence kept its firing message back and has ended.
                told_before = firing[alert.key][5]
                tx.execute(
                    "UPDATE alert_state SET zh = ?, en = ?, facts_json = ?, notified = ?,"
                    " severity = ? WHERE akey = ?",
                    (alert.zh, alert.en, facts, int(told_before or not quiet), level, alert.key),
                )
                if not told_before and not quiet:
                    message = _message(
                        alert.rule,
                        alert.subject,
                        alert.zh,
                        alert.en,
                        alert.facts,
                        firing[alert.key][1],
                    )
                    done.append(Transition(alert.key, "firing", message))
                continue
            tx.execute("DELETE FROM alert_state WHERE akey = ?", (alert.key,))
            tx.execute(
                "INSERT INTO alert_state (akey, rule, subject, state, fired_at, zh, en,"
                " facts_json, notified, severity) VALUES (?, ?, ?, 'firing', ?, ?, ?, ?, ?, ?)",
                (
                    alert.key,
                    alert.rule,
                    alert.subject,
                    now,
                    alert.zh,
                    alert.en,
                    facts,
                    int(not quiet),
                    level,
                ),
            )
            message = _message(alert.rule, alert.subject, alert.zh, alert.en, alert.facts, now)
            done.append(Transition(alert.key, "firing", message, told=not quiet))
        for key, (rule, fired_at, zh, en, facts, told) in sorted(firing.items()):
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
            message = _message(rule, key.split(":", 1)[1], zh, en, json.loads(facts), fired_at)
            message["resolved_at"] = now
            done.append(Transition(key, "resolved", message, told=told))
        for transition in done:
            if not transition.told:
                continue
            if severity is not None:
                transition.message["severity"] = severity(str(transition.message["rule"]))
            for webhook, mention in destinations(str(transition.message["rule"])).items():
                message = (
                    {**transition.message, "mention": list(mention)}
                    if mention
                    else (transition.message)
                )
                tx.execute(
                    "INSERT INTO alert_outbox (akey, event, webhook, message_json, created_at,"
                    " next_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        transition.key,
                        transition.event,
                        webhook,
                        json.dumps(message, ensure_ascii=False, default=str),
                        now,
                        now,
                    ),
                )
    return done


def _message(
    rule: str, subject: str, zh: str, en: str, facts: dict[str, Any], fired_at: float
) -> dict[str, Any]:
    return {
        "rule": rule,
        "subject": subject,
        "zh": zh,
        "en": en,
        "facts": facts,
        "fired_at": fired_at,
    }


def firing_now(store: Store) -> list[tuple[str, float, str]]:
    """(key, fired at, Chinese text) of every alert firing, oldest first."""
    rows = store.query(
        "SELECT akey, fired_at, zh FROM alert_state WHERE state = 'firing' ORDER BY fired_at, akey"
    )
    return [(str(k), float(f), str(zh)) for k, f, zh in rows]


@dataclass(frozen=True)
class AlertRow:
    """One alert as the store keeps it, for a reader (the console's alerts page)."""

    key: str
    rule: str
    subject: str
    state: str  # "firing" | "resolved"
    fired_at: float
    resolved_at: float | None
    zh: str
    en: str
    severity: str  # '' when the runner that raised it knew no severity
    told: bool  # False while a silence held its firing message back


def alert_rows(store: Store, resolved_since: float) -> list[AlertRow]:
    """Every alert firing, and those resolved since `resolved_since`, newest first."""
    rows = store.query(
        "SELECT akey, rule, subject, state, fired_at, resolved_at, zh, en, severity, notified"
        " FROM alert_state WHERE state = 'firing' OR resolved_at >= ?"
        " ORDER BY fired_at DESC, akey",
        (resolved_since,),
    )
    out = []
    for k, rule, subj, state, fired, resolved, zh, en, sev, told in rows:
        ended = None if resolved is None else float(resolved)
        out.append(
            AlertRow(
                str(k),
                str(rule),
                str(subj),
                str(state),
                float(fired),
                ended,
                str(zh),
                str(en),
                str(sev),
                bool(told),
            )
        )
    return out
