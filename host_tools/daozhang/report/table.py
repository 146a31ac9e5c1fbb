"""The terminal report (rich): findings by cause with totals in yuan, the transactions whose
money did not arrive, most missing money first, and the payout view (`correlate --payouts`).

Labels are Chinese over English (`--lang zh`, the default), or English alone (`--lang en`),
one language a line so that a column fits 80 columns; an amount is never cut: its column is
as wide as its longest amount, and the other columns wrap around it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.report.export import as_of_text
from daozhang.report.payouts import PayoutView
from daozhang.units import fen_to_yuan


def missing_fen(f: Finding) -> int:
    """Money that did not arrive: all of a gap, the short part of a short payment."""
    if f.status == "gap":
        return f.amount_fen
    return f.short_fen if f.status == "settled_short" else 0


def summary(findings: Iterable[Finding]) -> list[tuple[str, str, int, int, int]]:
    """(cause or status, status, count, amount fen, missing fen), most missing money first."""
    tally = Tally(0)
    tally.add(findings)
    return tally.summary()


_SHORT = ("gap", "settled_short")


def _most_missing(f: Finding) -> tuple[int, str, str, str]:
    return (-missing_fen(f), f.mid, f.tid, f.trc)


class Tally:
    """What the terminal report shows, gathered from a stream of findings (issue 24): the
    totals per cause and status, and only the `limit` transactions missing the most money
    (None: all of them) with the count and money of the rest."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.problems: list[Finding] = []
        self.n_problems = 0
        self.missing = 0  # of every problem, shown or not

    def add(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            if f.kind != "transaction":
                continue
            short = missing_fen(f)
            g = self.groups[(f.cause or f.status, f.status)]
            g[0] += 1
            g[1] += f.amount_fen
            g[2] += short
            if f.status in _SHORT:
                self.n_problems += 1
                self.missing += short
                if self.limit != 0:
                    self.problems.append(f)
        if self.limit and len(self.problems) >= max(2 * self.limit, 10_000):
            self._trim(self.limit)

    def _trim(self, keep: int) -> None:
        self.problems.sort(key=_most_missing)
        del self.problems[keep:]

    def shown(self) -> list[Finding]:
        """The problems shown, most missing money first, whatever the cause: a network row
        never hides a bigger one."""
        self._trim(len(self.problems) if self.limit is None else self.limit)
        return self.problems

    def summary(self) -> list[tuple[str, str, int, int, int]]:
        rows = [(k[0], k[1], v[0], v[1], v[2]) for k, v in self.groups.items()]
        return sorted(rows, key=lambda r: (r[1] in ("settled", "not_expected"), -r[4], -r[3], r[0]))


# Headers per language: (zh, en).
_H = {
    "cause_or_status": ("原因或状态", "cause or status"),
    "status": ("到账", "status"),
    "network": ("网络", "network"),
    "n": ("笔数", "n"),
    "amount": ("金额¥", "amount ¥"),
    "missing": ("未到账¥", "missing ¥"),
    "total": ("合计", "total"),
    "merchant": ("商户", "merchant"),
    "terminal": ("终端", "terminal"),
    "trace": ("流水号", "trace"),
    "cause": ("原因", "cause"),
    "record": ("终端记录", "record"),
    "payout": ("出款", "payout"),
    "state": ("状态", "state"),
    "gross_fees": ("交易额¥\n−手续费", "gross ¥\n−fees"),
    "refunds_holds": ("−退货\n−留存", "−refunds\n−holds"),
    "net_reached": ("=应到¥\n实到¥\n未到账¥", "=net ¥\nreached ¥\nmissing ¥"),
    "txns": ("交易", "txns"),
    "yes": ("是", "yes"),
}


def _h(key: str, lang: str) -> str:
    zh, en = _H[key]
    return en if lang == "en" else f"{zh}\n{en}"


def _l(table: dict[str, tuple[str, str]], code: str, lang: str) -> str:
    return words.label(table, code, lang, "\n")


def _amount_column(table: Table, header: str, cells: Sequence[str]) -> None:
    """Right-aligned, never wrapped or cut: as wide as its widest amount."""
    widest = max([len(line) for c in cells for line in c.split("\n")] or [1])
    table.add_column(header, justify="right", no_wrap=True, min_width=widest)


def print_report(
    as_of: int,
    findings: Iterable[Finding],
    console: Console | None = None,
    limit: int | None = None,
    lang: str = "zh",
) -> None:
    """The summary by cause, then the problem transactions (`limit` of them; None: all)."""
    tally = Tally(limit)
    tally.add(findings)
    print_tally(as_of, tally, console, lang)


def print_tally(as_of: int, tally: Tally, console: Console | None = None, lang: str = "zh") -> None:
    console = console or Console()
    rows = tally.summary()
    total = [sum(r[2] for r in rows), sum(r[3] for r in rows), sum(r[4] for r in rows)]
    title = "as of" if lang == "en" else "截至 as of"
    table = Table(title=f"daozhang correlate — {title} {as_of_text(as_of)}")
    table.add_column(_h("cause_or_status", lang), overflow="fold")
    table.add_column(_h("status", lang), overflow="fold")
    table.add_column(_h("network", lang), justify="center", overflow="fold")
    counts = [str(r[2]) for r in rows] + [str(total[0])]
    amounts = [fen_to_yuan(r[3]) for r in rows] + [fen_to_yuan(total[1])]
    missing = [fen_to_yuan(r[4]) for r in rows] + [fen_to_yuan(total[2])]
    _amount_column(table, _h("n", lang), counts)
    _amount_column(table, _h("amount", lang), amounts)
    _amount_column(table, _h("missing", lang), missing)
    for i, (cause, status, _n, _amount, _short) in enumerate(rows):
        name = _l(words.CAUSE, cause, lang) if cause != status else _l(words.STATUS, status, lang)
        table.add_row(
            name,
            _l(words.STATUS, status, lang),
            _h("yes", lang) if cause in NETWORK_CAUSES else "",
            counts[i],
            amounts[i],
            missing[i],
        )
    table.add_section()
    table.add_row(_h("total", lang), "", "", counts[-1], amounts[-1], missing[-1])
    console.print(table)
    if not tally.n_problems:
        return
    shown = tally.shown()
    head = "money not arrived" if lang == "en" else "未到账交易 money not arrived"
    detail = Table(title=f"{head} ({len(shown)} / {tally.n_problems})")
    # Merchant over terminal: a 15-digit merchant number kept whole in 80 columns.
    ids = [f"{f.mid}\n{f.tid}" for f in shown]
    widest = max(len(line) for c in ids for line in c.split("\n"))
    who = "merchant\nterminal" if lang == "en" else "商户 merchant\n终端 terminal"
    detail.add_column(who, min_width=widest)
    detail.add_column(_h("trace", lang), overflow="fold")
    money = [fen_to_yuan(missing_fen(f)) for f in shown]
    _amount_column(detail, _h("missing", lang), money)
    # The money's status over the record's: one column fewer, so that all fit 80 columns.
    detail.add_column(f"{_h('status', lang)}\n{_h('record', lang)}", overflow="fold")
    detail.add_column(_h("cause", lang), overflow="fold")
    for f, who, text in zip(shown, ids, money, strict=True):
        detail.add_row(
            who,
            f.trc,
            text,
            f"{_l(words.STATUS, f.status, lang)}\n{_l(words.DATA, f.data, lang)}",
            _l(words.CAUSE, f.cause, lang),
        )
    console.print(detail)
    rest = tally.n_problems - len(shown)
    if rest:
        left = tally.missing - sum(missing_fen(f) for f in shown)
        note = f"{rest} more not shown, ¥{fen_to_yuan(left)} missing (--all lists all)"
        if lang != "en":
            note = f"另有{rest}笔未列出，未到账¥{fen_to_yuan(left)}（--all 全部列出）\n{note}"
        console.print(note)


def print_payouts(
    as_of: int,
    views: list[PayoutView],
    console: Console | None = None,
    limit: int | None = None,
    lang: str = "zh",
    total: tuple[int, int] | None = None,
) -> None:
    """One row per payout: gross − fees − refunds − holds = net, against what reached the
    account, and how many of its transactions are missing money. `total`: the count and
    missing money of every payout, when `views` holds only the first ones (PayoutTally)."""
    console = console or Console()
    shown = views if limit is None else views[:limit]
    n_all, missing_all = total or (len(views), sum(v.missing for v in views))
    head = "payouts" if lang == "en" else "出款 payouts"
    title = "as of" if lang == "en" else "截至 as of"
    table = Table(title=f"{head} ({len(shown)} / {n_all}) — {title} {as_of_text(as_of)}")
    # Payout id, merchant and date stacked in one cell, as wide as the widest of them.
    who = [f"{v.payout.payout_id}\n{v.payout.mid}\n{v.payout.settle_date}" for v in shown]
    widest = max([len(line) for c in who for line in c.split("\n")] or [10])
    table.add_column(_h("payout", lang), min_width=widest)
    table.add_column(_h("state", lang), overflow="fold")
    gross = [f"{fen_to_yuan(v.gross)}\n−{fen_to_yuan(v.fees)}" for v in shown]
    held = [f"−{fen_to_yuan(v.refunds)}\n−{fen_to_yuan(v.holds)}" for v in shown]
    net = [
        f"={fen_to_yuan(v.net)}\n{fen_to_yuan(v.reached)}\n{fen_to_yuan(v.missing)}" for v in shown
    ]
    _amount_column(table, _h("gross_fees", lang), gross)
    _amount_column(table, _h("refunds_holds", lang), held)
    _amount_column(table, _h("net_reached", lang), net)
    table.add_column(_h("txns", lang), justify="right")
    for i, v in enumerate(shown):
        f = v.finding
        status = f.status if f is not None else ""
        cause = f.cause if f is not None else ""
        state = "\n".join(
            x
            for x in (
                _l(words.PAYOUT_STATE, v.payout.state, lang),
                _l(words.CAUSE, cause, lang) or _l(words.STATUS, status, lang),
            )
            if x
        )
        txns = str(v.n_transactions) + (f"\n{v.n_bad}!" if v.n_bad else "")
        table.add_row(who[i], state, gross[i], held[i], net[i], txns)
    console.print(table)
    if len(shown) < n_all:
        rest = n_all - len(shown)
        left = missing_all - sum(v.missing for v in shown)
        note = f"{rest} more payouts not shown, ¥{fen_to_yuan(left)} missing (--all)"
        if lang != "en":
            note = f"另有{rest}笔出款未列出，未到账¥{fen_to_yuan(left)}（--all 全部列出）\n{note}"
        console.print(note)
