"""A finding as DESIGN §2.2 shows it: evidence sentences with their sources, and one plain
sentence of explanation in Chinese and in English."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daozhang.correlate.classify import Finding
from daozhang.settle.rows import BEIJING, fen_to_yuan

_EXPLAIN: dict[str, tuple[str, str]] = {
    "settled": (
        "这笔款项已于{date}全额到账(已扣除约定手续费)。",
        "Paid in full on {date}, net of the agreed fee.",
    ),
    "not_expected": (
        "这笔交易未成功或已被撤销,不会有款项入账。",
        "Declined or voided by the merchant: no money is expected.",
    ),
    "network_reversed": (
        "终端未收到应答并已冲正,持卡人款项会退回,商户不会收到这笔钱。",
        "No response reached the terminal, which reversed the sale: the "
        "cardholder is refunded and the merchant will not be paid.",
    ),
    "reversal_pending": (
        "终端显示失败,但冲正尚未送达收单方,这笔交易仍可能被结算。",
        "The terminal showed a failure but its reversal has not reached the "
        "acquirer: the sale may still settle.",
    ),
    "reversal_failed": (
        "冲正失败:终端显示失败,收单方可能仍认为交易成功。",
        "The reversal failed: the terminal showed a failure, the acquirer may still hold the sale.",
    ),
    "duplicate_charge_risk": (
        "无应答后同卡同金额再次刷卡,持卡人可能被扣款两次。",
        "Re-swiped with the same card and amount after no response: the "
        "cardholder may be charged twice.",
    ),
    "late_upload": (
        "离线交易因断网在日切后才送达收单方,到账顺延至{date}。",
        "An offline approval reached the acquirer after the day cut because of "
        "an outage: the money moves to {date}.",
    ),
    "preauth_open": (
        "预授权未完成,不会有款项入账。",
        "The pre-authorisation was never completed: no money will come.",
    ),
    "timing": (
        "尚未到结算日,预计{date}到账(日切、周末/节假日或T1规则)。",
        "Not due yet: expected on {date} (day cut, weekend/holiday, T1 or D0 rules).",
    ),
    "file_missing": (
        "{date}的结算文件尚未导入,无法确认是否到账。",
        "The settlement file for {date} has not been imported: cannot tell yet.",
    ),
    "account_problem": (
        "出款失败或被退回:商户结算账户异常(冻结或销户)。",
        "The payout failed or bounced: the merchant's account is frozen or closed.",
    ),
    "risk_hold": (
        "款项被风控冻结、暂缓或留存,到账金额不足。",
        "Frozen, suspended or retained by risk control: less or nothing was paid.",
    ),
    "fee": (
        "到账金额少于预期,差额由额外手续费(如D0加收)造成。",
        "Paid short: an extra charge (such as a D0 surcharge) explains the difference.",
    ),
    "acquirer_side": (
        "同一收单机构同日多家商户未到账而设备正常,问题在收单方。",
        "Many merchants of one acquirer unpaid on the same day while their "
        "devices were healthy: the problem is at the acquirer.",
    ),
    "unknown": (
        "已到期但未找到结算记录,原因不明,请联系收单机构。",
        "Due but not in the acquirer's records, cause unknown: ask the acquirer.",
    ),
}


def _time(value: Any) -> str:
    if isinstance(value, int) and value > 10**9:
        return datetime.fromtimestamp(value, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float) and value > 10**9:
        return datetime.fromtimestamp(value, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def evidence(f: Finding) -> list[dict[str, str]]:
    out = [
        {"source": src, "fact": template.format(*(_time(a) for a in args))}
        for src, template, args in f.evidence
    ]
    for cause in f.also or ():
        out.append({"source": "correlation", "fact": f"also applies (later on the path): {cause}"})
    return out


def explain(f: Finding) -> dict[str, str]:
    key = f.cause or f.status
    if key not in _EXPLAIN:
        key = "settled" if f.status in ("settled", "settled_short") else "unknown"
    zh, en = _EXPLAIN[key]
    day = f.expected_date.isoformat() if f.expected_date else "?"
    return {"zh": zh.format(date=day), "en": en.format(date=day)}


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
        "txn_time": _time(f.lt) if f.lt else None,
        "payout_id": f.payout_id or None,
        "status": f.status,
    }
    if f.cause:
        d["cause"] = f.cause
    d.update(
        {
            "data": f.data,
            "network_caused": f.cause
            in (
                "network_reversed",
                "reversal_pending",
                "reversal_failed",
                "duplicate_charge_risk",
                "late_upload",
            ),
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
