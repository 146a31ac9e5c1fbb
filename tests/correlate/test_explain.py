"""Every status, cause and data value explains itself as support reads it out: the amount in
yuan, the sale's time, the date that matters, the outage when the network caused it, and what
to do next, in Chinese and in English (issue 24)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from daozhang.correlate.engine import analyse
from daozhang.correlate.finding import CAUSES, DATA_VALUES, NETWORK_CAUSES
from daozhang.correlate.render import explain, yuan, zh_date
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.units import BEIJING


def test_every_cause_and_data_value_reads_aloud_with_its_facts_and_next_step(
    tmp_path: Path,
) -> None:
    sc = generate(1006, cases=8)
    with open_database(f"sqlite:///{tmp_path / 'x.db'}") as store:
        load(store, sc, tmp_path / "files")
        findings = [f for f in analyse(store, sc.as_of).findings if f.kind == "transaction"]
    causes = {f.cause for f in findings if f.cause}
    data = {f.data for f in findings}
    assert set(CAUSES) <= causes and set(DATA_VALUES) <= data, (causes, data)
    assert set(_NEXT_STEP) == {*CAUSES, "preauth_open_pending"}, set(_NEXT_STEP)
    for f in findings:
        text = explain(f)
        if f.cause:
            pending = f.cause == "preauth_open" and f.status == "pending"
            zh_step, en_step = _NEXT_STEP["preauth_open_pending" if pending else f.cause]
            assert zh_step in text["zh"] and en_step in text["en"], (f.cause, text)
        zh, en = text["zh"], text["en"]
        assert yuan(f.amount_fen) in zh and yuan(f.amount_fen) in en, text
        assert "下一步：" in zh and " Next: " in en, text
        if f.lt:
            when = datetime.fromtimestamp(f.lt, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            assert when in zh and when in en
        if f.cause in ("timing", "late_upload", "file_missing") and f.expected_date:
            assert zh_date(f.expected_date) in zh and f.expected_date.isoformat() in en
        if f.cause in NETWORK_CAUSES and f.outage is not None:
            assert "断网" in zh and "lost its link" in en, text
        if f.payout is not None and f.status != "settled":
            assert f.payout.payout_id in zh and f.payout.payout_id in en
            if f.payout.fail_reason:
                assert f.payout.fail_reason in zh


# The next step each cause reads out, as reviewed (2026-12-07) against what the articles
# merchants and support read say to do for it: re-collect only when the money went back to the
# cardholder; never charge again before the acquirer confirms a reversal; a frozen payout needs
# the sale's proof (slip, invoice, contract); an account problem may be a changed settlement
# card the acquirer does not have; a class II account credits only up to its daily limit; the
# slip's trace (凭证号) and reference (参考号) numbers are what the acquirer asks for.
_NEXT_STEP: dict[str, tuple[str, str]] = {
    "network_reversed": ("请商户向持卡人重新收款", "Ask the cardholder to pay again"),
    "reversal_pending": ("确认前不要重复收款", "before charging again"),
    "reversal_failed": ("人工冲正或确认入账", "reverse it by hand or confirm"),
    "duplicate_charge_risk": ("如是请为其办理退货", "refund one if so"),
    "late_upload": ("到账，无需处理", "nothing to do"),
    "terminal_fault": ("未扣款则请商户重新收款", "if not, charge again"),
    "terminal_misconfigured": ("重新下载参数", "reload its parameters"),
    "preauth_open": ("重新向持卡人收款", "charge the cardholder again"),
    "preauth_open_pending": ("前完成或撤销该预授权", "Complete or cancel the pre-authorisation"),
    "timing": ("到账，无需处理", "nothing to do"),
    "settlement_delay": ("申请调整结算设置", "change the settlement setting"),
    "file_missing": ("的结算文件后再查询", "then ask again"),
    "account_problem": ("如更换过结算卡", "if the settlement card was changed"),
    "risk_hold": ("准备好交易凭证（签购单、发票或合同）申请解冻", "have the sale's proof ready"),
    "fee": ("请核对商户费率及D0加收规则", "Check the merchant's fee rate"),
    "bank_delay": ("如结算卡是二类账户", "a class II settlement account"),
    "acquirer_maintenance": ("无需重新收款", "do not charge the cardholder again"),
    "acquirer_side": ("的清算情况；终端和网络正常", "the terminals and network were fine"),
    "unknown": ("签购单上的凭证号和参考号", "trace and reference numbers from the slip"),
}
