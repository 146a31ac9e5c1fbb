"""The money rules, from correlation as of now (`correlate.analyse`, event time throughout):

- `unexplained_unpaid`: money due and not paid whose cause correlation cannot name
  (`gap` with cause `unknown`), in total at or past ¥X;
- `acquirer_day_unpaid`: one acquirer and day with M or more merchants unpaid while their
  terminals were healthy (cause `acquirer_side`), one alert per acquirer-day.

Correlation reads the whole store (a merchant range at a time, keeping only the gaps), so these
rules run only when the rules file turns them on, at most every `[money] every_minutes`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from daozhang.alerts.alert import Alert, Verdict
from daozhang.alerts.rules import Rules
from daozhang.correlate.engine import analyse_chunks
from daozhang.correlate.finding import Finding
from daozhang.store import Store
from daozhang.units import fen_to_yuan


def unpaid_fen(f: Finding) -> int:
    return f.short_fen or f.amount_fen


MONEY_RULES = ("unexplained_unpaid", "acquirer_day_unpaid")


def evaluate_money(store: Store, rules: Rules, now: float, out: Verdict, due: bool = True) -> None:
    """`due`: False between the money rounds (`[money] every_minutes`): nothing is read and
    the money alerts stay as they are."""
    if not any(rules.on(rule) for rule in MONEY_RULES):
        return
    if not due:
        out.kept.update(MONEY_RULES)
        return
    # A merchant range at a time (correlate/stream.py), keeping only the gaps: memory bounded
    # by what is unpaid, not by the store.
    _, found = analyse_chunks(store, as_of=now)
    gaps = [
        f
        for chunk in found
        for f in chunk.findings
        if f.kind == "transaction" and f.status == "gap"
    ]
    if rules.on("unexplained_unpaid"):
        unknown = [f for f in gaps if f.cause == "unknown"]
        total = sum(unpaid_fen(f) for f in unknown)
        if unknown and total >= round(rules.get("unexplained_unpaid", "yuan") * 100):
            merchants = len({f.mid for f in unknown})
            out.add(
                Alert(
                    "unexplained_unpaid",
                    "fleet",
                    f"原因不明的未到账 ¥{fen_to_yuan(total)}:{len(unknown)} 笔,{merchants} 个商户",
                    f"unexplained unpaid ¥{fen_to_yuan(total)}: {len(unknown)} transactions, "
                    f"{merchants} merchants",
                    {
                        "unpaid_fen": total,
                        "unpaid_yuan": fen_to_yuan(total),
                        "transactions": len(unknown),
                        "merchants": merchants,
                    },
                )
            )
    if rules.on("acquirer_day_unpaid"):
        least = int(rules.get("acquirer_day_unpaid", "merchants"))
        groups: dict[tuple[str, date | None], list[Finding]] = defaultdict(list)
        for f in gaps:
            if f.cause == "acquirer_side":
                groups[(f.acquirer, f.expected_date)].append(f)
        for (acquirer, day), members in sorted(groups.items(), key=lambda g: str(g[0])):
            merchants = len({f.mid for f in members})
            if merchants < least:
                continue
            total = sum(unpaid_fen(f) for f in members)
            name = acquirer or "?"
            out.add(
                Alert(
                    "acquirer_day_unpaid",
                    f"{name}:{day}",
                    f"收单机构 {name} {day} 应结算日:{merchants} 个商户未到账,"
                    f"共 ¥{fen_to_yuan(total)}(终端网络正常)",
                    f"acquirer {name}, due {day}: {merchants} merchants unpaid, "
                    f"¥{fen_to_yuan(total)} in all (their terminals were healthy)",
                    {
                        "acquirer": name,
                        "day": str(day),
                        "merchants": merchants,
                        "unpaid_fen": total,
                        "unpaid_yuan": fen_to_yuan(total),
                    },
                )
            )
