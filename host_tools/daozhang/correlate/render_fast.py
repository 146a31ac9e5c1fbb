"""render.py's text for a run's millions of findings, with what repeats made once (issue 24).

A streamed `correlate` writes every finding to JSON and CSV; render.py, a sentence at a time
with every argument checked for a time, cost more than the classification itself. `Renderer`
gives the same text, character for character (tests/correlate/test_render_fast.py holds it
against render.py for every cause, status and data value):

- the explanation after the facts (what the cause means, the next step) once per cause,
  status, expected date and data value (`render.explain_tail`); a paid sale's own facts are its
  time and amount, any other finding's come from `render.facts`;
- a payout's evidence once per payout and a policy's once per rule, as JSON text; the receipt
  and the settlement row fill their templates (finding.py) with only the numbers checked for a
  time, as render.time_text does;
- yuan strings and Beijing times from caches;
- a transaction's JSON line written around its values with the constant keys, in the order and
  spelling of `json.dumps(render.to_dict(f), ensure_ascii=False, separators=(",", ":"))`.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from json.encoder import encode_basestring  # what json.dumps uses with ensure_ascii=False
from typing import Any

from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.data import Detail, Payout, Receipt
from daozhang.correlate.finding import (
    CALENDAR_FACT,
    DAYS_OFF,
    PAYOUT_FACT,
    RECEIPT_FACT,
    ROW_FACT,
    ROW_FACT_JOINED,
    joined_by,
)
from daozhang.correlate.render import explain_tail, facts, time_text, to_dict
from daozhang.units import fen_to_yuan

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_TIME = 10**9  # render.time_text shows a number past this as a time
# Entries a cache keeps before it starts again: a streamed chunk (a merchant range) has a few
# hundred terminals and payouts, and they do not recur in later chunks; a larger cache would
# only keep dead payouts and strings alive (tens of MB at 10M receipts).
_CACHED = 5_000

yuan_text = lru_cache(maxsize=1 << 16)(fen_to_yuan)  # amounts recur across a fleet's sales


def _j(value: Any) -> str:
    """`value` as json.dumps writes it (strings and integers without its encoder's setup)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:  # finite: json writes float.__repr__
        return float.__repr__(value)
    return _DUMPS(value)


def _fact(source: str, fact: str) -> str:
    return '{"source":' + encode_basestring(source) + ',"fact":' + encode_basestring(fact) + "}"


class Renderer:
    """One run's renderer: its caches live as long as the run (module doc)."""

    def __init__(self) -> None:
        self._tails: dict[tuple[str, str, date | None, str], tuple[str, str]] = {}
        self._payouts: dict[int, tuple[Payout, str]] = {}
        self._rules: dict[str, str] = {}
        self._terminals: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        self._paths: dict[tuple[str, str, str, str, date | None], str] = {}

    def explain(self, f: Finding) -> tuple[str, str]:
        """render.explain(f) as (zh, en)."""
        key = (f.cause, f.status, f.expected_date, f.data)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = explain_tail(*key)
        if (
            f.kind == "transaction"
            and f.status == "settled"
            and (f.outage is None or f.cause not in NETWORK_CAUSES)
            and f.misconfig is None
            and f.reboot is None
            and not (f.held_fen and f.expected_date is not None)
            and f.notice is None
        ):  # what render.facts says of a paid sale with nothing else to tell
            when = time_text(f.lt) if f.lt else "?"
            amount = "¥" + yuan_text(f.amount_fen)
            return f"{when}的{amount}交易：{tail[0]}", f"The {amount} sale at {when}: {tail[1]}"
        zh, en = facts(f)
        return zh + tail[0], en + tail[1]

    def evidence_json(self, f: Finding, when: str | None = None) -> str:
        """render.evidence(f) as the JSON text of its list (`when`: time_text(f.lt), if made)."""
        r, d, p = f.receipt, f.row, f.payout
        rule = ""
        if f.rule:
            rule = self._rules.get(f.rule, "")
            if not rule:
                rule = self._rules[f.rule] = self._rule_json(f.rule)
        lt = ""
        if r is not None:
            lt = when if when is not None and r.lt == f.lt else time_text(r.lt)
        if r is not None and d is not None and p is not None and not f.extra and not f.also:
            # A paid sale's: its receipt, the policy's, its row and its payout.
            return (
                f'[{{"source":"receipt","fact":{encode_basestring(_receipt_fact(r, lt))}}},'
                f"{rule}{',' if rule else ''}"
                f'{{"source":"settlement_row","fact":{encode_basestring(_row_fact(d, r))}}},'
                f"{self._payout_json(p)}]"
            )
        parts = []
        if r is not None:
            parts.append(_fact("receipt", _receipt_fact(r, lt)))
        if rule:
            parts.append(rule)
        for src, template, args in f.extra or ():
            parts.append(_fact(src, template.format(*map(time_text, args))))
        if d is not None:
            parts.append(_fact("settlement_row", _row_fact(d, r)))
        if p is not None:
            parts.append(self._payout_json(p))
        for cause in f.also or ():
            parts.append(_fact("correlation", f"also applies (later on the path): {cause}"))
        return "[" + ",".join(parts) + "]"

    def _payout_json(self, p: Payout) -> str:
        """The payout's fact, made once per payout: its findings share the one object."""
        held = self._payouts.get(id(p))
        if held is not None and held[0] is p:
            return held[1]
        if len(self._payouts) >= _CACHED:
            self._payouts.clear()
        text = _fact("payout", _payout_fact(p))
        self._payouts[id(p)] = (p, text)  # the payout kept with it: its id is not reused
        return text

    def _rule_json(self, rule: str) -> str:
        """The policy's fact and the calendar's, when the rule skipped days off (as in
        Finding.evidence)."""
        if len(self._rules) >= _CACHED:
            self._rules.clear()
        text = _fact("policy", rule)
        off = DAYS_OFF.search(rule)
        if off is not None:
            text += "," + _fact("calendar", CALENDAR_FACT.format(off[1], off[2]))
        return text

    def json_line(self, f: Finding, zh: str, en: str) -> str:
        """`f` as the JSON file writes it: json.dumps(render.to_dict(f), ensure_ascii=False,
        separators=(",", ":")), with (zh, en) its explanation (`explain`). The values a
        terminal's sales share (merchant, terminal, batch, device) and those a payout's share
        (payout, status, cause, data value, date) are encoded once, each with its keys."""
        if (
            f.kind != "transaction"
            or type(f.amount_fen) is not int
            or type(f.paid_fen) is not int
            or type(f.short_fen) is not int
        ):
            return _DUMPS(to_dict(f))
        text = encode_basestring  # a TypeError when a field is not text: then as to_dict says
        try:
            key = (f.mid, f.tid, f.bat, f.dev)
            terminal = self._terminals.get(key)
            if terminal is None:
                if len(self._terminals) >= _CACHED:
                    self._terminals.clear()
                terminal = self._terminals[key] = (
                    f'{{"kind":"transaction","mid":{text(f.mid)},"tid":{text(f.tid)},'
                    f'"bat":{text(f.bat)},"trc":',
                    f',"dev":{text(f.dev) if f.dev else "null"},"rrn":',
                )
            path_key = (f.payout_id, f.status, f.cause, f.data, f.expected_date)
            path = self._paths.get(path_key)
            if path is None:
                if len(self._paths) >= _CACHED:
                    self._paths.clear()
                path = self._paths[path_key] = self._path_json(f)
            when = time_text(f.lt) if f.lt else None
            return (
                f"{terminal[0]}{text(f.trc)}{terminal[1]}{text(f.rrn) if f.rrn else 'null'}"
                f',"amount_fen":{f.amount_fen},"txn_time":{text(when) if when else "null"}'
                f'{path}{f.paid_fen},"short_fen":{f.short_fen},'
                f'"evidence":{self.evidence_json(f, when)},'
                f'"confidence":{_j(round(f.confidence, 2))},'
                f'"explain":{{"zh":{text(zh)},"en":{text(en)}}}}}'
            )
        except TypeError:
            return _DUMPS(to_dict(f))

    @staticmethod
    def _path_json(f: Finding) -> str:
        """From `"payout_id"` to `"paid_fen":` (json_line)."""
        text = encode_basestring
        cause = ',"cause":' + text(f.cause) if f.cause else ""
        day = f.expected_date
        return (
            f',"payout_id":{text(f.payout_id) if f.payout_id else "null"},'
            f'"status":{text(f.status)}{cause},"data":{text(f.data)},'
            f'"network_caused":{"true" if f.cause in NETWORK_CAUSES else "false"},'
            f'"expected_date":{text(day.isoformat()) if day else "null"},"paid_fen":'
        )


# Only the fields that may hold numbers go through render.time_text (a number past 10^9 is a
# time); the others are text, which `format` writes as _time would.
def _receipt_fact(r: Receipt, lt: str) -> str:
    amt = r.amt if type(r.amt) is int and r.amt <= _TIME else time_text(r.amt)
    return RECEIPT_FACT.format(r.mid, r.tid, r.bat, r.trc, r.typ, amt, lt, r.st)


def _row_fact(d: Detail, r: Receipt | None) -> str:
    template = ROW_FACT_JOINED if r else ROW_FACT
    joined = joined_by(r, d) if r else ""
    try:  # numbers as they are when none is a time (the common case, a call saved on each)
        if (
            d.file_id <= _TIME
            and d.line <= _TIME
            and d.amt <= _TIME
            and d.fee <= _TIME
            and (d.settle_amt <= _TIME)
        ):
            return template.format(d.settle_date, d.file_id, d.line, d.check_flag, d.amt, d.fee,
                                   d.settle_amt, joined)  # fmt: skip
    except TypeError:  # a missing number: as time_text shows it
        pass
    return template.format(
        d.settle_date, time_text(d.file_id), time_text(d.line), d.check_flag, time_text(d.amt),
        time_text(d.fee), time_text(d.settle_amt), joined,
    )  # fmt: skip


def _payout_fact(p: Payout) -> str:
    return PAYOUT_FACT.format(
        p.payout_id, p.settle_date, p.state, time_text(p.plan_fen), time_text(p.fee_fen),
        time_text(p.suspend_fen), time_text(p.retained_fen), time_text(p.real_fen), p.fail_reason,
    )  # fmt: skip
