"""A finding as DESIGN §2.2 shows it: evidence sentences with their sources, and one plain
sentence of explanation in Chinese and in English."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.units import BEIJING, beijing_text, fen_to_yuan

_EXPLAIN: dict[str, tuple[str, str]] = {
    "settled": (
        "这笔款项已于{date}全额到账（已扣除约定手续费）。",
        "Paid in full on {date}, net of the agreed fee.",
    ),
    "not_expected": (
        "这笔交易未成功或已被撤销，不会有款项入账。",
        "Declined or voided by the merchant: no money is expected.",
    ),
    "network_reversed": (
        "终端未收到应答并已冲正，持卡人款项会退回，商户不会收到这笔钱。",
        "No response reached the terminal, which reversed the sale: the "
        "cardholder is refunded and the merchant will not be paid.",
    ),
    "reversal_pending": (
        "终端显示失败，但冲正尚未送达收单方，这笔交易仍可能被结算。",
        "The terminal showed a failure but its reversal has not reached the "
        "acquirer: the sale may still settle.",
    ),
    "reversal_failed": (
        "冲正失败：终端显示失败，收单方可能仍认为交易成功。",
        "The reversal failed: the terminal showed a failure, the acquirer may still hold the sale.",
    ),
    "duplicate_charge_risk": (
        "无应答后同卡同金额再次刷卡，持卡人可能被扣款两次。",
        "Re-swiped with the same card and amount after no response: the "
        "cardholder may be charged twice.",
    ),
    "late_upload": (
        "离线交易因断网在日切后才送达收单方，到账顺延至{date}。",
        "An offline approval reached the acquirer after the day cut because of "
        "an outage: the money moves to {date}.",
    ),
    "terminal_fault": (
        "终端自身故障（重启、看门狗复位、掉电或固件问题）使这笔交易失败或记录丢失，商户可能收不到这笔钱。",
        "The terminal itself failed (a restart, watchdog reset, brownout or firmware fault) and"
        " broke or lost the sale: the merchant may not be paid for it.",
    ),
    "terminal_misconfigured": (
        "终端设置的商户号或终端号与登记的不一致，这笔钱可能记到了别的商户名下或未被清算。",
        "The terminal is set up with a merchant or terminal number that is not the registered"
        " one: the money may have gone to another merchant or not been cleared.",
    ),
    "preauth_open": (
        "预授权未完成，已于{date}过期失效，不会有款项入账。",
        "The pre-authorisation was never completed and lapsed on {date}: no money will come.",
    ),
    # Not a cause of its own: `preauth_open` while it may still be completed.
    "preauth_open_pending": (
        "预授权尚未完成，完成前不会入账；{date}过期。",
        "The pre-authorisation is not completed yet: no money until it is; it lapses on {date}.",
    ),
    "timing": (
        "尚未到结算日，预计{date}到账（日切、周末/节假日或T1规则）。",
        "Not due yet: expected on {date} (day cut, weekend/holiday, T1 or D0 rules).",
    ),
    "settlement_delay": (
        "商户开通了延时结算或保证金留存，按约定这笔款项在{date}到账，不是少付。",
        "The merchant's delayed-settlement or reserve setting holds this money until {date}:"
        " it is not missing.",
    ),
    "file_missing": (
        "{date}的结算文件尚未导入，无法确认是否到账。",
        "The settlement file for {date} has not been imported: cannot tell yet.",
    ),
    "account_problem": (
        "出款失败或被退回：商户结算账户异常（冻结或销户）。",
        "The payout failed or bounced: the merchant's account is frozen or closed.",
    ),
    "risk_hold": (
        "款项被风控冻结、暂缓或留存，到账金额不足。",
        "Frozen, suspended or retained by risk control: less or nothing was paid.",
    ),
    "fee": (
        "到账金额少于预期，差额由额外手续费（如D0加收）造成。",
        "Paid short: an extra charge (such as a D0 surcharge) explains the difference.",
    ),
    "bank_delay": (
        "收单机构已出款，但超过银行通常入账时间仍未到账（出款日{date}），延迟在银行端。",
        "The acquirer paid it out on {date}, but the bank has not credited it within its"
        " usual time: the delay is at the bank.",
    ),
    "acquirer_maintenance": (
        "收单机构在公告的系统维护/升级期间暂停了清算或出款，款项未按期到账（原定{date}）。",
        "The acquirer paused clearing or payouts during its announced maintenance or upgrade:"
        " the money did not arrive as planned (due {date}).",
    ),
    "acquirer_side": (
        "同一收单机构同日多家商户未到账而设备正常，问题在收单方。",
        "Many merchants of one acquirer unpaid on the same day while their "
        "devices were healthy: the problem is at the acquirer.",
    ),
    "unknown": (
        "已到期但未找到结算记录，原因不明，请联系收单机构。",
        "Due but not in the acquirer's records, cause unknown: ask the acquirer.",
    ),
}


def time_text(value: Any) -> str:
    """An evidence argument as text: a number past 10^9 is a unix time, shown in Beijing."""
    kind = type(value)  # by exact type: millions of calls a run, and a bool is no time
    if kind is str:
        return str(value)
    if (kind is int or kind is float) and value > 10**9:
        return beijing_text(int(value))
    return str(value)


def evidence(f: Finding) -> list[dict[str, str]]:
    out = [
        {"source": src, "fact": template.format(*(time_text(a) for a in args))}
        for src, template, args in f.evidence
    ]
    for cause in f.also or ():
        out.append({"source": "correlation", "fact": f"also applies (later on the path): {cause}"})
    return out


# What to do next, per cause or status (then per data value): what support reads out.
_NEXT: dict[str, tuple[str, str]] = {
    "settled": ("无需处理。", "Nothing to do."),
    "settled_short": ("请核对到账明细中的扣减项。", "Check the deductions in the payout."),
    "not_expected": (
        "无需处理；如持卡人称已被扣款，请核对该笔是否已撤销。",
        "Nothing to do; if the cardholder says they were charged, check it was voided.",
    ),
    "network_reversed": (
        "请商户向持卡人重新收款（原交易的钱会退回持卡人）。",
        "Ask the cardholder to pay again (the first charge goes back to them).",
    ),
    "reversal_pending": (
        "请先向收单机构确认该笔是否已冲正，确认前不要重复收款。",
        "Ask the acquirer whether the sale was reversed before charging again.",
    ),
    "reversal_failed": (
        "请联系收单机构人工冲正或确认入账。",
        "Ask the acquirer to reverse it by hand or confirm it will be paid.",
    ),
    "duplicate_charge_risk": (
        "请核对持卡人是否被扣款两次，如是请为其办理退货。",
        "Check whether the cardholder was charged twice; refund one if so.",
    ),
    "late_upload": ("预计{date}到账，无需处理。", "Expected on {date}: nothing to do."),
    "terminal_fault": (
        "请先向收单机构确认持卡人是否被扣款，未扣款则请商户重新收款；并检查终端供电和固件，必要时报修。",
        "Ask the acquirer whether the cardholder was charged; if not, charge again. Check the"
        " terminal's power supply and firmware, and have it repaired if it keeps restarting.",
    ),
    "terminal_misconfigured": (
        "请更正终端的商户号和终端号（重新下载参数），并向收单机构查询这笔交易记到了哪个商户。",
        "Correct the terminal's merchant and terminal numbers (reload its parameters) and ask"
        " the acquirer which merchant this sale was credited to.",
    ),
    "preauth_open": (
        "如已提供商品或服务，请商户重新向持卡人收款。",
        "If the goods or service were provided, the merchant should charge the cardholder again.",
    ),
    "preauth_open_pending": (
        "请商户在{date}前完成或撤销该预授权。",
        "Complete or cancel the pre-authorisation before {date}.",
    ),
    "timing": ("预计{date}到账，无需处理。", "Expected on {date}: nothing to do."),
    "settlement_delay": (
        "预计{date}到账，无需处理；如需提前到账，请商户向收单机构申请调整结算设置。",
        "Expected on {date}: nothing to do; to be paid sooner, the merchant asks the acquirer"
        " to change the settlement setting.",
    ),
    "file_missing": (
        "请导入{date}的结算文件后再查询。",
        "Import the settlement file for {date}, then ask again.",
    ),
    "account_problem": (
        "请商户联系开户行核实账户状态（冻结、挂失或销户）；如更换过结算卡，请确认已在收单机构变更，"
        "再向收单机构申请重新出款。",
        "Ask the merchant to check the account with their bank (frozen, reported lost or"
        " closed); if the settlement card was changed, make sure the acquirer has the new one,"
        " then ask the acquirer to pay out again.",
    ),
    "risk_hold": (
        "请商户联系收单机构风控部门，准备好交易凭证（签购单、发票或合同）申请解冻，并问清解冻时间。",
        "Ask the acquirer's risk team how and when the money is released; have the sale's"
        " proof ready (the slip, an invoice or the contract).",
    ),
    "fee": (
        "请核对商户费率及D0加收规则。",
        "Check the merchant's fee rate and D0 surcharge.",
    ),
    "bank_delay": (
        "请商户向收单机构索取该笔出款的银行流水号，再到开户行查询入账；如结算卡是二类账户，"
        "超过每日入账限额的部分会顺延入账。",
        "Ask the acquirer for the payout's bank trace number, then ask the merchant's bank; a"
        " class II settlement account credits only up to its daily limit, the rest later.",
    ),
    "acquirer_maintenance": (
        "请联系收单机构确认维护结束后的补清算、补出款日期；终端和网络正常，无需重新收款。",
        "Ask the acquirer when it will clear and pay out after the maintenance; the terminal"
        " and network were fine, do not charge the cardholder again.",
    ),
    "acquirer_side": (
        "请联系收单机构核实{date}的清算情况；终端和网络正常。",
        "Ask the acquirer about its settlement of {date}; the terminals and network were fine.",
    ),
    "unknown": (
        "请商户提供签购单上的凭证号和参考号，联系收单机构核实该笔交易。",
        "Ask the acquirer about this transaction, with the trace and reference numbers from"
        " the slip.",
    ),
}
_DATA_NEXT: dict[str, tuple[str, str]] = {
    "still_buffered": (
        "终端还有未上传的记录：请检查终端网络并保持开机，待其补传。",
        "The terminal still holds unsent records: check its network and keep it powered.",
    ),
    "device_data_loss": (
        "终端上的这段记录已损坏丢失，以收单机构记录为准。",
        "The terminal lost these records: go by the acquirer's record.",
    ),
    "no_receipt": (
        "终端未上报这笔交易：请检查终端的商户号和终端号设置。",
        "The terminal never reported this sale: check its merchant and terminal numbers.",
    ),
    "refused": (
        "采集端拒收了这笔记录：请查看隔离记录（daozhang quarantine）。",
        "The collector refused this record: see the quarantine (daozhang quarantine).",
    ),
}


def explain(f: Finding) -> dict[str, str]:
    """One paragraph a support agent can read aloud, Chinese and English: what the money is,
    why, the facts that say so (amount, time, expected date, payout, outage), what to do."""
    facts_zh, facts_en = facts(f)
    tail_zh, tail_en = explain_tail(f.cause, f.status, f.expected_date, f.data)
    return {"zh": facts_zh + tail_zh, "en": facts_en + tail_en}


def explain_tail(cause: str, status: str, expected: date | None, data: str) -> tuple[str, str]:
    """The explanation after the finding's own facts: what the cause means and the next step.
    It depends on these four values alone, so a run's millions of findings share a few
    hundred (render_fast.py makes each once)."""
    key = cause or status
    if key == "preauth_open" and status == "pending":
        key = "preauth_open_pending"
    if key not in _EXPLAIN:
        key = "settled" if status in ("settled", "settled_short") else "unknown"
    # Read aloud, "2026年10月8日" is a date; "2026-10-08" is a string of digits.
    day_en = expected.isoformat() if expected else "?"
    day_zh = zh_date(expected) if expected else "?"
    zh_head, en_head = _EXPLAIN[key]
    head_zh, head_en = zh_head.format(date=day_zh), en_head.format(date=day_en)
    next_key = key if key in _NEXT else status
    zh_next, en_next = _NEXT.get(next_key, _NEXT["unknown"])
    next_zh, next_en = zh_next.format(date=day_zh), en_next.format(date=day_en)
    zh = f"{head_zh}下一步：{next_zh}"
    en = f"{head_en} Next: {next_en}"
    if data in _DATA_NEXT:
        zh += _DATA_NEXT[data][0]
        en += " " + _DATA_NEXT[data][1]
    return zh, en


def facts(f: Finding) -> tuple[str, str]:
    """The concrete facts first: which money, when, and what the path says about it."""
    if f.kind == "payout":
        zh = f"出款{f.payout_id}（计划{yuan(f.plan_fen)}，实到{yuan(f.paid_fen)}）："
        en = f"Payout {f.payout_id} ({yuan(f.plan_fen)} planned, {yuan(f.paid_fen)} paid): "
    else:
        when = time_text(f.lt) if f.lt else "?"
        zh = f"{when}的{yuan(f.amount_fen)}交易："
        en = f"The {yuan(f.amount_fen)} sale at {when}: "
    outage = f.outage
    if outage is not None and f.cause in NETWORK_CAUSES:
        stage_zh, stage_en = words.zh_en(words.STAGE, outage.stage)
        length = "" if outage.end is None else f"{max(0, outage.end - outage.start) // 60}"
        zh += f"终端在{time_text(outage.start)}断网（{stage_zh}失败"
        zh += f"，持续{length}分钟）。" if length else "，未恢复）。"
        en += f"the terminal lost its link at {time_text(outage.start)} ({stage_en} failed"
        en += f", for {length} min). " if length else ", not back). "
    if f.misconfig is not None:
        what, registered = f.misconfig
        if what == "tid_of_other_merchant":
            zh += f"终端号{f.tid}登记在商户{registered}名下，小票上却是商户{f.mid}。"
            en += f"terminal {f.tid} is registered to merchant {registered}, the receipt says"
            en += f" merchant {f.mid}. "
        elif what == "merchant_not_registered":
            zh += f"商户号{f.mid}不在商户登记表中（终端{f.tid}）。"
            en += f"merchant {f.mid} (terminal {f.tid}) is not in the merchant registry. "
        else:
            zh += f"终端号{f.tid}不是商户{f.mid}登记的终端（登记：{registered}）。"
            en += f"terminal {f.tid} is not one of merchant {f.mid}'s registered terminals"
            en += f" ({registered}). "
    b = f.reboot
    if b is not None:
        cause_zh, cause_en = words.zh_en(words.BOOT_CAUSE, b.cause)
        zh += f"终端在{time_text(b.t)}重启（{cause_zh}）"
        en += f"the terminal restarted at {time_text(b.t)} ({cause_en})"
        if f.receipt is None:
            zh += "，这笔交易的记录在重启中丢失，以收单机构记录为准。"
            en += " and lost the sale's record: go by the acquirer's. "
        else:
            zh += "。"
            en += ". "
    if f.held_fen and f.expected_date is not None:
        zh += f"其中{yuan(f.held_fen)}按商户结算设置留存至{zh_date(f.expected_date)}。"
        en += f"{yuan(f.held_fen)} of it is held by the merchant's settlement setting until"
        en += f" {f.expected_date.isoformat()}. "
    n = f.notice
    if n is not None:
        zh += f"收单机构{n.acquirer}公告{_minute(n.start)}至{_minute(n.end)}进行“{n.what}”。"
        en += f"{n.acquirer} announced “{n.what}” from {_minute(n.start)} to {_minute(n.end)}. "
    p = f.payout
    if p is not None and f.kind == "transaction" and f.status != "settled":
        state_zh, state_en = _PAYOUT_STATE.get(p.state, (p.state, p.state))
        zh += f"所属出款{p.payout_id}（{p.settle_date}）状态：{state_zh}"
        en += f"Its payout {p.payout_id} ({p.settle_date}) is {state_en}"
        if p.fail_reason:
            zh += f"，原因：{p.fail_reason}"
            en += f": {p.fail_reason}"
        zh += "。"
        en += ". "
    return zh, en


def zh_date(day: date) -> str:
    """2026年10月8日: the date as a Chinese reader says it."""
    return f"{day.year}年{day.month}月{day.day}日"


def _minute(t: int) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M")


_PAYOUT_STATE: dict[str, tuple[str, str]] = {
    "paid": ("已出款", "paid"),
    "in_progress": ("处理中", "in progress"),
    "failed": ("出款失败", "failed"),
    "bounced": ("被退回", "bounced"),
    "frozen": ("已冻结", "frozen"),
}


def to_dict(f: Finding) -> dict[str, Any]:
    d: dict[str, Any]
    if f.kind == "payout":
        d = {
            "kind": "payout",
            "payout_id": f.payout_id,
            "mid": f.mid,
            "settle_date": f.expected_date.isoformat() if f.expected_date else None,
            "planned_fen": f.plan_fen,
            "paid_fen": f.paid_fen,
            "short_fen": f.short_fen,
            "status": f.status,
        }
        if f.cause:
            d["cause"] = f.cause
        d["evidence"] = evidence(f)
        d["confidence"] = f.confidence
        d["explain"] = explain(f)
        return d
    d = {
        "kind": "transaction",
        "mid": f.mid,
        "tid": f.tid,
        "bat": f.bat,
        "trc": f.trc,
        "dev": f.dev or None,
        "rrn": f.rrn or None,
        "amount_fen": f.amount_fen,
        "txn_time": time_text(f.lt) if f.lt else None,
        "payout_id": f.payout_id or None,
        "status": f.status,
    }
    if f.cause:
        d["cause"] = f.cause
    d.update(
        {
            "data": f.data,
            "network_caused": f.cause in NETWORK_CAUSES,
            "expected_date": f.expected_date.isoformat() if f.expected_date else None,
            "paid_fen": f.paid_fen,
            "short_fen": f.short_fen,
            "evidence": evidence(f),
            "confidence": round(f.confidence, 2),
            "explain": explain(f),
        }
    )
    return d


def yuan(fen: int) -> str:
    return "¥" + fen_to_yuan(fen)
