"""A scenario from a seed: the fleet's week (world.py), then the acquirer's side — detail
rows, payouts, the file that goes missing — and the ground truth of every finding.

Ground truth is decided here, from what was injected, by the path order of DESIGN §2.2: a
terminal-side cause first, then not due yet, then a missing file, then the acquirer, then the
payout. Correlation never sees this module; it only sees the store.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from daozhang.lab.sim.model import (
    DEBIT_CAP,
    DEVICE_CAUSES,
    FAIL_REASONS,
    TERMINAL_CAUSES,
    Scenario,
    Truth,
    Txn,
    beijing_time,
    fee_of,
)
from daozhang.lab.sim.world import Builder
from daozhang.settle.policy import due
from daozhang.units import BEIJING

__all__ = ["Scenario", "generate"]


def generate(seed: int, cases: int = 30) -> Scenario:
    b = Builder(seed, cases)
    b.fleet()
    b.trade()
    b.terminal_causes()
    for t in b.txns:
        d = due(t.lt, t.extra.get("sm", "T1"), b.policy, b.cal)
        t.due_date = d.expected
        if b.rng.random() < 0.3:
            t.extra["sd"] = f"{d.business_day:%m%d}"  # the host's DE15, when it answered
    # Over-rate fees: the acquirer charged more than the merchant's agreed rate.
    over = [
        t
        for t in b.txns
        if t.m.role == "normal"
        and not t.injected
        and t.typ == "sale"
        and t.states[-1][0] == "approved"
        and t.due_date is not None
        and t.due_date <= b.as_of_date
    ]
    for t in b.rng.sample(over, cases // 2):
        t.injected = "over_fee"
    b.data_causes()
    # The missing file and the acquirer's bad day fall on busy acquirer-days (different ones).
    busy: dict[tuple[str, date], int] = {}
    for t in b.txns:
        if t.due_date and t.due_date <= b.as_of_date and t.typ == "sale" and t.m.role == "normal":
            g = (t.m.acquirer, t.due_date)
            busy[g] = busy.get(g, 0) + 1
    ranked = sorted(busy, key=lambda g: (-busy[g], g))[:4]
    missing_group, acq_group = b.rng.sample(ranked, 2)
    while acq_group[0] == missing_group[0]:
        missing_group, acq_group = b.rng.sample(ranked, 2)
    missing = {missing_group}
    b.acquirer_causes(acq_group, missing)
    b.payout_causes()
    full = sorted(busy, key=lambda g: (-busy[g], g))
    b.maintenance(full, {acq_group[0], missing_group[0]})
    b.terminal_faults()
    b.misconfigured(missing)
    b.reserves()
    for t in b.txns:
        if t.due_date is None:  # the sales added last
            t.due_date = due(t.lt, t.extra.get("sm", "T1"), b.policy, b.cal).expected
    return _settle(b, missing)


def _settle(b: Builder, missing: set[tuple[str, date]]) -> Scenario:
    """The acquirer's side: detail rows, payouts; then the ground truth of every finding."""
    truth: dict[tuple[str, ...], Truth] = {}
    rows: dict[tuple[str, date], list[dict[str, Any]]] = {}
    by_payout: dict[str, list[tuple[Txn, dict[str, Any]]]] = {}
    for t in b.txns:
        last = t.states[-1][0]
        cleared = last in ("approved", "offline_sent") or t.injected in (
            "still_buffered",
            "device_data_loss",
            "no_receipt",
            "refused",
        )
        if t.injected in (
            "unknown",
            "acquirer_side",
            "acquirer_maintenance",
            "terminal_misconfigured",
            "preauth_open",
        ):
            cleared = False
        if t.typ == "preauth":
            cleared = False
        if t.injected == "late_upload" and last == "offline_pending":
            cleared = False
        voided = last == "voided" or t.typ == "void"
        assert t.due_date is not None
        settle_day = t.due_date
        if t.settle_delay_days:
            # The acquirer applies its day cut to when the transaction reached it.
            settle_day = due(t.states[-1][1], t.extra.get("sm", "T1"), b.policy, b.cal).expected
        if not (cleared or voided or (last == "reversed" and b.rng.random() < 0.5)):
            continue
        m = t.m
        flag = "Y" if cleared else "B"
        fee = fee_of(t.amt, m.fee_rate, t.ck, DEBIT_CAP) if flag == "Y" else 0
        if t.injected == "over_fee":
            fee = fee_of(t.amt, str(Decimal(m.fee_rate) + Decimal("0.0030")), t.ck, None) + 50
        payout_id = f"P{m.mid[-6:]}{settle_day:%Y%m%d}" if flag == "Y" else ""
        row = {
            "settle_date": settle_day.isoformat(),
            "mid": m.mid,
            "tid": m.tid,
            "txn_time": t.lt,
            "typ": t.typ,
            "ch": t.ch,
            "bat": "000001",
            "trc": t.trc,
            "rrn": t.rrn or b.rrn(),
            "orrn": t.extra.get("orrn", ""),
            "pan": t.pan,
            "ck": t.ck,
            "amt": t.amt,
            "fee": fee,
            "settle_amt": t.amt - fee if flag == "Y" else 0,
            "direction": "in",
            "settle_type": m.settle_type,
            "check_flag": "L" if t.injected == "no_receipt" and b.rng.random() < 0.5 else flag,
            "payout_id": payout_id,
            "merchant_name": "模拟商户",
        }
        if not t.rrn:
            t.rrn = row["rrn"]
        t.detail = row
        if settle_day > b.as_of_date:
            continue  # the acquirer has not sent that day's file yet
        rows.setdefault((m.acquirer, settle_day), []).append(row)
        if payout_id:
            by_payout.setdefault(payout_id, []).append((t, row))
    payouts = []
    payout_truth: dict[str, Truth] = {}
    for pid, members in sorted(by_payout.items()):
        m = members[0][0].m
        day = date.fromisoformat(members[0][1]["settle_date"])
        plan = sum(r["settle_amt"] for _, r in members)
        fee_total = suspend = retained = 0
        state, reason = "paid", ""
        trouble = m.bad_dates.get(day, "")
        if m.settle_type == "D0":
            fee_total = sum(fee_of(t.amt, m.d0_surcharge, "", None) for t, _ in members)
        if trouble in ("failed", "bounced"):
            state, reason = trouble, FAIL_REASONS[trouble]
        elif trouble == "in_progress":
            state = "in_progress"  # sent by the acquirer, not credited by the bank
        elif m.status == "frozen" and m.role == "account":
            state, reason = "failed", "商户账户冻结 merchant account frozen"
        elif trouble == "frozen":
            state, reason = "frozen", "风控冻结 risk control freeze"
        elif trouble == "suspend":
            suspend = plan // 3
        elif trouble == "retained":
            retained = plan // 5
        elif m.reserve_release and plan > 0:
            retained = fee_of(plan, m.reserve_rate, "", None)  # the agreed reserve
        real = plan - fee_total - suspend - retained if state == "paid" else 0
        payouts.append(
            {
                "payout_id": pid,
                "mid": m.mid,
                "settle_type": m.settle_type,
                "settle_date": day.isoformat(),
                "plan_fen": plan,
                "fee_fen": fee_total,
                "suspend_fen": suspend,
                "retained_fen": retained,
                "real_fen": real,
                "state": state,
                "fail_reason": reason,
                "bank_account": "6222****" + m.mid[-4:],
            }
        )
        if state in ("failed", "bounced"):
            payout_truth[pid] = Truth("gap", "account_problem")
        elif state == "in_progress":
            payout_truth[pid] = Truth("gap", "bank_delay")
        elif state == "frozen":
            payout_truth[pid] = Truth("gap", "risk_hold")
        elif retained and m.reserve_release and not (suspend or fee_total or trouble):
            payout_truth[pid] = Truth("pending", "settlement_delay")
        elif suspend or retained:
            payout_truth[pid] = Truth("settled_short", "risk_hold")
        elif fee_total:
            payout_truth[pid] = Truth("settled_short", "fee")
        else:
            payout_truth[pid] = Truth("settled")
    for t in b.txns:
        tr = _truth(b, t, missing, payout_truth)
        if tr is not None:
            truth[("r", *t.key)] = _in_window(b, t, tr)
    sc = Scenario(
        b.seed,
        b.start,
        b.days,
        b.as_of,
        b.merchants,
        b.txns,
        b.outages,
        b.silent_from,
        b.lost,
        missing,
        truth,
        payouts,
        rows,
        b.reboots,
        b.notices,
    )
    return sc


