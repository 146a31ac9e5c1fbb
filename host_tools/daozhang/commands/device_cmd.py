"""`daozhang device cmd DEV[,DEV...] flush|report|set KEY=VALUE...`: a signed command to each
device over the broker, and each device's answer (DESIGN §1.5; the work is daozhang.remote).

`set` takes the settings a running agent applies at once (contract REMOTE_SETTABLE), with the
bounds of `daozhang flash --set`; a change lasts until the device's next boot.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daozhang import contract
from daozhang.collector.wire import DEV_PATTERN
from daozhang.commands.args import number, tool_connection
from daozhang.errors import UsageError
from daozhang.flash.settings import parse_settings
from daozhang.remote.counters import catch_up
from daozhang.remote.send import Exchange, Outcome, prepare, signing_keys
from daozhang.remote.words import REFUSALS, STATES
from daozhang.schema import open_database


def add_parsers(sub: Any) -> None:
    cmd = sub.add_parser(
        "cmd",
        help="send a signed command (flush, report, set) and show each device's answer",
        description="Signed with each device's key and counted, so that a recorded command "
        "cannot be sent again. set KEY=VALUE changes "
        + ", ".join(contract.REMOTE_SETTABLE)
        + " until the device's next boot, within the bounds of `daozhang flash --set`.",
    )
    cmd.add_argument("devs", metavar="DEV[,DEV...]", help="terminal serials, comma-separated")
    cmd.add_argument("op", choices=contract.COMMAND_OPS, help="what to do")
    cmd.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="for set")
    tool_connection(cmd)
    cmd.add_argument(
        "--wait",
        type=number(0, 3600),
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the answers (60)",
    )
    cmd.set_defaults(handler=run_cmd)


def parse_devices(text: str) -> list[str]:
    devs = [d.strip() for d in text.split(",") if d.strip()]
    if not devs:
        raise UsageError("cmd: name at least one device")
    for dev in devs:
        if not DEV_PATTERN.fullmatch(dev):
            raise UsageError(f"cmd: device id {dev!r} is not [A-Za-z0-9_-]{{4,32}}")
    return list(dict.fromkeys(devs))


def _settings(op: str, pairs: list[str]) -> dict[str, int]:
    if op != "set":
        if pairs:
            raise UsageError(f"cmd: {op} takes no KEY=VALUE")
        return {}
    if not pairs:
        raise UsageError("cmd: set needs KEY=VALUE, e.g. set hb_s=120")
    for pair in pairs:
        key = pair.partition("=")[0].strip()
        if key in contract.AGENT_TUNABLE and key not in contract.REMOTE_SETTABLE:
            raise UsageError(
                f"cmd: {key} is read at boot: change it with `daozhang flash --set`;"
                f" remotely settable: {', '.join(contract.REMOTE_SETTABLE)}"
            )
    return parse_settings(pairs)


def describe(outcome: Outcome, wait_s: float) -> str:
    """One line per device: Chinese first, English beside."""
    zh, en = STATES[outcome.state]
    line = f"{outcome.dev:<20} {zh} {en}"
    if outcome.why is not None:
        why_zh, why_en = REFUSALS.get(outcome.why, REFUSALS["?"])
        line += f": {why_zh} {why_en}"
        if outcome.why == "replay" and outcome.seen is not None:
            line += f" [{outcome.seen}]"
    elif outcome.state == "none":
        line += f" ({wait_s:g} s)"
    return line


def run_cmd(args: argparse.Namespace) -> int:
    devs = parse_devices(args.devs)
    settings = _settings(args.op, args.settings)
    exchange = Exchange(args.broker, args.tls_dir)  # a bad URL is refused before anything
    with open_database(args.db, create=False) as store:
        signing_keys(store, devs)  # devices unknown or keyless: refused before the broker
        with exchange:  # and no counter is spent when the broker cannot be reached
            commands = prepare(store, devs, args.op, settings)
            exchange.send(commands)
            outcomes = exchange.answers(commands, args.wait)
        for outcome in outcomes.values():
            if outcome.why == "replay" and outcome.seen:
                catch_up(store, outcome.dev, outcome.seen)
    for dev in devs:
        sys.stdout.write(describe(outcomes[dev], args.wait) + "\n")
    return 0 if all(o.state == "applied" for o in outcomes.values()) else 1
