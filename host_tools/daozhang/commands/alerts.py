"""`daozhang alerts run --db URL --rules FILE.toml [--once] [--interval 60]` and
`daozhang alerts list --db URL`: fleet and money alerts to group-bot webhooks
(daozhang/alerts/README.md)."""

from __future__ import annotations

import argparse
import functools
import sys
import time

from daozhang.alerts.alert import beijing
from daozhang.alerts.rules import load
from daozhang.alerts.runner import one_round, run_forever
from daozhang.alerts.state import firing_now
from daozhang.commands.args import input_file, number
from daozhang.errors import UsageError
from daozhang.schema import open_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_p = sub.add_parser("run", help="evaluate the rules and send what fires and resolves")
    run_p.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    run_p.add_argument("--rules", required=True, type=input_file, help="the rules file (TOML)")
    run_p.add_argument("--once", action="store_true", help="one round, then exit")
    run_p.add_argument(
        "--interval",
        type=number(1, 86_400),
        default=60,
        help="seconds between rounds (60)",
    )
    run_p.set_defaults(handler=run_rules)
    listing = sub.add_parser("list", help="the alerts firing now")
    listing.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    listing.set_defaults(handler=run_list)


def run(args: argparse.Namespace) -> int:
    raise UsageError("alerts: choose run or list")


def run_rules(args: argparse.Namespace) -> int:
    rules = load(args.rules)
    if not rules.webhooks:
        sys.stderr.write(
            f"daozhang: alerts: {args.rules} has no [[webhooks]]: alerts are recorded"
            " (alerts list) but sent nowhere\n"
        )
    # Its own table component is brought up to date here; a mistyped path is refused.
    open_store = functools.partial(open_database, args.db, create=False)
    if not args.once:
        with open_store():
            pass
        sys.stderr.write(
            f"alerts: evaluating {len(rules.rules)} rule(s) every {args.interval:g} s,"
            f" {len(rules.webhooks)} webhook(s)\n"
        )
        run_forever(open_store, rules, args.interval)
        return 0
    with open_store() as store:
        outcome = one_round(store, rules, time.time())
        firing = firing_now(store)
    for t in outcome.transitions:
        print(f"{t.event:9} {t.key}")
    for rule, why in outcome.unknown.items():
        sys.stderr.write(f"daozhang: alerts: {rule} not evaluated: {why}\n")
    d = outcome.delivery
    print(
        f"告警 {len(firing)} 条 / {len(firing)} firing; sent {d.sent}, retrying {d.failed},"
        f" given up {d.given_up}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        firing = firing_now(store)
    for key, fired_at, zh in firing:
        print(f"{beijing(fired_at)}  {key}\n    {zh}")
    print(f"告警 {len(firing)} 条 / {len(firing)} firing")
    return 0