def _in_window(b: Builder, t: Txn, tr: Truth) -> Truth:
    """What the acquirer decides (an unknown or acquirer-wide gap, a payout late at the bank)
    between a sale and its expected day falls to an announced window of that acquirer."""
    if tr.cause not in ("unknown", "acquirer_side", "bank_delay", "acquirer_maintenance"):
        return tr
    expected = date.fromisoformat(t.detail["settle_date"]) if t.detail else t.due_date
    assert expected is not None
    end = beijing_time(expected, 86_399)
    for acq, start, stop, _ in b.notices:
        if acq == t.m.acquirer and start <= end and stop >= t.lt:
            return Truth(tr.status, "acquirer_maintenance", tr.data)
    return tr


def _truth(
    b: Builder, t: Txn, missing: set[tuple[str, date]], payout_truth: dict[str, Truth]
) -> Truth | None:
    """What correlation must say about `t`; None when it must say nothing."""
    assert t.due_date is not None
    last = t.states[-1][0]
    data = "complete" if t.reported else t.injected
    row = t.detail
    in_file = (
        row is not None
        and date.fromisoformat(row["settle_date"]) <= b.as_of_date
        and (t.m.acquirer, date.fromisoformat(row["settle_date"])) not in missing
    )
    if not t.reported and not in_file:
        return None  # neither the device nor an imported file knows it
    if last in ("declined",) or last == "voided" or t.typ == "void":
        return Truth("not_expected", "", data)
    if t.injected == "preauth_done":
        return Truth("not_expected", "", data)
    due_now = t.due_date <= b.as_of_date
    if t.injected == "late_upload" and row is not None:
        # Sent to the acquirer late: the row lands on a later date (unless the days off
        # between made no difference).
        late = date.fromisoformat(row["settle_date"])
        if late > t.due_date and late > b.as_of_date:
            return Truth("pending", "late_upload", data)
        if late > t.due_date and not in_file:
            return Truth("gap", "late_upload", data)
    elif t.injected == "preauth_open":
        # Never completed: nothing will come once it lapses; until then it may be completed.
        opened = datetime.fromtimestamp(t.lt, BEIJING).date()
        lapsed = b.as_of_date >= opened + timedelta(days=b.policy.preauth_days)
        return Truth("gap" if lapsed else "pending", "preauth_open", data)
    elif t.injected == "late_upload":
        # Never sent: late once the money was due.
        if due_now:
            return Truth("gap", t.injected, data)
    elif t.injected in (*TERMINAL_CAUSES, *DEVICE_CAUSES):
        return Truth("gap", t.injected, data)
    if not due_now:
        return Truth("pending", "timing", data)
    file_day = date.fromisoformat(row["settle_date"]) if row is not None else t.due_date
    if (t.m.acquirer, file_day) in missing:
        return Truth("gap", "file_missing", data)
    if t.injected in ("acquirer_side", "unknown", "acquirer_maintenance"):
        return Truth("gap", t.injected, data)
    if row is None or not in_file:
        return Truth("gap", "unknown", data)
    pt = payout_truth.get(row["payout_id"])
    if pt is None:
        return Truth("gap", "unknown", data)
    if pt.status == "settled" and t.injected == "over_fee":
        return Truth("settled_short", "fee", data)
    return Truth(pt.status, pt.cause, data)
