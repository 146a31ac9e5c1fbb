"""The rules file: which alerts are on, their thresholds, business hours and where messages go.

TOML (`daozhang alerts run --rules FILE.toml`), read at start and again when it changes
(`RulesFile`: a changed file that is wrong is refused and the rules in force stay). A rule
whose table is absent is off; a table present with no keys takes the defaults below. Anything
the file gets wrong (an unknown rule or key, a value of the wrong type or out of range, a
webhook kind we do not know) is refused with the file and the key, before anything is evaluated.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daozhang.errors import InputError

WEBHOOK_KINDS = ("wecom", "dingtalk", "feishu", "json")

# rule -> {key: (default, low, high)}; every threshold is a number.
RULES: dict[str, dict[str, tuple[float, float, float]]] = {
    # A device not heard from for `minutes`, in business hours, with unsent records on it.
    "silent_unsent": {"minutes": (15, 0.1, 10_080)},
    # The oldest record a device holds unsent is older than `minutes` (event time).
    "oldest_unsent": {"minutes": (60, 0.1, 43_200)},
    # The journal's bytes at or past `percent` of its capacity: the heartbeat's `jcap`, or
    # `capacity_bytes` for firmware that does not send it (the virtual board's: 75% of 4 MiB).
    "journal_full": {"percent": (80, 1, 100), "capacity_bytes": (3_145_728, 4096, 2**40)},
    # Signal below the floor for `minutes` (RSRP on LTE; RSSI or CSQ in dBm otherwise).
    "signal_poor": {
        "minutes": (30, 0.1, 10_080),
        "rsrp_dbm": (-115, -160, 0),
        "rssi_dbm": (-95, -130, 0),
    },
    # At least `terminals` devices of one cell silent for `minutes` at once.
    "cell_down": {"terminals": (5, 2, 1_000_000), "minutes": (10, 0.1, 10_080)},
    # At least `count` refused messages in the last `minutes` across the fleet.
    "quarantine_spike": {"count": (50, 1, 2**40), "minutes": (15, 0.1, 10_080)},
    # Unpaid money correlation cannot explain (cause `unknown`) at or past `yuan`.
    "unexplained_unpaid": {"yuan": (1000, 0.01, 1e12)},
    # One acquirer and settle day with at least `merchants` merchants unpaid
    # (cause `acquirer_side`).
    "acquirer_day_unpaid": {"merchants": (3, 1, 1_000_000)},
    # A certificate or the CRL of the PKI in `dir` missing, expired or within `days`.
    "pki_expiry": {"days": (14, 0, 3650)},
    # The newest update rollout halted (by its failures or by hand), no newer one begun.
    "rollout_halted": {},
    # A running rollout with no change of its own or of any device for `hours`.
    "rollout_stalled": {"hours": (6, 0.1, 720)},
}
RULE_TEXT_KEYS = {"pki_expiry": ("dir",)}

# How urgent a rule's alert is: a rule's `severity` key, else this. Routes may take only some
# severities (the on-call group gets `critical`, the daily group the rest). Critical: money is
# being lost or cannot be told now (a terminal silent with sales on it, a cell or an
# acquirer-day down); warning: will be if left; info: worth a look.
SEVERITIES = ("critical", "warning", "info")
DEFAULT_SEVERITY = {
    "silent_unsent": "critical",
    "cell_down": "critical",
    "acquirer_day_unpaid": "critical",
    "oldest_unsent": "warning",
    "journal_full": "warning",
    "quarantine_spike": "warning",
    "unexplained_unpaid": "warning",
    "pki_expiry": "warning",
    "rollout_halted": "warning",
    "rollout_stalled": "warning",
    "signal_poor": "info",
}


@dataclass(frozen=True)
class BusinessHours:
    """Beijing time; `days` are ISO weekdays (1 Monday .. 7 Sunday); start == end: all day."""

    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(22, 0)
    days: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)

    def contains(self, moment: dt.datetime) -> bool:
        clock = moment.time()
        if moment.isoweekday() not in self.days:
            return False
        if self.start == self.end:
            return True  # the whole day
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end  # past midnight: 20:00-02:00


@dataclass(frozen=True)
class Webhook:
    kind: str
    url: str
    secret: str = ""  # DingTalk and Feishu signing ("加签" / "签名校验")
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.kind


# Whom a message @-mentions: "all" (everyone in the group), a mobile number (WeCom and DingTalk
# mention by mobile) or a Feishu open_id ("ou_..."; Feishu mentions by user id only). Each bot
# takes the kinds it understands (message.py).
MENTION = re.compile(r"all|1\d{10}|ou_[0-9A-Za-z_-]{4,64}")


@dataclass(frozen=True)
class Route:
    """[[routes]]: alerts of `rules` (all rules when empty) and of `severity` (all when
    empty) go to `webhooks`, mentioning `mention` there."""

    webhooks: tuple[str, ...]
    rules: tuple[str, ...] = ()
    mention: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rules:
    rules: dict[str, dict[str, Any]]
    hours: BusinessHours = field(default_factory=BusinessHours)
    webhooks: tuple[Webhook, ...] = ()
    routes: tuple[Route, ...] = ()  # none: every webhook gets every alert, mentioning no one
    timeout_s: float = 5.0  # per webhook request
    attempts: int = 8  # then the message is given up (logged), never retried for ever
    # The money rules run `correlate` over the whole store (seconds at a million receipts):
    # at most this often; between, their alerts stay as they are.
    money_every_s: float = 900.0

    def on(self, rule: str) -> bool:
        return rule in self.rules

    def get(self, rule: str, key: str) -> Any:
        return self.rules[rule][key]

    def severity(self, rule: str) -> str:
        """The rule's `severity`, else its default; a rule the file no longer names (an alert
        still firing from before a reload) keeps its default."""
        chosen = self.rules.get(rule, {}).get("severity")
        return str(chosen) if chosen else DEFAULT_SEVERITY.get(rule, "warning")

    def destinations(self, rule: str) -> dict[str, tuple[str, ...]]:
        """Webhook name -> whom to mention there, for an alert of `rule`: every route that
        takes the rule and its severity adds its webhooks and mentions."""
        if not self.routes:
            return {hook.label: () for hook in self.webhooks}
        out: dict[str, tuple[str, ...]] = {}
        severity = self.severity(rule)
        for route in self.routes:
            if route.rules and rule not in route.rules:
                continue
            if route.severity and severity not in route.severity:
                continue
            for label in route.webhooks:
                out[label] = tuple(dict.fromkeys(out.get(label, ()) + route.mention))
        return out


class RulesFile:
    """The rules file as a runner uses it: read again, between rounds, when it has changed
    (size or modification time), as Prometheus and Alertmanager reread theirs. A changed file
    that is wrong is said once and the rules in force stay, so a typo on a running system
    never switches alerting off."""

    def __init__(self, path: Path, say: Callable[[str], object]) -> None:
        self.path = path
        self._say = say
        self._seen = self._stamp()
        self._rules = load(path)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Rules:
        stamp = self._stamp()
        if stamp == self._seen:
            return self._rules
        self._seen = stamp
        try:
            self._rules = load(self.path)
        except InputError as exc:
            self._say(f"daozhang: alerts: the rules file changed and is refused; the rules"
                      f" in force stay: {exc}")  # fmt: skip
        else:
            self._say(f"alerts: rules reloaded from {self.path}: {len(self._rules.rules)}"
                      f" rule(s), {len(self._rules.webhooks)} webhook(s)")  # fmt: skip
        return self._rules


def load(path: Path) -> Rules:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the rules file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML file ({exc})") from None
    return parse(doc, str(path))


def parse(doc: dict[str, Any], where: str = "rules") -> Rules:
    unknown = set(doc) - {"rules", "business_hours", "webhooks", "routes", "delivery", "money"}
    if unknown:
        raise InputError(f"{where}: unknown table(s) {', '.join(sorted(unknown))}")
    rules: dict[str, dict[str, Any]] = {}
    for name, table in _table(doc, "rules", where).items():
        if name not in RULES:
            raise InputError(f"{where}: [rules.{name}] is not a rule (known: {', '.join(RULES)})")
        if not isinstance(table, dict):
            raise InputError(f"{where}: [rules.{name}] must be a table")
        rules[name] = _rule(name, table, f"{where}: [rules.{name}]")
    delivery = _table(doc, "delivery", where)
    extra = set(delivery) - {"timeout_s", "attempts"}
    if extra:
        raise InputError(f"{where}: [delivery] unknown key(s) {', '.join(sorted(extra))}")
    timeout_s = _number(delivery.get("timeout_s", 5.0), 0.1, 120, f"{where}: delivery.timeout_s")
    attempts = _number(delivery.get("attempts", 8), 1, 100, f"{where}: delivery.attempts")
    money = _table(doc, "money", where)
    if set(money) - {"every_minutes"}:
        raise InputError(f"{where}: [money] unknown key(s) {', '.join(sorted(set(money)))}")
    money_every = _number(
        money.get("every_minutes", 15), 0.1, 1440, f"{where}: money.every_minutes"
    )
    webhooks = tuple(_webhooks(doc.get("webhooks", []), where))
    return Rules(
        rules=rules,
        money_every_s=money_every * 60,
        hours=_hours(_table(doc, "business_hours", where), f"{where}: [business_hours]"),
        webhooks=webhooks,
        routes=tuple(_routes(doc.get("routes", []), {h.label for h in webhooks}, where)),
        timeout_s=float(timeout_s),
        attempts=int(attempts),
    )


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"{where}: [{key}] must be a table")
    return value


def _number(value: Any, low: float, high: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: expected a number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{where}: must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _rule(name: str, table: dict[str, Any], where: str) -> dict[str, Any]:
    known = RULES[name]
    texts = RULE_TEXT_KEYS.get(name, ())
    extra = set(table) - set(known) - set(texts) - {"severity"}
    if extra:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    out: dict[str, Any] = {}
    if "severity" in table:
        if table["severity"] not in SEVERITIES:
            raise InputError(
                f"{where} severity: expected one of {', '.join(SEVERITIES)},"
                f" got {table['severity']!r}"
            )
        out["severity"] = table["severity"]
    for key, (default, low, high) in known.items():
        out[key] = _number(table.get(key, default), low, high, f"{where} {key}")
    for key in texts:
        if key not in table or not isinstance(table[key], str) or not table[key]:
            raise InputError(f"{where}: {key} is required (a folder)")
        out[key] = table[key]
    return out


def _clock(value: Any, where: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value) if isinstance(value, str) else _bad(value)
    except ValueError:
        raise InputError(f'{where}: expected a time like "08:00", got {value!r}') from None


def _bad(value: Any) -> dt.time:
    raise ValueError(value)


def _hours(table: dict[str, Any], where: str) -> BusinessHours:
    extra = set(table) - {"start", "end", "days"}
    if extra:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    default = BusinessHours()
    days = table.get("days", list(default.days))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in days)
    ):
        raise InputError(f"{where}: days must be a list of 1 (Monday) .. 7 (Sunday)")
    return BusinessHours(
        start=_clock(table["start"], f"{where} start") if "start" in table else default.start,
        end=_clock(table["end"], f"{where} end") if "end" in table else default.end,
        days=tuple(sorted(set(days))),
    )


def _webhooks(items: Any, where: str) -> list[Webhook]:
    if not isinstance(items, list):
        raise InputError(f"{where}: webhooks must be an array of tables ([[webhooks]])")
    out: list[Webhook] = []
    for index, item in enumerate(items, 1):
        here = f"{where}: webhook {index}"
        if not isinstance(item, dict):
            raise InputError(f"{here}: must be a table")
        extra = set(item) - {"kind", "url", "secret", "name"}
        if extra:
            raise InputError(f"{here}: unknown key(s) {', '.join(sorted(extra))}")
        kind, url = item.get("kind"), item.get("url")
        if kind not in WEBHOOK_KINDS:
            raise InputError(f"{here}: kind must be one of {', '.join(WEBHOOK_KINDS)}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InputError(f"{here}: url must be an http:// or https:// address")
        secret, name = item.get("secret", ""), item.get("name", "")
        if not isinstance(secret, str) or not isinstance(name, str):
            raise InputError(f"{here}: secret and name are text")
        hook = Webhook(kind=kind, url=url, secret=secret, name=name)
        if any(other.label == hook.label for other in out):
            raise InputError(f"{here}: a second {hook.label!r}: give each webhook a name")
        out.append(hook)
    return out


def _texts(item: dict[str, Any], key: str, here: str) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{here}: {key} must be a list of text")
    return tuple(value)


def _routes(items: Any, webhooks: set[str], where: str) -> list[Route]:
    if not isinstance(items, list):
        raise InputError(f"{where}: routes must be an array of tables ([[routes]])")
    out: list[Route] = []
    for index, item in enumerate(items, 1):
        here = f"{where}: route {index}"
        if not isinstance(item, dict):
            raise InputError(f"{here}: must be a table")
        extra = set(item) - {"rules", "webhooks", "mention", "severity"}
        if extra:
            raise InputError(f"{here}: unknown key(s) {', '.join(sorted(extra))}")
        hooks = _texts(item, "webhooks", here)
        if not hooks:
            raise InputError(f"{here}: webhooks is required (the names of [[webhooks]])")
        for label in hooks:
            if label not in webhooks:
                known = ", ".join(sorted(webhooks)) or "none"
                raise InputError(f"{here}: no webhook named {label!r} (known: {known})")
        rules = _texts(item, "rules", here)
        for rule in rules:
            if rule not in RULES:
                raise InputError(f"{here}: {rule!r} is not a rule (known: {', '.join(RULES)})")
        mention = _texts(item, "mention", here)
        for who in mention:
            if not MENTION.fullmatch(who):
                raise InputError(
                    f'{here}: mention {who!r}: expected "all", a mobile number'
                    " (11 digits) or a Feishu open_id (ou_...)"
                )
        severity = _texts(item, "severity", here)
        for level in severity:
            if level not in SEVERITIES:
                raise InputError(
                    f"{here}: severity {level!r} is not one of {', '.join(SEVERITIES)}"
                )
        out.append(Route(webhooks=hooks, rules=rules, mention=mention, severity=severity))
    return out
