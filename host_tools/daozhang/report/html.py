"""The HTML report: one self-contained file (inline CSS, JS and data; no CDN, works offline).

The page carries its data as JSON and draws each device's timeline as SVG in the browser:
link up/down bands with the failing stage, signal (RSSI), and each transaction captured on the
terminal, uploaded to the collector, and settled — gap transactions marked in red.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from datetime import datetime, time
from importlib import resources
from pathlib import Path
from typing import Any

from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.data import Data
from daozhang.correlate.render import explain
from daozhang.report.export import as_of_text
from daozhang.report.table import summary
from daozhang.settle.rows import BEIJING, fen_to_yuan

MAX_DEVICES = 60  # the devices with the most missing money first


def _payload(as_of: int, data: Data, findings: list[Finding]) -> dict[str, Any]:
    received = {(r.mid, r.tid, r.bat, r.trc): r.received_at for r in data.receipts}
    per_dev: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.kind == "transaction" and f.dev:
            per_dev[f.dev].append(f)

    def missing(dev: str) -> int:
        return sum(f.amount_fen for f in per_dev[dev] if f.status in ("gap", "settled_short"))

    devices = []
    start = min((f.lt for f in findings if f.lt), default=as_of - 86400)

    def network(dev: str) -> int:
        return sum(1 for f in per_dev[dev] if f.cause in NETWORK_CAUSES)

    # Network-caused trouble first (the question this report answers), then missing money.
    for dev in sorted(per_dev, key=lambda d: (-network(d), -missing(d), d))[:MAX_DEVICES]:
        line = data.timelines.get(dev)
        txns = []
        for f in sorted(per_dev[dev], key=lambda f: f.lt or 0):
            settled = None
            if f.status in ("settled", "settled_short") and f.expected_date:
                settled = int(datetime.combine(f.expected_date, time(12), BEIJING).timestamp())
            txns.append({
                "trc": f.trc, "lt": f.lt, "up": received.get((f.mid, f.tid, f.bat, f.trc)),
                "settled": settled, "status": f.status, "cause": f.cause, "data": f.data,
                "yuan": fen_to_yuan(f.amount_fen),
            })  # fmt: skip
        devices.append({
            "dev": dev, "mid": per_dev[dev][0].mid, "tid": per_dev[dev][0].tid,
            "missing": fen_to_yuan(missing(dev)),
            "outages": [[o.start, o.end or as_of, o.stage, o.why] for o in line.outages]
            if line else [],
            "signal": [[t, s.get("rssi")] for t, s in zip(line.signal_t, line.signal,
                                                          strict=True)] if line else [],
            "txns": txns,
        })  # fmt: skip
    problems = [
        {"mid": f.mid, "tid": f.tid, "trc": f.trc, "dev": f.dev, "rrn": f.rrn,
         "yuan": fen_to_yuan(f.amount_fen), "status": f.status, "cause": f.cause,
         "data": f.data, "network": f.cause in NETWORK_CAUSES, **explain(f)}
        for f in findings
        if f.kind == "transaction" and f.status in ("gap", "settled_short", "pending")
        and (f.status != "pending" or f.cause != "timing")
    ]  # fmt: skip
    return {
        "as_of": as_of_text(as_of), "t0": start, "t1": as_of,
        "summary": [{"cause": c, "status": s, "n": n, "yuan": fen_to_yuan(a),
                     "missing": fen_to_yuan(m), "network": c in NETWORK_CAUSES}
                    for c, s, n, a, m in summary(findings)],
        "devices": devices, "problems": problems,
    }  # fmt: skip


def _asset(name: str) -> str:
    return (resources.files("daozhang.report") / name).read_text(encoding="utf-8")


def _summary_rows(payload: dict[str, Any]) -> str:
    rows = []
    for s in payload["summary"]:
        cls = ' class="net"' if s["network"] else ""
        rows.append(f"<tr{cls}><td>{html.escape(s['cause'])}</td><td>{s['status']}</td>"
                    f"<td class=n>{s['n']}</td><td class=n>{s['yuan']}</td>"
                    f"<td class=n>{s['missing']}</td></tr>")  # fmt: skip
    return "\n".join(rows)


def _problem_rows(payload: dict[str, Any]) -> str:
    rows = []
    for p in payload["problems"]:
        cells = [p["mid"], p["tid"], p["trc"], p["dev"], p["rrn"], p["yuan"], p["status"],
                 p["cause"], p["data"], p["zh"] + " " + p["en"]]  # fmt: skip
        cls = ' class="net"' if p["network"] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
                    + "</tr>")  # fmt: skip
    return "\n".join(rows)


def render(as_of: int, data: Data, findings: list[Finding]) -> str:
    payload = _payload(as_of, data, findings)
    blob = json.dumps(payload, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>daozhang 到账 report — {html.escape(payload["as_of"])}</title>
<style>{_asset("report.css")}</style></head>
<body>
<h1>daozhang 到账 — as of {html.escape(payload["as_of"])}</h1>
<h2>Summary by cause (yuan) · 按原因汇总</h2>
<table id="summary"><thead><tr><th>cause / status</th><th>status</th><th>transactions</th>
<th>amount ¥</th><th>missing ¥</th></tr></thead><tbody>
{_summary_rows(payload)}
</tbody></table>
<p>Rows shaded orange are network-caused (网络原因).</p>
<h2>Device timelines · 设备时间线</h2>
<p class="legend"><span style="color:#5cb85c">■</span>link up
<span style="color:#d9534f">■</span>link down (hover: stage)
<span style="color:#337ab7">—</span>signal RSSI · rows: captured on the terminal,
uploaded to the collector, settled; <span style="color:#d9534f">●</span> gap transactions,
<span style="color:#f0ad4e">●</span> paid short,
○ receipt missing on the device</p>
<div id="timelines"></div>
<h2>Money not arrived · 未到账交易</h2>
<input id="filter" placeholder="filter: merchant, trace, cause…">
<table id="problems"><thead><tr><th>merchant</th><th>terminal</th><th>trace</th><th>device</th>
<th>rrn</th><th>¥</th><th>status</th><th>cause</th><th>data</th><th>why</th></tr></thead><tbody>
{_problem_rows(payload)}
</tbody></table>
<script type="application/json" id="dz-data">{blob}</script>
<script>{_asset("timeline.js")}</script>
</body></html>
"""


def write_html(path: Path, as_of: int, data: Data, findings: list[Finding]) -> None:
    path.write_text(render(as_of, data, findings), encoding="utf-8")
