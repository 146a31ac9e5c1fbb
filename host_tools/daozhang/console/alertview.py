"""The alerts page: what `daozhang alerts run` has firing now (critical first), what resolved
in the last day, and the silences in force, with the same words as the group-bot messages
(alerts/message.py). Silencing from the page writes the same silences as `alerts silence`.

Reads are plain SELECTs outside any write transaction (`Store.query`).
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.alerts.message import RULE_NAMES, SEVERITY_WORDS
from daozhang.alerts.rules import RULES
from daozhang.alerts.silence import Silence, list_silences, silenced
from daozhang.alerts.state import alert_rows
from daozhang.console.words import beijing, duration
from daozhang.errors import UsageError
from daozhang.store import Store

RESOLVED_SHOWN_S = 86_400
_ORDER = {"critical": 0, "warning": 1, "info": 2, "": 3}
# How long a silence from the page lasts: the choices offered, in hours.
SILENCE_HOURS = (1, 4, 12, 24, 72, 168)


@dataclass(frozen=True)
class AlertLine:
    key: str
    rule: str  # 终端失联且有未上传交易 device silent with unsent receipts
    subject: str
    severity_code: str
    severity: str  # 严重 critical
    since: str
    lasted: str
    zh: str
    en: str
    silenced: str  # "至 2026-12-07 18:00（#3）" or ""


@dataclass(frozen=True)
class SilenceLine:
    id: int
    what: str
    until: str
    reason: str
    by: str


@dataclass(frozen=True)
class AlertsView:
    firing: list[AlertLine]
    resolved: list[AlertLine]
    silences: list[SilenceLine]
    rules: list[tuple[str, str]]  # (code, words) for the silence form


def rule_words(rule: str) -> str:
    zh, en = RULE_NAMES.get(rule, (rule, rule))
    return f"{zh} {en}"


def alerts_view(store: Store, now: float) -> AlertsView:
    silences = list_silences(store, now)
    firing: list[AlertLine] = []
    resolved: list[AlertLine] = []
    for row in alert_rows(store, now - RESOLVED_SHOWN_S):
        quiet = silenced(silences, row.rule, row.subject) if row.state == "firing" else None
        zh, en = SEVERITY_WORDS.get(row.severity, ("", ""))
        end = row.resolved_at if row.resolved_at is not None else now
        line = AlertLine(
            key=row.key,
            rule=rule_words(row.rule),
            subject=row.subject,
            severity_code=row.severity or "unknown",
            severity=f"{zh} {en}" if zh else "—",
            since=beijing(row.fired_at),
            lasted=duration(end - row.fired_at),
            zh=row.zh,
            en=row.en,
            silenced=f"至 until {beijing(quiet.ends_at)}（#{quiet.id}）" if quiet else "",
        )
        (firing if row.state == "firing" else resolved).append(line)
    firing.sort(key=lambda a: (_ORDER.get(a.severity_code, 3), a.since))
    return AlertsView(
        firing=firing,
        resolved=resolved,
        silences=[_silence_line(s) for s in silences],
        rules=[(r, rule_words(r)) for r in RULES],
    )


def _silence_line(s: Silence) -> SilenceLine:
    what = rule_words(s.rule) if s.rule else "全部告警 every alert"
    if s.subject:
        what += f"（{s.subject}）"
    return SilenceLine(s.id, what, beijing(s.ends_at), s.reason, s.created_by)


def silence_form(
    rule: str, subject: str, hours: str, reason: str
) -> tuple[str | None, str | None, float]:
    """The page's silence form checked as `alerts silence` checks its options: (rule or None,
    subject or None, seconds)."""
    if rule and rule not in RULES:
        raise UsageError(f"没有这条规则 no rule {rule!r}")
    if not rule and not subject.strip():
        raise UsageError("请选择规则或填写对象 choose a rule, a subject or both (not every alert)")
    if not reason.strip():
        raise UsageError("请写明原因 say why (the reason is kept with the silence)")
    try:
        span = int(hours)
    except ValueError:
        raise UsageError(f"时长无效 not a number of hours: {hours!r}") from None
    if span not in SILENCE_HOURS:
        raise UsageError(f"时长须为 hours must be one of {', '.join(map(str, SILENCE_HOURS))}")
    return (rule or None, subject.strip() or None, span * 3600.0)
