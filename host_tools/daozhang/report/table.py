"""The terminal report: findings grouped by cause with totals in yuan (rich)."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.report.export import as_of_text
from daozhang.settle.rows import fen_to_yuan


def summary(findings: list[Finding]) -> list[tuple[str, str, int, int, int]]:
    """(cause or status, status, count, amount fen, short fen), biggest money first."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for f in findings:
        if f.kind != "transaction":
            continue
        g = groups[(f.cause or f.status, f.status)]
        g[0] += 1
        g[1] += f.amount_fen
        g[2] += f.short_fen if f.status == "settled_short" else (
            f.amount_fen if f.status == "gap" else 0)  # fmt: skip
    rows = [(k[0], k[1], v[0], v[1], v[2]) for k, v in groups.items()]
    return sorted(rows, key=lambda r: (r[1] in ("settled", "not_expected"), -r[4], -r[3]))


def print_report(as_of: int, findings: list[Finding], console: Console | None = None,
                 limit: int = 40) -> None:  # fmt: skip
    console = console or Console()
    table = Table(title=f"daozhang correlate — as of {as_of_text(as_of)}")
    for col, justify in (("cause / status", "left"), ("status", "left"), ("network", "center"),
                         ("n", "right"), ("amount ¥", "right"),
                         ("missing ¥", "right")):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    total = [0, 0, 0]
    for cause, status, n, amount, short in summary(findings):
        table.add_row(cause, status, "yes" if cause in NETWORK_CAUSES else "", str(n),
                      fen_to_yuan(amount), fen_to_yuan(short))  # fmt: skip
        total = [total[0] + n, total[1] + amount, total[2] + short]
    table.add_section()
    table.add_row("total", "", "", str(total[0]), fen_to_yuan(total[1]), fen_to_yuan(total[2]))
    console.print(table)
    problems = [f for f in findings if f.kind == "transaction"
                and f.status in ("gap", "settled_short")]  # fmt: skip
    if not problems:
        return
    detail = Table(title=f"money not arrived ({min(limit, len(problems))} of {len(problems)})")
    for col in ("merchant", "terminal", "trace", "rrn", "¥", "status", "cause", "data"):
        detail.add_column(col, no_wrap=True)
    problems.sort(key=lambda f: (NETWORK_CAUSES.count(f.cause) == 0, -f.amount_fen))
    for f in problems[:limit]:
        detail.add_row(f.mid, f.tid, f.trc, f.rrn, fen_to_yuan(f.amount_fen), f.status, f.cause,
                       f.data)  # fmt: skip
    console.print(detail)
