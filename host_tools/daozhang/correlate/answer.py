"""What support reads aloud about one transaction (`daozhang lookup`), line by line, each line
in Chinese and in English: the amount in yuan, the sale's Beijing time, the result, the date
the money is expected with the rule that set it, the payout and its state, then `explain()`'s
sentence with the next step.

The rule is rebuilt from the policy's `Due` (settle type, business day, days off skipped) in
both languages, rather than translating the policy's English sentence.
"""

from __future__ import annotations

from datetime import date, datetime

from daozhang import words
from daozhang.correlate.data import Data
from daozhang.correlate.finding import Context, Finding
from daozhang.correlate.render import explain, zh_date
from daozhang.settle.policy import Due
from daozhang.units import BEIJING

Line = tuple[str, str]  # (zh, en)


def yuan(fen: int) -> str:
    """¥1,234.50: as it is said, thousands grouped."""
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def when(t: int | None) -> str:
    if t is None:
        return "?"
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def due_of(f: Finding, data: Data, ctx: Context) -> Due | None:
    """The policy's answer for the sale, as classify asked it (terminal.receipt, classify's
    rows without a receipt)."""
    m = data.merchants.get(f.mid)
    acquirer = m.acquirer if m else ""
    r, d = f.receipt, f.row
    if r is not None:
        sm = r.sm or (m.settle_type if m else "") or ctx.policies.for_acquirer(acquirer).settle_type
        return ctx.due(r.lt if r.lt is not None else r.t, sm, acquirer, r.sd or "")
    if d is not None:
        sm = d.settle_type or (m.settle_type if m else "T1")
        return ctx.due(d.txn_time, sm, acquirer, "")
    return None


def _zh_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def rule(due: Due, sold: int | None, expected: date | None) -> Line:
    """ "T1，遇2天非工作日顺延至10月8日" / "T1: next working day, 2 day(s) off skipped"."""
    zh, en = "", ""
    if due.rule.startswith("DE15"):
        zh = f"终端结算日期{_zh_day(due.business_day)}，"
        en = f"the terminal's settle date {due.business_day}; "
    elif sold is not None and due.business_day > datetime.fromtimestamp(sold, BEIJING).date():
        zh = f"日切后交易计入{_zh_day(due.business_day)}，"
        en = f"after the day cut, counts for {due.business_day}; "
    gap = (due.expected - due.business_day).days
    if due.settle_type == "T1":
        zh += "T1下一个工作日"
        en += "T1: next working day"
        if gap > 1:
            zh += f"，遇{gap - 1}天非工作日顺延至{_zh_day(due.expected)}"
            en += f", {gap - 1} day(s) off skipped, moved to {due.expected}"
    elif due.settle_type == "D1":
        zh += "D1次日到账"
        en += "D1: next calendar day"
    elif gap == 0:
        zh += "D0当日到账"
        en += "D0: same day"
    else:
        zh += "D0窗口外，次日到账"
        en += "D0 outside its window: next day"
    if expected is not None and expected != due.expected:
        zh += f"；收单方清算日期为{_zh_day(expected)}"
        en += f"; the acquirer settled it for {expected}"
    return zh, en


def lines(f: Finding, due: Due | None) -> list[Line]:
    """The answer for one transaction finding, top to bottom."""
    out: list[Line] = []
    sold = when(f.lt)
    out.append((f"金额{yuan(f.amount_fen)}，交易时间{sold}（北京时间）",
                f"{yuan(f.amount_fen)}, sold at {sold} Beijing time"))  # fmt: skip
    rrn = f"，参考号{f.rrn}" if f.rrn else ""
    out.append(
        (
            f"商户号{f.mid}，终端号{f.tid}，批次号{f.bat}，凭证号{f.trc}{rrn}",
            f"merchant {f.mid}, terminal {f.tid}, batch {f.bat}, trace {f.trc}"
            + (f", RRN {f.rrn}" if f.rrn else ""),
        )
    )
    s_zh, s_en = words.zh_en(words.STATUS, f.status)
    if f.cause:
        c_zh, c_en = words.zh_en(words.CAUSE, f.cause)
        s_zh, s_en = f"{s_zh}，原因：{c_zh}", f"{s_en}, because: {c_en}"
    out.append((f"结果：{s_zh}", f"Result: {s_en}"))
    if f.data != "complete":
        d_zh, d_en = words.zh_en(words.DATA, f.data)
        out.append((f"终端记录：{d_zh}", f"Terminal record: {d_en}"))
    if f.status != "not_expected" and f.expected_date is not None:
        r_zh, r_en = rule(due, f.lt, f.expected_date) if due is not None else ("", "")
        out.append(
            (
                f"预计到账日：{zh_date(f.expected_date)}" + (f"（{r_zh}）" if r_zh else ""),
                f"Expected on {f.expected_date}" + (f" ({r_en})" if r_en else ""),
            )
        )
    out.append(_payout(f))
    text = explain(f)
    out.append((text["zh"], text["en"]))
    return out


_STATE: dict[str, Line] = {
    "paid": ("已出款", "paid"),
    "in_progress": ("处理中", "in progress"),
    "failed": ("出款失败", "failed"),
    "bounced": ("被退回", "bounced"),
    "frozen": ("已冻结", "frozen"),
}


def _payout(f: Finding) -> Line:
    p = f.payout
    if p is None:
        if f.payout_id:
            return (f"出款：{f.payout_id}（不在已导入的出款文件中）",
                    f"Payout: {f.payout_id} (in no imported payout file)")  # fmt: skip
        return ("出款：尚无出款记录", "Payout: none yet")
    zh, en = _STATE.get(p.state, (p.state, p.state))
    zh = (
        f"出款：{p.payout_id}（{p.settle_date}），{zh}，"
        f"计划{yuan(p.plan_fen)}，实付{yuan(p.real_fen)}"
    )
    en = (
        f"Payout: {p.payout_id} ({p.settle_date}), {en}, {yuan(p.plan_fen)} planned,"
        f" {yuan(p.real_fen)} paid"
    )
    if p.fail_reason:
        zh += f"，原因：{p.fail_reason}"
        en += f", reason: {p.fail_reason}"
    return zh, en
