"""The HTML report: a page with inline CSS, JS and data (no CDN, works offline), and beside
it a folder of the problem rows by group, loaded when a group is opened (groups.py): a
fleet's millions of rows are never embedded (issue 24). It is written from the chunks of the
streamed run (`HtmlReport`), keeping only sums, the payouts and devices it shows.

The page carries its data as JSON and draws each device's timeline as SVG in the browser
(`timeline.js`): over the business day of the device's sales, its outages as bands coloured by
the failing stage, its signal as a line, and each transaction where the terminal captured it,
where the collector received it and where the acquirer's settlement row puts it, the sales
lost to the network marked apart. What the data says is decided in Python (`timeline.py`,
`words.py`: every word a reader sees, Chinese first with English beside it); the script only
places marks.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.data import Data, Timeline
from daozhang.correlate.render import explain
from daozhang.correlate.stream import Chunk
from daozhang.report import timeline
from daozhang.report.export import as_of_text
from daozhang.report.groups import DIMENSIONS, PAGE, SHOWN_GROUPS, Groups
from daozhang.report.payouts import PayoutTally, PayoutView
from daozhang.report.table import Tally, missing_fen
from daozhang.units import fen_to_yuan
from daozhang.words import name

MAX_DEVICES = 60  # network-caused trouble first, then the most missing money

# The lanes of a timeline, top to bottom, as timeline.js draws them.
LANES = [
    ("网络", "link"),
    ("信号", "signal"),
    ("终端交易", "captured (terminal time)"),
    ("上传", "uploaded (host receive time)"),
    ("结算行", "settlement row"),
]


def _missing(fs: list[Finding]) -> int:
    return sum(f.amount_fen if f.status == "gap" else f.short_fen
               for f in fs if f.status in ("gap", "settled_short"))  # fmt: skip


def _network(fs: list[Finding]) -> int:
    return sum(1 for f in fs if f.cause in NETWORK_CAUSES)


class _Devices:
    """The devices whose timelines the page draws: network-caused trouble first (the question
    this report answers), then missing money. Each kept with its transactions and timeline;
    a device met again in a later chunk (it served merchants of two ranges) adds to its
    entry, if the entry is still kept."""

    def __init__(self, keep: int = MAX_DEVICES) -> None:
        self.keep = keep
        self.kept: dict[str, tuple[list[Finding], Timeline | None]] = {}

    def add(self, data: Data, findings: list[Finding]) -> None:
        per_dev: dict[str, list[Finding]] = defaultdict(list)
        for f in findings:
            if f.kind == "transaction" and f.dev:
                per_dev[f.dev].append(f)
        for dev, fs in per_dev.items():
            old = self.kept.get(dev)
            if old is not None:
                old[0].extend(fs)
            else:
                self.kept[dev] = (fs, data.timelines.get(dev))
        if len(self.kept) > self.keep + self.keep // 2:
            self._trim()

    def _trim(self) -> None:
        order = sorted(self.kept, key=lambda d: (-_network(self.kept[d][0]),
                                                 -_missing(self.kept[d][0]), d))  # fmt: skip
        self.kept = {d: self.kept[d] for d in order[: self.keep]}

    def payload(self, as_of: int) -> list[dict[str, Any]]:
        self._trim()
        return [timeline.device(dev, fs, line, as_of, _missing(fs))
                for dev, (fs, line) in self.kept.items()]  # fmt: skip


def _asset(name: str) -> str:
    return (resources.files("daozhang.report") / name).read_text(encoding="utf-8")


def _cell(text: str, code: str = "", cls: str = "") -> str:
    """A table cell; the code behind a name stays in its tooltip, for matching the JSON."""
    title = f' title="{html.escape(code)}"' if code else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{title}>{html.escape(text)}</td>"


def _summary_rows(rows: list[tuple[str, str, int, int, int]]) -> str:
    out = []
    for cause, status, n, amount, missing in rows:
        net = cause in NETWORK_CAUSES
        label = name(words.CAUSE, cause) if cause != status else name(words.STATUS, status)
        out.append(
            f"<tr{' class=net' if net else ''}>" + _cell(label, cause)
            + _cell(name(words.STATUS, status), status) + _cell(words.yes_no(net))
            + _cell(str(n), cls="n") + _cell(fen_to_yuan(amount), cls="n")
            + _cell(fen_to_yuan(missing), cls="n") + "</tr>"
        )  # fmt: skip
    return "\n".join(out)


def _group_tables(groups: Groups) -> str:
    """One table per dimension; a click on a row loads that group's rows (groups.js)."""
    out = []
    for dimension, (_, heading) in DIMENSIONS.items():
        found = groups.by_dimension(dimension)
        rows = []
        for g in found[:SHOWN_GROUPS]:
            title = f"{heading}: {g.label} ({g.n})"
            rows.append(
                f'<tr class="group" data-gid="{g.gid}" data-n="{g.n}"'
                f' data-title="{html.escape(title)}">'
                + _cell(g.label, g.key) + _cell(str(g.n), cls="n")
                + _cell(fen_to_yuan(g.amount), cls="n") + _cell(fen_to_yuan(g.missing), cls="n")
                + "</tr>"
            )  # fmt: skip
        rest = found[SHOWN_GROUPS:]
        if rest:
            n, left = sum(g.n for g in rest), fen_to_yuan(sum(g.missing for g in rest))
            rows.append(
                f"<tr><td colspan=4>另有{len(rest)}组{n}笔未列出（未到账¥{left}） {len(rest)} more"
                f" groups, {n} transactions not listed (¥{left} missing)</td></tr>"
            )
        out.append(
            f'<div class="groups" id="by-{dimension}"><h3>{html.escape(heading)}</h3><table>'
            "<thead><tr><th>组 group</th><th>笔数 n</th><th>金额 ¥</th><th>未到账 missing ¥</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )
    return "\n".join(out)


MAX_PAYOUTS = 300  # most missing money first; the rest are counted under the table


def _payout_rows(views: list[PayoutView], n_all: int, missing_all: int) -> str:
    out = []
    codes: dict[tuple[str, str], str] = {}
    for v in views[:MAX_PAYOUTS]:
        f = v.finding
        status, cause = (f.status, f.cause) if f is not None else ("", "")
        short = v.missing > 0
        main = [
            _cell(v.payout.payout_id),
            _cell(v.payout.mid),
            _cell(v.payout.settle_date),
            _cell(name(words.PAYOUT_STATE, v.payout.state), v.payout.state),
            _cell(name(words.CAUSE, cause) or name(words.STATUS, status), cause or status),
            _cell(fen_to_yuan(v.gross), cls="n"),
            _cell("−" + fen_to_yuan(v.fees), cls="n"),
            _cell("−" + fen_to_yuan(v.refunds), cls="n"),
            _cell("−" + fen_to_yuan(v.holds), cls="n"),
            _cell("=" + fen_to_yuan(v.net), cls="n"),
            _cell(fen_to_yuan(v.reached), cls="n"),
            _cell(fen_to_yuan(v.missing), cls="n miss" if short else "n"),
        ]
        why = explain(f) if f is not None else None
        note = (f"<p>{html.escape(why['zh'])}<br>{html.escape(why['en'])}</p>" if why else "") + (
            ""
            if v.adds_up
            else f"<p class=warn>明细合计 rows add up to ¥{fen_to_yuan(v.rows_net)} ≠ "
            f"计划 plan ¥{fen_to_yuan(v.payout.plan_fen)}</p>"
        )
        txns = "".join([_txn_row(f2, codes) for f2 in v.transactions])
        folded = f"{v.n_transactions}笔交易 transactions" + (
            f"，{v.n_bad}笔未到账 not paid" if v.n_bad else ""
        )
        out.append(
            f'<tbody class="payout{" short" if short else ""}" id="payout-'
            f'{html.escape(v.payout.payout_id)}"><tr>{"".join(main)}</tr>'
            f'<tr class="txns"><td colspan="12">{note}<details><summary>'
            f"{html.escape(folded)}</summary><table><thead><tr><th>终端 terminal</th>"
            "<th>流水号 trace</th><th>参考号 RRN</th><th>交易时间 time</th><th>金额 ¥</th>"
            "<th>未到账 missing ¥</th><th>到账状态 status</th><th>原因 cause</th></tr>"
            f"</thead><tbody>{txns}</tbody></table></details></td></tr></tbody>"
        )
    rest = n_all - len(views[:MAX_PAYOUTS])
    if rest:
        left = fen_to_yuan(missing_all - sum(v.missing for v in views[:MAX_PAYOUTS]))
        out.append(
            f"<tbody><tr><td colspan=12>另有{rest}笔出款未列出（未到账¥{left}）"
            f" {rest} more payouts not listed (¥{left} missing)</td></tr></tbody>"
        )
    return "\n".join(out)


def _txn_row(f: Finding, codes: dict[tuple[str, str], str]) -> str:
    """A transaction folded under its payout: terminal, trace, RRN, time, amount and missing
    money (digits: nothing to escape), status and cause (their cells made once, in `codes`)."""
    named = codes.get((f.status, f.cause))
    if named is None:
        named = codes[(f.status, f.cause)] = _cell(name(words.STATUS, f.status), f.status) + _cell(
            name(words.CAUSE, f.cause), f.cause
        )
    escape = html.escape
    return (
        f"<tr><td>{escape(f.tid)}</td><td>{escape(f.trc)}</td><td>{escape(f.rrn)}</td>"
        f"<td>{timeline.stamp(f.lt) if f.lt else ''}</td>"
        f'<td class="n">{fen_to_yuan(f.amount_fen)}</td>'
        f'<td class="n">{fen_to_yuan(missing_fen(f))}</td>{named}</tr>'
    )


def _legend() -> str:
    stages = "".join(
        f'<span><i class="band" style="background:{colour}"></i>{html.escape(name(words.STAGE, s))}'
        "</span>"
        for s, colour in timeline.STAGE_COLOUR.items()
    )  # fmt: skip
    return f"""<div class="legend" id="legend">
<p><b>断网(按失败阶段着色) outages, coloured by the failing stage:</b> {stages}
<span><i class="band" style="background:#dcefdc"></i>无断网记录 no outage journalled</span></p>
<p><span><i class="line"></i>信号 signal, dBm
(仅有CSQ时按3GPP 27.007换算为RSSI; CSQ alone is converted to RSSI)</span>
<span><svg width="14" height="14"><path d="M7 1 L13 7 L7 13 L1 7 Z" fill="#d62728"
stroke="#000"/></svg>网络原因未到账 not paid, network-caused</span>
<span><i class="dot" style="background:#d62728"></i>未到账 not paid</span>
<span><i class="dot" style="background:#f0ad4e"></i>到账不足 paid short</span>
<span><i class="dot" style="background:#4e79a7"></i>未到期 not due yet</span>
<span><i class="dot" style="background:#555"></i>已到账 paid</span>
<span><i class="dot hollow"></i>终端未上报 not reported by the terminal</span>
<span><i class="dot" style="background:#5bc0de"></i>上传 uploaded</span>
<span><i class="dot" style="background:#59a14f"></i>已清算 settled</span>
<span><i class="dot hollow"></i>未清算 not settled</span></p>
<p>时间均为北京时间 All times are Beijing time (UTC+8) · 悬停查看详情 hover for details</p>
</div>"""


class HtmlReport:
    """The report, written from a stream of chunks (correlate/stream.py): the page at
    `path`, with its sums, payouts and timelines, and the rows of each problem group in
    `path.d/` (groups.py), loaded when a group is opened."""

    def __init__(self, path: Path, as_of: int) -> None:
        self.path = path
        self.as_of = as_of
        self.rows_dir = path.with_name(path.name + ".d")
        self.groups = Groups(self.rows_dir)
        self.tally = Tally(0)
        self.payouts = PayoutTally(MAX_PAYOUTS, MAX_PAYOUTS)
        self.devices = _Devices()

    def add_chunk(self, chunk: Chunk) -> None:
        self.groups.add(chunk.findings)
        self.tally.add(chunk.findings)
        self.payouts.add(chunk.data, chunk.findings)
        self.devices.add(chunk.data, chunk.findings)

    def close(self) -> None:
        self.groups.close()
        self.path.write_text(self.render(), encoding="utf-8")

    def render(self) -> str:
        when = html.escape(as_of_text(self.as_of))
        payload = {"as_of": as_of_text(self.as_of), "lanes": LANES,
                   "devices": self.devices.payload(self.as_of)}  # fmt: skip
        blob = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
        n_problems = sum(g.n for g in self.groups.by_dimension("cause"))
        return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>daozhang 到账报告 report — {when}</title>
<style>{_asset("report.css")}</style></head>
<body data-rows="{html.escape(quote(self.rows_dir.name))}">
<h1>daozhang 到账报告 report — 截至 as of {when}</h1>
<h2>按原因汇总 Summary by cause (元 yuan)</h2>
<table id="summary"><thead><tr><th>原因或状态 cause or status</th><th>到账状态 status</th>
<th>网络原因 network</th><th>笔数 transactions</th><th>金额 amount ¥</th>
<th>未到账 missing ¥</th></tr></thead><tbody>
{_summary_rows(self.tally.summary())}
</tbody></table>
<p>橙色行为网络原因 Rows shaded orange are network-caused.</p>
<h2>出款 Payouts: 交易额 gross − 手续费 fees − 退货 refunds − 留存 holds = 应到 net,
对比实到 against what reached the account (元 yuan)</h2>
<table id="payouts"><thead><tr><th>出款 payout</th><th>商户 merchant</th><th>日期 date</th>
<th>出款状态 state</th><th>原因或状态 cause or status</th><th>交易额 gross</th>
<th>手续费 fees</th><th>退货 refunds</th><th>留存 holds</th><th>应到 net</th>
<th>实到 reached</th><th>未到账 missing</th></tr></thead>
{_payout_rows(self.payouts.result(), self.payouts.n, self.payouts.missing)}
</table>
<h2>设备时间线 Device timelines</h2>
{_legend()}
<div id="timelines"></div>
<h2>未到账交易 Money not arrived: {n_problems} 笔 transactions, 按组 by group</h2>
<p>点击一组查看其交易 Click a group to see its transactions
(每次{PAGE}笔 {PAGE} at a time).</p>
<div id="groups">
{_group_tables(self.groups)}
</div>
<h3 id="group-title">未选择组 no group opened</h3>
<p id="group-count"></p>
<input id="filter" placeholder="筛选 filter: 商户 merchant, 流水号 trace, 原因 cause…">
<table id="problems"><thead><tr><th>商户 merchant</th><th>终端 terminal</th>
<th>流水号 trace</th><th>设备 device</th><th>参考号 RRN</th><th>交易时间 time</th>
<th>应到日期 expected</th><th>金额 ¥</th><th>未到账 missing ¥</th><th>到账状态 status</th>
<th>原因 cause</th><th>终端记录 record</th><th>说明 why</th></tr></thead><tbody>
</tbody></table>
<button id="more" hidden>更多 more</button>
<script type="application/json" id="dz-data">{blob}</script>
<script>{_asset("timeline.js")}</script>
<script>{_asset("groups.js")}</script>
</body></html>
"""


def write_html(path: Path, as_of: int, data: Data, findings: list[Finding]) -> None:
    """The report of one in-memory run (`analyse`)."""
    out = HtmlReport(path, as_of)
    out.add_chunk(Chunk(data, findings))
    out.close()
