"""`daozhang alerts run --db URL --rules FILE.toml [--once] [--interval 60]`,
`daozhang alerts list --db URL` and the silences (`alerts silence`, `silences`, `unsilence`):
fleet and money alerts to group-bot webhooks (daozhang/alerts/README.md)."""

from __future__ import annotations

import argparse
import functools
import getpass
import sys
import time

from daozhang.alerts.alert import beijing
from daozhang.alerts.message import RULE_NAMES, SEVERITY_WORDS
from daozhang.alerts.rules import RULES, RulesFile
from daozhang.alerts.runner import one_round, run_forever
from daozhang.alerts.silence import add_silence, end_silence, list_silences, silenced
from daozhang.alerts.state import alert_rows, firing_now
from daozhang.commands.args import duration, input_file, number, whole_number
from daozhang.commands.correlate import parse_time
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
    quiet = sub.add_parser(
        "silence", help="tell no one of the alerts of a rule and/or subject for a while"
    )
    quiet.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    quiet.add_argument("--rule", choices=sorted(RULES), help="this rule's alerts (default: all)")
    quiet.add_argument(
        "--subject",
        help="this subject's alerts: a device, cell or acquirer-day, as after the ':' of a key",
    )
    until = quiet.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="for_s", type=duration, help="how long: 90m, 2h, 3d")
    until.add_argument("--until", help='until "YYYY-MM-DD HH:MM" (Beijing time)')
    quiet.add_argument("--reason", required=True, help="why, for whoever reads it later")
    quiet.add_argument("--by", help="who (default: your login name)")
    quiet.set_defaults(handler=run_silence)
    silences = sub.add_parser("silences", help="the silences in force (--all: ended ones too)")
    silences.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    silences.add_argument("--all", action="store_true", help="ended and expired ones too")
    silences.set_defaults(handler=run_silences)
    unquiet = sub.add_parser("unsilence", help="end a silence now")
    unquiet.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    unquiet.add_argument("id", type=whole_number(1), help="the silence's number (alerts silences)")
    unquiet.set_defaults(handler=run_unsilence)


def run(args: argparse.Namespace) -> int:
    raise UsageError("alerts: choose run or list")


def run_rules(args: argparse.Namespace) -> int:
    source = RulesFile(args.rules, lambda line: sys.stderr.write(line + "\n"))
    rules = source.current()
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
        run_forever(open_store, source.current, args.interval)
        return 0
    with open_store() as store:
        outcome = one_round(store, rules, time.time())
        firing = firing_now(store)
    for t in outcome.transitions:
        print(f"{t.event:9} {t.key}{'' if t.told else '  (已静默 / silenced)'}")
    for rule, why in outcome.unknown.items():
        sys.stderr.write(f"daozhang: alerts: {rule} not evaluated: {why}\n")
    d = outcome.delivery
    print(
        f"告警 {len(firing)} 条 / {len(firing)} firing; sent {d.sent}, retrying {d.failed},"
        f" given up {d.given_up}"
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    now = time.time()
    with open_database(args.db, create=False) as store:
        firing = [a for a in alert_rows(store, now) if a.state == "firing"]
        silences = list_silences(store, now)
    for a in sorted(firing, key=lambda a: (a.fired_at, a.key)):
        quiet = silenced(silences, a.rule, a.subject)
        mark = f"  [已静默至 {beijing(quiet.ends_at)} / silenced #{quiet.id}]" if quiet else ""
        level = SEVERITY_WORDS.get(a.severity)
        said = f"  {level[0]} {level[1]}" if level else ""
        print(f"{beijing(a.fired_at)}{said}  {a.key}{mark}\n    {a.zh}")
    print(f"告警 {len(firing)} 条 / {len(firing)} firing")
    return 0


def run_silence(args: argparse.Namespace) -> int:
    if args.rule is None and not args.subject:
        raise UsageError("alerts silence: give --rule, --subject or both (not every alert)")
    if not args.reason.strip():
        raise UsageError("alerts silence: --reason must say why")
    now = time.time()
    ends_at = now + args.for_s if args.for_s else parse_time(args.until, "--until")
    assert ends_at is not None
    if ends_at <= now:
        raise UsageError(f"alerts silence: --until {args.until} has passed")
    by = args.by or getpass.getuser()
    with open_database(args.db, create=False) as store:
        sid = add_silence(store, args.rule, args.subject or None, ends_at, args.reason, by, now)
    what = _what(args.rule, args.subject or None)
    print(f"静默 #{sid}:{what[0]},至 {beijing(ends_at)}(北京时间)")
    print(f"silence #{sid}: {what[1]}, until {beijing(ends_at)} Beijing time")
    return 0


def _what(rule: str | None, subject: str | None) -> tuple[str, str]:
    zh = RULE_NAMES[rule][0] if rule else "全部告警"
    en = RULE_NAMES[rule][1] if rule else "every alert"
    if subject:
        return f"{zh}（{subject}）", f"{en} of {subject}"
    return zh, en


def run_silences(args: argparse.Namespace) -> int:
    now = time.time()
    with open_database(args.db, create=False) as store:
        silences = list_silences(store, now, include_over=args.all)
    for s in silences:
        zh, en = _what(s.rule, s.subject)
        state = "生效中 / in force" if not s.over(now) else "已结束 / over"
        print(f"#{s.id}  {zh} / {en}")
        print(f"    {beijing(s.created_at)} → {beijing(s.ended_at or s.ends_at)}  {state}")
        print(f"    {s.created_by}: {s.reason}")
    print(f"静默 {len(silences)} 条 / {len(silences)} silence(s)")
    return 0


def run_unsilence(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        silence = end_silence(store, args.id, time.time())
    if silence is None:
        raise UsageError(f"alerts unsilence: no silence #{args.id} (see alerts silences --all)")
    over = beijing(silence.ended_at or silence.ends_at)
    print(f"静默 #{silence.id} 于 {over} 结束 / silence #{silence.id} over at {over}")
    return 0
