"""Silences: alerts that fire and resolve as ever but tell no one, for a while and a reason.

Fleet staff silence what they already know about (a shop closed for the holiday, a cell the
carrier is repairing, an acquirer's announced maintenance): `daozhang alerts silence` with a
rule, a subject (device, cell, acquirer-day: the part after the colon of an alert's key) or
both, an end and a reason. Alerts keep their state under a silence (state.py); one still
firing when its silence ends is told then. A silence is ended early by `alerts unsilence`, and
kept afterwards: who silenced what, why and until when stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.store import Store, Transaction


@dataclass(frozen=True)
class Silence:
    id: int
    rule: str | None  # None: every rule
    subject: str | None  # None: every subject
    ends_at: float
    reason: str
    created_by: str
    created_at: float
    ended_at: float | None = None

    def covers(self, rule: str, subject: str) -> bool:
        return self.rule in (None, rule) and self.subject in (None, subject)

    def over(self, now: float) -> bool:
        return self.ended_at is not None or self.ends_at <= now


_COLUMNS = "id, rule, subject, ends_at, reason, created_by, created_at, ended_at"


def _silence(row: tuple[object, ...]) -> Silence:
    sid, rule, subject, ends_at, reason, by, created_at, ended_at = row
    return Silence(
        int(str(sid)),
        None if rule is None else str(rule),
        None if subject is None else str(subject),
        float(str(ends_at)),
        str(reason),
        str(by),
        float(str(created_at)),
        None if ended_at is None else float(str(ended_at)),
    )


def active_silences(tx: Transaction, now: float) -> list[Silence]:
    rows = tx.execute(
        f"SELECT {_COLUMNS} FROM alert_silences WHERE ends_at > ? AND ended_at IS NULL",
        (now,),
    )
    return [_silence(row) for row in rows]


def silenced(silences: list[Silence], rule: str, subject: str) -> Silence | None:
    for silence in silences:
        if silence.covers(rule, subject):
            return silence
    return None


def add_silence(
    store: Store,
    rule: str | None,
    subject: str | None,
    ends_at: float,
    reason: str,
    created_by: str,
    now: float,
) -> int:
    with store.transaction() as tx:
        rows = tx.execute(
            "INSERT INTO alert_silences (rule, subject, ends_at, reason, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (rule, subject, ends_at, reason, created_by, now),
        )
        return int(rows[0][0])


def end_silence(store: Store, silence_id: int, now: float) -> Silence | None:
    """Ends it now; None when there is no such silence. An ended one stays as it was."""
    with store.transaction() as tx:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM alert_silences WHERE id = ?", (silence_id,))
        if not rows:
            return None
        silence = _silence(rows[0])
        if not silence.over(now):
            tx.execute("UPDATE alert_silences SET ended_at = ? WHERE id = ?", (now, silence_id))
            silence = _silence((*rows[0][:-1], now))
        return silence


def list_silences(store: Store, now: float, include_over: bool = False) -> list[Silence]:
    rows = store.query(f"SELECT {_COLUMNS} FROM alert_silences ORDER BY id")
    silences = [_silence(row) for row in rows]
    return silences if include_over else [s for s in silences if not s.over(now)]
