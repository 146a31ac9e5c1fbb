"""The HTML report's problem transactions by group, each group's rows in files of their own.

A fleet's report cannot embed millions of rows (issue 24). The page shows the problems summed
by cause, acquirer, sale day and device (count, amount and missing money in yuan); a group's
rows are written beside the page, in `REPORT.html.d/`, as small scripts of `PAGE` rows each
(`dz.rows("c3", 0, [...])`), and the page adds the first as a `<script>` when the group is
opened, the next ones on "more". A script tag, because the page is opened as a local file,
where Chromium refuses `fetch()` of a neighbour file. Rows are written as they stream past, a
buffer per group, so only the buffers and the sums stay in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.render import evidence, explain
from daozhang.correlate.render_fast import Renderer
from daozhang.report.table import missing_fen
from daozhang.report.timeline import stamp
from daozhang.units import BEIJING, fen_to_yuan
from daozhang.words import name

PAGE = 500  # rows a file, and rows a click shows
_BUFFERED = 20_000  # rows held before every buffer is written out
SHOWN_GROUPS = 200  # per dimension on the page, most missing money first

# Dimension: its letter in the group ids, its heading.
DIMENSIONS = {
    "cause": ("c", "按原因 by cause"),
    "acquirer": ("a", "按收单机构 by acquirer"),
    "day": ("d", "按交易日 by sale day (北京时间 Beijing)"),
    "device": ("v", "按设备 by device"),
}


def is_problem(f: Finding) -> bool:
    """A transaction whose money is missing or late (not one merely not due yet)."""
    return (
        f.kind == "transaction"
        and f.status in ("gap", "settled_short", "pending")
        and not (f.status == "pending" and f.cause == "timing")
    )


@dataclass
class Group:
    gid: str
    dimension: str
    key: str
    label: str
    n: int = 0
    amount: int = 0
    missing: int = 0
    buffer: list[str] = field(default_factory=list)
    buffer_page: int = 0


def _keys(f: Finding) -> dict[str, tuple[str, str]]:
    """The group of `f` in each dimension: (key, label)."""
    cause = f.cause or f.status
    cause_label = name(words.CAUSE, cause) if f.cause else name(words.STATUS, f.status)
    if f.lt:
        day = datetime.fromtimestamp(f.lt, BEIJING).date().isoformat()
    else:
        day = f.expected_date.isoformat() if f.expected_date else ""
    return {
        "cause": (cause, cause_label),
        "acquirer": (f.acquirer, f.acquirer or "(未知 unknown)"),
        "day": (day, day or "(未知 unknown)"),
        "device": (f.dev, f.dev or "(未知 unknown)"),
    }


def row(f: Finding, renderer: Renderer | None = None) -> list[object]:
    """A problem row as the page's script shows it (every word already in the reader's
    languages, money in yuan, times Beijing); with `renderer`, its explanation from there."""
    if renderer is None:
        why = explain(f)
        zh, en = why["zh"], why["en"]
    else:
        zh, en = renderer.explain(f)
    return [
        f.mid, f.tid, f.trc, f.dev, f.rrn,
        stamp(f.lt) if f.lt else "",
        f.expected_date.isoformat() if f.expected_date else "",
        fen_to_yuan(f.amount_fen), fen_to_yuan(missing_fen(f)),
        name(words.STATUS, f.status), name(words.CAUSE, f.cause), name(words.DATA, f.data),
        zh, en,
        [[e["source"], e["fact"]] for e in evidence(f)],
        1 if f.cause in NETWORK_CAUSES else 0,
    ]  # fmt: skip


class Groups:
    """The sums of every group and the files of their rows (module doc)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.js"):  # a previous report's rows
            old.unlink()
        self.groups: dict[tuple[str, str], Group] = {}
        self.counts = dict.fromkeys(DIMENSIONS, 0)
        self.buffered = 0
        self.renderer = Renderer()

    def add(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            if not is_problem(f):
                continue
            text = json.dumps(row(f, self.renderer), ensure_ascii=False, separators=(",", ":"))
            short = missing_fen(f)
            for dimension, (key, label) in _keys(f).items():
                g = self.groups.get((dimension, key))
                if g is None:
                    gid = f"{DIMENSIONS[dimension][0]}{self.counts[dimension]}"
                    self.counts[dimension] += 1
                    g = self.groups[(dimension, key)] = Group(gid, dimension, key, label)
                page = g.n // PAGE
                if g.buffer and g.buffer_page != page:
                    self._flush(g)
                g.buffer_page = page
                g.buffer.append(text)
                g.n += 1
                g.amount += f.amount_fen
                g.missing += short
                self.buffered += 1
        if self.buffered >= _BUFFERED:
            self.close()

    def _flush(self, g: Group) -> None:
        path = self.folder / f"{g.gid}-{g.buffer_page}.js"
        with path.open("a", encoding="utf-8") as out:
            out.write(f'dz.rows("{g.gid}",{g.buffer_page},[{",".join(g.buffer)}]);\n')
        self.buffered -= len(g.buffer)
        g.buffer = []

    def close(self) -> None:
        """Every buffered row written out."""
        for g in self.groups.values():
            if g.buffer:
                self._flush(g)

    def by_dimension(self, dimension: str) -> list[Group]:
        """The groups of one dimension, most missing money first (days: newest first)."""
        found = [g for (d, _), g in self.groups.items() if d == dimension]
        if dimension == "day":
            return sorted(found, key=lambda g: g.key, reverse=True)  # newest day first
        return sorted(found, key=lambda g: (-g.missing, -g.n, g.key))
