"""`daozhang sim generate|check|run|verify`: scenarios, from generated data to a real fleet.

`generate` is the scenario generator alone (daozhang.lab.sim: files and device data, no boards);
`check`, `run` and `verify` run fleets of virtual boards from scenario files
(docs/simulation.md).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from daozhang.errors import UsageError
from daozhang.lab.fleet import invariants, plan, player
from daozhang.lab.fleet.scenario import Scenario, load
from daozhang.lab.fleet.timebase import Timebase
from daozhang.schema import open_database

HELP = "scenarios: generate data, run a fleet, check no loss"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    from daozhang.lab.sim import cli as generator_cli

    generate = sub.add_parser(
        "generate", help="generate a scenario with ground truth (files, device data), no boards"
    )
    generator_cli.add_arguments(generate)
    generate.set_defaults(handler=generator_cli.run)

    check = sub.add_parser("check", help="validate a scenario file and print its plan")
    check.add_argument("scenario", type=Path)
    check.add_argument("--events", action="store_true", help="print every timeline event")
    check.set_defaults(handler=_check)

    run = sub.add_parser("run", help="run a scenario end to end")
    run.add_argument("scenario", type=Path)
    run.add_argument("--out", type=Path, required=True, help="output folder (created)")
    run.set_defaults(handler=_run)

    verify = sub.add_parser("verify", help="check the no-loss invariant: POS acks vs the store")
    verify.add_argument("--db", required=True, help="store URL (sqlite:///... or postgresql://)")
    verify.add_argument("--truth", type=Path, required=True, help="truth.jsonl of a run")
    verify.add_argument("--all", action="store_true", help="list healthy devices too")
    verify.set_defaults(handler=_verify)


def run(args: argparse.Namespace) -> int:  # every action sets its own handler
    raise UsageError("sim: choose an action (generate, check, run, verify)")


def describe(s: Scenario, events: list[plan.Event]) -> str:
    lines = [
        f"scenario {s.name} ({s.path}), seed {s.seed}, mode {s.mode}",
        f"business day {s.day.date} {s.day.open_hhmm}-{s.day.close_hhmm} (Beijing) in "
        f"{s.duration_s:g} s: time x{s.time_scale:.0f} for POS times, the boards' clocks, "
        "the fault timeline and settlement; uptime, timers, network and broker in real time",
        f"{len(s.devices)} boards x {s.receipts_per_board} receipts = {s.receipts} receipts; "
        f"flash {s.flash_size // 1024} KiB, heap {s.heapsize}",
    ]
    groups = Counter((d.group, d.link.name) for d in s.devices)
    for (group, link), n in groups.items():
        lines.append(f"  group {group}: {n} boards on link {link!r}")
    lines.append(
        f"broker persistence {'on' if s.broker_persistence else 'off'}; "
        f"{s.collectors} collector(s) on {s.db}; drain up to {s.drain_s:g} s"
    )
    kinds = Counter(f.kind for f in s.faults)
    lines.append("faults: " + (", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none"))
    down = [sum(b - a for a, b in plan.outages(events, d.index, s.duration_s)) for d in s.devices]
    lines.append(
        f"timeline: {len(events)} events; boards unreachable {sum(down):.0f} board-seconds "
        f"in all (worst board {max(down):.0f} s)"
    )
    causes = ", ".join(f"{c} {n}" for c, n in s.settlement_causes.items() if n) or "none"
    lines.append(f"settlement causes injected: {causes}")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    s = load(args.scenario)
    events = plan.schedule(s)
    print(describe(s, events))
    if args.events:
        timebase = Timebase.of(s)
        for e in events:
            print(json.dumps(player.describe(e, timebase)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from daozhang.lab.fleet.runner import run_scenario

    result = run_scenario(load(args.scenario), args.out)
    return 0 if result.ok else 1


def _verify(args: argparse.Namespace) -> int:
    truth = list(invariants.read_truth(args.truth))
    with open_database(args.db, migrate=False) as store:
        stored = list(invariants.stored_receipts(store))
    result = invariants.check(truth, stored)
    print(invariants.render(result, only_problems=not args.all))
    return 0 if result.valid else 1
