"""`daozhang pos`: a POS main board sending realistic receipts over the terminal link."""

from __future__ import annotations

import argparse
from pathlib import Path

from daozhang.commands.args import integer, number
from daozhang.errors import UsageError
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.pos.ledger import Ledger
from daozhang.lab.pos.link import TerminalLink
from daozhang.lab.pos.resume import Resume
from daozhang.lab.pos.simulator import GaveUp, PosSimulator
from daozhang.lab.pos.transactions import Merchant, TransactionSource

HELP = "simulate a POS main board sending receipts to the agent"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--port", help="terminal link: a serial device or pty path, or tcp:HOST:PORT"
    )
    where.add_argument("--board", help="a running virtual board's name (its terminal link)")
    parser.add_argument(
        "--count", type=integer(1, 10_000_000), default=20, help="receipts to send (default 20)"
    )
    parser.add_argument(
        "--rate", type=number(0), default=0, help="receipts per second (default: as fast as ACKed)"
    )
    parser.add_argument("--seed", type=integer(0), default=1, help="transaction stream seed")
    parser.add_argument("--mid", default="898440358120001", help="merchant id (15 characters)")
    parser.add_argument("--tid", default="12345678", help="terminal id (8 characters)")
    parser.add_argument("--batch", type=integer(0, 999_999), default=1, help="batch number")
    parser.add_argument("--ledger", type=Path, help="append what was ACKed to this JSON Lines file")
    parser.add_argument(
        "--full-pan-every",
        type=integer(0),
        default=0,
        metavar="N",
        help="every Nth card receipt carries a full PAN (to see the agent mask it)",
    )
    parser.add_argument(
        "--ack-timeout",
        type=number(0, above=True),
        default=2.0,
        help="seconds to wait for an answer",
    )
    parser.add_argument(
        "--give-up",
        type=number(0, above=True),
        default=60.0,
        help="seconds before giving up on one receipt",
    )


def _port(args: argparse.Namespace) -> str:
    if args.port:
        return str(args.port)
    board = VirtualBoard.named(args.board)
    port = board.terminal_port
    if not board.running() or port is None:
        raise UsageError(f"--board {args.board!r}: no running virtual board with a terminal link")
    return f"tcp:127.0.0.1:{port}"


def _kept_on_board(args: argparse.Namespace) -> Path | None:
    # Where a virtual board keeps its terminal's trace and clock between simulator runs.
    return VirtualBoard.named(args.board).root / "pos.json" if args.board else None


def run(args: argparse.Namespace) -> int:
    if args.count < 0:
        raise UsageError("--count must be 0 or more")
    try:
        merchant = Merchant(args.mid, args.tid)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    link = TerminalLink(_port(args))
    ledger = Ledger(args.ledger) if args.ledger else None
    kept = _kept_on_board(args)
    resume = Resume()  # where this terminal's last run stopped (resume.py)
    if ledger:
        resume = resume.later(Resume.from_ledger(Ledger.read(ledger.path), merchant))
    if kept:
        resume = resume.later(Resume.from_board(kept, merchant))
    sim = PosSimulator(
        link,
        ledger,
        ack_timeout_s=args.ack_timeout,
        give_up_s=args.give_up,
        out=print,
        first_id=resume.last_id + 1,
    )
    source = TransactionSource(
        merchant,
        seed=args.seed,
        batch=args.batch,
        full_pan_every=args.full_pan_every,
        last_trace=resume.trace,
        start_time=max(TransactionSource.start_time, resume.clock + 60),
    )
    try:
        resent = sim.resend_unanswered()
        if resent:
            print(f"sent again {resent} receipt(s) the ledger had no answer for")
        sim.run(source, args.count, args.rate)
    except GaveUp as exc:
        raise UsageError(str(exc)) from None
    finally:
        link.close()
        if ledger:
            ledger.close()
        if kept:
            Resume.keep_on_board(kept, merchant, source.trace, source.now)
    s = sim.stats
    print(
        f"{s.acked} acked ({s.dup_acks} as repeats), {s.refused} refused, {s.resends} resent, "
        f"{s.reconnects} reconnects"
    )
    return 0 if s.refused == 0 else 1
