"""`daozhang alerts run`: evaluate the rules, record transitions, deliver, and again.

One round: every rule the file turns on is evaluated from the store as of now; the verdict
becomes transitions (state.py) in one transaction; then the queued messages that are due go
out (deliver.py). Between rounds the runner sleeps, waking early for a retry that falls due.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from daozhang.alerts.alert import Verdict
from daozhang.alerts.deliver import Poster, Round, deliver, next_due, post
from daozhang.alerts.fleet_rules import evaluate_fleet
from daozhang.alerts.money_rules import evaluate_money
from daozhang.alerts.ota_rule import evaluate_rollouts
from daozhang.alerts.pki_rule import evaluate_pki
from daozhang.alerts.rules import Rules
from daozhang.alerts.state import Transition, apply
from daozhang.errors import DaozhangError
from daozhang.store import Store, is_transient
from daozhang.units import BEIJING


def evaluate(store: Store, rules: Rules, now: float, money: bool = True) -> Verdict:
    verdict = Verdict()
    in_hours = rules.hours.contains(dt.datetime.fromtimestamp(now, BEIJING))
    evaluate_fleet(store, rules, now, in_hours, verdict)
    evaluate_money(store, rules, now, verdict, due=money)
    evaluate_pki(rules, now, verdict)
    evaluate_rollouts(store, rules, now, verdict)
    return verdict


@dataclass
class Outcome:
    transitions: list[Transition] = field(default_factory=list)
    delivery: Round = field(default_factory=Round)
    unknown: dict[str, str] = field(default_factory=dict)


def one_round(
    store: Store,
    rules: Rules,
    now: float,
    poster: Poster = post,
    log: Callable[[str], object] = lambda line: sys.stderr.write(line + "\n"),
    money: bool = True,
) -> Outcome:
    verdict = evaluate(store, rules, now, money)
    hooks = {h.label: h for h in rules.webhooks}
    transitions = apply(store, verdict, now, rules.destinations, rules.severity)
    delivery = deliver(store, hooks, now, rules.timeout_s, rules.attempts, poster, log)
    return Outcome(transitions, delivery, verdict.unknown)


def run_forever(
    open_store: Callable[[], Store],
    rules_now: Rules | Callable[[], Rules],
    interval_s: float,
    say: Callable[[str], object] = lambda line: sys.stderr.write(line + "\n"),
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Rounds every `interval_s` until interrupted (or `stop()`). A database that is away,
    locked or full is waited out (said once per round); a retry due between rounds is sent
    when it falls due. `rules_now`: the rules, or what gives the rules in force each round
    (RulesFile.current, which rereads a changed file)."""
    money_at: float | None = None  # when the money rules last ran
    while not stop():
        rules = rules_now() if callable(rules_now) else rules_now
        started = time.time()
        due: float | None = None
        money = money_at is None or started - money_at >= rules.money_every_s
        try:
            with open_store() as store:
                outcome = one_round(store, rules, started, log=say, money=money)
                if money:
                    money_at = started
                for t in outcome.transitions:
                    say(f"alerts: {t.event} {t.key}{'' if t.told else ' (silenced)'}")
                for rule, why in outcome.unknown.items():
                    say(f"alerts: {rule} not evaluated: {why}")
                due = next_due(store)
        except Exception as exc:  # the engine's trouble is waited out
            if not isinstance(exc, DaozhangError) and not is_transient(exc):
                raise
            say(f"daozhang: alerts: round failed, trying again next round: {exc}")
        wake = started + interval_s
        while (now := time.time()) < wake and not stop():
            if due is not None and due <= now:
                try:
                    with open_store() as store:
                        hooks = {h.label: h for h in rules.webhooks}
                        deliver(store, hooks, now, rules.timeout_s, rules.attempts, log=say)
                        due = next_due(store)
                    # Nothing deliverable yet (another runner's claim): look again in a second.
                    due = None if due is None else max(due, now + 1.0)
                except Exception as exc:
                    if not isinstance(exc, DaozhangError) and not is_transient(exc):
                        raise
                    say(f"daozhang: alerts: delivery failed: {exc}")
                    due = None
                continue
            time.sleep(min(1.0, max(0.05, min(wake, due if due is not None else wake) - now)))
