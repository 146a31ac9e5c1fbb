"""The HTML report: one self-contained file (inline CSS, JS and data; no CDN, works offline).

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

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.data import Data
from daozhang.correlate.render import evidence, explain
from daozhang.report import timeline
from daozhang.report.export import as_of_text
from daozhang.report.payouts import PayoutView, views
from daozhang.report.table import missing_fen, summary
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


def _payload(as_of: int, data: Data, findings: list[Finding]) -> dict[str, Any]:
    per_dev: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.kind == "transaction" and f.dev:
            per_dev[f.dev].append(f)

    def network(dev: str) -> int:
        return sum(1 for f in per_dev[dev] if f.cause in NETWORK_CAUSES)

    # Network-caused trouble first (the question this report answers), then missing money.
    order = sorted(per_dev, key=lambda d: (-network(d), -_missing(per_dev[d]), d))
    devices = [
        timeline.device(dev, per_dev[dev], data.timelines.get(dev), as_of, _missing(per_dev[dev]))
        for dev in order[:MAX_DEVICES]
    ]
    return {"as_of": as_of_text(as_of), "lanes": LANES, "devices": devices}


def _asset(name: str) -> str:
    return (resources.files("daozhang.report") / name).read_text(encoding="utf-8")


def _cell(text: str, code: str = "", cls: str = "") -> str:
    """A table cell; the code behind a name stays in its tooltip, for matching the JSON."""
    title = f' title="{html.escape(code)}"' if code else ""
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{title}>{html.escape(text)}</td>"


def _summary_rows(findings: list[Finding]) -> str:
    rows = []
    for cause, status, n, amount, missing in summary(findings):
        net = cause in NETWORK_CAUSES
        label = name(words.CAUSE, cause) if cause != status else name(words.STATUS, status)
        rows.append(
            f"<tr{' class=net' if net else ''}>" + _cell(label, cause)
            + _cell(name(words.STATUS, status), status) + _cell(words.yes_no(net))
            + _cell(str(n), cls="n") + _cell(fen_to_yuan(amount), cls="n")
            + _cell(fen_to_yuan(missing), cls="n") + "</tr>"
        )  # fmt: skip
    return "\n".join(rows)


def _problem_rows(findings: list[Finding]) -> str:
    problems = [
        f
        for f in findings
        if f.kind == "transaction"
        and f.status in ("gap", "settled_short", "pending")
        # not due yet by the rules: nothing is wrong
        and not (f.status == "pending" and f.cause == "timing")
    ]
    problems.sort(key=lambda f: (-missing_fen(f), -f.amount_fen, f.mid, f.trc))
    rows = []
    for f in problems:
        net = f.cause in NETWORK_CAUSES
        cells = [_cell(c) for c in (f.mid, f.tid, f.trc, f.dev, f.rrn)]
        cells += [
            _cell(timeline.stamp(f.lt) if f.lt else ""),
            _cell(f.expected_date.isoformat() if f.expected_date else ""),
            _cell(fen_to_yuan(f.amount_fen), cls="n"),
            _cell(fen_to_yuan(missing_fen(f)), cls="n"),
            _cell(name(words.STATUS, f.status), f.status),
            _cell(name(words.CAUSE, f.cause), f.cause),
            _cell(name(words.DATA, f.data), f.data),
            f"<td>{_why(f)}</td>",
        ]
        rows.append(f"<tr{' class=net' if net else ''}>{''.join(cells)}</tr>")
    return "\n".join(rows)


def _why(f: Finding) -> str:
    """The explanation, and its evidence one click away."""
    why = explain(f)
    facts = "".join(
        f"<li><b>{html.escape(e['source'])}</b> {html.escape(e['fact'])}</li>" for e in evidence(f)
    )
    return (
        f"{html.escape(why['zh'])} {html.escape(why['en'])}"
        f"<details><summary>证据 evidence</summary><ul>{facts}</ul></details>"
    )


MAX_PAYOUTS = 300  # most missing money first; the rest are counted under the table


def _payout_rows(views: list[PayoutView]) -> str:
    out = []
    for v in views[:MAX_PAYOUTS]:
        f = v.finding
        status, cause = (f.status, f.cause) if f is not None else ("", "")
        bad = [t for t in v.transactions if t.status in ("gap", "settled_short")]
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
        txns = "".join(
            "<tr>"
            + "".join(
                _cell(c) for c in (f2.tid, f2.trc, f2.rrn, timeline.stamp(f2.lt) if f2.lt else "")
            )
            + _cell(fen_to_yuan(f2.amount_fen), cls="n")
            + _cell(fen_to_yuan(missing_fen(f2)), cls="n")
            + _cell(name(words.STATUS, f2.status), f2.status)
            + _cell(name(words.CAUSE, f2.cause), f2.cause)
            + "</tr>"
            for f2 in v.transactions
        )
        folded = f"{len(v.transactions)}笔交易 transactions" + (
            f"，{len(bad)}笔未到账 not paid" if bad else ""
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
    rest = views[MAX_PAYOUTS:]
    if rest:
        left = fen_to_yuan(sum(v.missing for v in rest))
        out.append(
            f"<tbody><tr><td colspan=12>另有{len(rest)}笔出款未列出（未到账¥{left}）"
            f" {len(rest)} more payouts not listed (¥{left} missing)</td></tr></tbody>"
        )
    return "\n".join(out)


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


def render(as_of: int, data: Data, findings: list[Finding]) -> str:
    payload = _payload(as_of, data, findings)
    blob = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    when = html.escape(payload["as_of"])
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>daozhang 到账报告 report — {when}</title>
<style>{_asset("report.css")}</style></head>
<body>
<h1>daozhang 到账报告 report — 截至 as of {when}</h1>
<h2>按原因汇总 Summary by cause (元 yuan)</h2>
<table id="summary"><thead><tr><th>原因或状态 cause or status</th><th>到账状态 status</th>
<th>网络原因 network</th><th>笔数 transactions</th><th>金额 amount ¥</th>
<th>未到账 missing ¥</th></tr></thead><tbody>
{_summary_rows(findings)}
</tbody></table>
<p>橙色行为网络原因 Rows shaded orange are network-caused.</p>
<h2>出款 Payouts: 交易额 gross − 手续费 fees − 退货 refunds − 留存 holds = 应到 net,
对比实到 against what reached the account (元 yuan)</h2>
<table id="payouts"><thead><tr><th>出款 payout</th><th>商户 merchant</th><th>日期 date</th>
<th>出款状态 state</th><th>原因或状态 cause or status</th><th>交易额 gross</th>
<th>手续费 fees</th><th>退货 refunds</th><th>留存 holds</th><th>应到 net</th>
<th>实到 reached</th><th>未到账 missing</th></tr></thead>
{_payout_rows(views(data, findings))}
</table>
<h2>设备时间线 Device timelines</h2>
{_legend()}
<div id="timelines"></div>
<h2>未到账交易 Money not arrived</h2>
<input id="filter" placeholder="筛选 filter: 商户 merchant, 流水号 trace, 原因 cause…">
<table id="problems"><thead><tr><th>商户 merchant</th><th>终端 terminal</th>
<th>流水号 trace</th><th>设备 device</th><th>参考号 RRN</th><th>交易时间 time</th>
<th>应到日期 expected</th><th>金额 ¥</th><th>未到账 missing ¥</th><th>到账状态 status</th>
<th>原因 cause</th><th>终端记录 record</th><th>说明 why</th></tr></thead><tbody>
{_problem_rows(findings)}
</tbody></table>
<script type="application/json" id="dz-data">{blob}</script>
<script>{_asset("timeline.js")}</script>
</body></html>
"""


def write_html(path: Path, as_of: int, data: Data, findings: list[Finding]) -> None:
    path.write_text(render(as_of, data, findings), encoding="utf-8")
