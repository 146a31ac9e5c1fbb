"""The names people read for the codes in findings: Chinese first, English beside it.

One table per vocabulary (DESIGN §2.2 statuses, causes and data values; §1.2 receipt types and
states and the failing stages of `link_down`; §2.1 settlement flags). The HTML report, the
terminal table and the CSV all take their words from here, so a cause is called the same thing
everywhere; `tests/report/test_words.py` holds these tables to the vocabularies of
`daozhang.correlate` and `daozhang.contract`, so a new code cannot reach a report unnamed.
The §2.3 causes not built yet are named already: the reports must not wait for their words.
"""

from __future__ import annotations

STATUS: dict[str, tuple[str, str]] = {
    "settled": ("已到账", "paid"),
    "settled_short": ("到账不足", "paid short"),
    "pending": ("未到期", "not due yet"),
    "gap": ("未到账", "not paid"),
    "not_expected": ("无需到账", "no money expected"),
}

CAUSE: dict[str, tuple[str, str]] = {
    "network_reversed": ("无应答冲正", "reversed, no response"),
    "reversal_pending": ("冲正未送达", "reversal not delivered"),
    "reversal_failed": ("冲正失败", "reversal failed"),
    "duplicate_charge_risk": ("重复扣款风险", "duplicate charge risk"),
    "late_upload": ("离线交易迟传", "offline sale sent late"),
    "preauth_open": ("预授权未完成", "pre-authorisation open"),
    "timing": ("结算时间未到", "settlement timing"),
    "file_missing": ("结算文件未导入", "settlement file missing"),
    "account_problem": ("结算账户异常", "account problem"),
    "risk_hold": ("风控冻结留存", "risk hold"),
    "fee": ("额外手续费", "extra fee"),
    "acquirer_side": ("收单方问题", "acquirer side"),
    "unknown": ("原因不明", "cause unknown"),
    "bank_delay": ("银行入账延迟", "bank delay"),
    "settlement_delay": ("延迟结算", "delayed settlement"),
    "acquirer_maintenance": ("收单方维护", "acquirer maintenance"),
    "terminal_fault": ("终端故障", "terminal fault"),
    "terminal_misconfigured": ("终端配置错误", "terminal misconfigured"),
}

DATA: dict[str, tuple[str, str]] = {
    "complete": ("记录完整", "record complete"),
    "still_buffered": ("仍在终端未上传", "still on the device"),
    "device_data_loss": ("终端记录丢失", "lost on the device"),
    "refused": ("采集端拒收", "refused by the collector"),
    "no_receipt": ("终端未上报", "never reported"),
    "conflict": ("交易号冲突", "key conflict"),
}

STAGE: dict[str, tuple[str, str]] = {
    "link": ("无线链路", "radio / Wi-Fi link"),
    "dhcp": ("获取IP地址", "DHCP address"),
    "dns": ("域名解析", "DNS lookup"),
    "tcp": ("TCP连接", "TCP connect"),
    "tls": ("TLS握手", "TLS handshake"),
    "mqtt": ("MQTT会话", "MQTT session"),
    "ack": ("采集端无确认", "no ack from the collector"),
}

BOOT_CAUSE: dict[str, tuple[str, str]] = {
    "power_on": ("上电开机", "power on"),
    "watchdog": ("看门狗复位", "watchdog reset"),
    "brownout": ("供电不足复位", "brownout"),
    "soft": ("软件重启", "software restart"),
    "crash": ("程序崩溃", "crash"),
    "unknown": ("原因不明", "cause not known"),
}

RECEIPT_STATE: dict[str, tuple[str, str]] = {
    "approved": ("已批准", "approved"),
    "declined": ("被拒绝", "declined"),
    "no_response": ("无应答", "no response"),
    "reversal_pending": ("待冲正", "reversal pending"),
    "reversed": ("已冲正", "reversed"),
    "reversal_failed": ("冲正失败", "reversal failed"),
    "voided": ("已撤销", "voided"),
    "offline_pending": ("离线未上送", "offline, not sent"),
    "offline_sent": ("离线已上送", "offline, sent"),
}

TXN_TYPE: dict[str, tuple[str, str]] = {
    "sale": ("消费", "sale"),
    "void": ("撤销", "void"),
    "refund": ("退货", "refund"),
    "preauth": ("预授权", "pre-auth"),
    "preauth_void": ("预授权撤销", "pre-auth void"),
    "preauth_done": ("预授权完成", "pre-auth completion"),
    "preauth_done_void": ("预授权完成撤销", "completion void"),
}

SETTLE_FLAG: dict[str, tuple[str, str]] = {
    "Y": ("已清算", "settled"),
    "B": ("未清算(冲正或撤销)", "not settled: reversed or voided"),
    "L": ("仅收单方有", "only in the acquirer's file"),
}

PAYOUT_STATE: dict[str, tuple[str, str]] = {
    "paid": ("已出款", "paid out"),
    "in_progress": ("处理中", "in progress"),
    "failed": ("出款失败", "failed"),
    "bounced": ("被退回", "bounced"),
    "frozen": ("已冻结", "frozen"),
}

TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "status": STATUS,
    "cause": CAUSE,
    "data": DATA,
    "stage": STAGE,
    "boot_cause": BOOT_CAUSE,
    "receipt_state": RECEIPT_STATE,
    "txn_type": TXN_TYPE,
    "settle_flag": SETTLE_FLAG,
    "payout_state": PAYOUT_STATE,
}


def zh_en(table: dict[str, tuple[str, str]], code: str) -> tuple[str, str]:
    """The pair for a code; a code this table does not know yet is shown as itself rather
    than hidden (a newer store may carry it before the report learns its name)."""
    return table.get(code, (code, code))


def name(table: dict[str, tuple[str, str]], code: str) -> str:
    """`无应答冲正 reversed, no response`: what a reader sees in place of the code."""
    if not code:
        return ""
    zh, en = zh_en(table, code)
    return zh if zh == en else f"{zh} {en}"


LANGS = ("zh", "en")


def label(table: dict[str, tuple[str, str]], code: str, lang: str, sep: str = " ") -> str:
    """The name of a code for `--lang`: `zh` (the default) is Chinese with English beside,
    joined by `sep`; `en` is English alone. An unknown code is shown as itself."""
    if not code:
        return ""
    zh, en = zh_en(table, code)
    if lang == "en":
        return en
    return zh if zh == en else f"{zh}{sep}{en}"


def yes_no(flag: bool) -> str:
    return "是 yes" if flag else ""
