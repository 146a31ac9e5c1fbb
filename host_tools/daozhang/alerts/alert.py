"""What a rule says: an alert that is firing now, and the rules that could not say.

An alert's `key` (rule and subject: `silent_unsent:POS-0001`, `cell_down:46000-1234`) is what
the store keeps firing or resolved, so it must name the same thing from one evaluation to the
next. Its text is one line in Chinese and one in English, money in yuan, times in Beijing time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from daozhang.units import BEIJING


@dataclass(frozen=True)
class Alert:
    rule: str
    subject: str
    zh: str
    en: str
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"


@dataclass
class Verdict:
    """One evaluation: the alerts firing, and what must be left as it is.

    `held` keys are true but may not fire now (a silent device outside business hours):
    one already firing stays firing, none is raised. `unknown` rules could not be evaluated
    (the PKI folder unreadable): their alerts stay as they are, neither raised nor resolved.
    """

    firing: list[Alert] = field(default_factory=list)
    held: set[str] = field(default_factory=set)
    unknown: dict[str, str] = field(default_factory=dict)  # rule -> why
    kept: set[str] = field(default_factory=set)  # rules not due this round: left as they are

    def add(self, alert: Alert) -> None:
        self.firing.append(alert)


def beijing(unix_s: float) -> str:
    """`2026-12-07 16:05` in Beijing time."""
    return dt.datetime.fromtimestamp(unix_s, BEIJING).strftime("%Y-%m-%d %H:%M")


def minutes(seconds: float) -> str:
    """`95 分钟 / 95 min`-ready figure: whole minutes, at least 1 once anything has passed."""
    return str(max(1, round(seconds / 60)) if seconds > 0 else 0)
