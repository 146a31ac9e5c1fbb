"""What the console shows for codes and numbers: Chinese first, English beside it.

The correlation vocabularies (statuses, causes, stages) come from `daozhang.words`, the
one table of them. `fleet status` names a device's problem in an English sentence; the console
reads its kind from the sentence's start (`problem_code`) and names it from `PROBLEM` below
(tests/console/test_words.py holds every problem `fleet_status` can give to a known code).
"""

from __future__ import annotations

from datetime import datetime

from daozhang.units import BEIJING, fen_to_yuan
from daozhang.words import name

PROBLEM: dict[str, tuple[str, str]] = {
    "silent_unsent": ("失联且有未上传记录", "silent with unsent records"),
    "offline_unsent": ("离线且有未上传记录", "offline with unsent records"),
    "never_heard": ("从未上线", "never heard from"),
    "silent": ("失联", "silent"),
    "offline": ("离线", "offline"),
    "backlog": ("积压未上传", "backlog growing"),
    "uploads_failing": ("上传失败", "uploads failing"),
    "refused": ("采集端拒收", "refused by the collector"),
    "ok": ("正常", "ok"),
}

# The start of `fleet.status`'s problem sentence for each kind, most specific first.
_PREFIXES = (
    ("silent with ", "silent_unsent"),
    ("offline with ", "offline_unsent"),
    ("never heard from", "never_heard"),
    ("silent", "silent"),
    ("offline", "offline"),
    ("backlog ", "backlog"),
    ("uploads failing", "uploads_failing"),
    ("refused ", "refused"),
    ("ok", "ok"),
)


def problem_code(problem: str) -> str:
    """The kind of a `fleet status` problem: its first clause's; the sentence itself if none
    matches (shown as it is rather than hidden, like `words.zh_en`)."""
    first = problem.split("; ", maxsplit=1)[0]
    for prefix, code in _PREFIXES:
        if first.startswith(prefix):
            return code
    return first


def problem_name(code: str) -> str:
    return name(PROBLEM, code)


def beijing(ts: float | None, seconds: bool = False) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, BEIJING).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    )


def duration(seconds: float | None) -> str:
    """`3分钟 3 min`, `2小时 2 h`, `5天 5 d`; `-` when unknown."""
    if seconds is None:
        return "-"
    for size, zh, en in ((86400, "天", "d"), (3600, "小时", "h"), (60, "分钟", "min")):
        if seconds >= size:
            n = f"{seconds / size:.0f}"
            return f"{n}{zh} {n} {en}"
    n = f"{seconds:.0f}"
    return f"{n}秒 {n} s"


def yuan(fen: int) -> str:
    return f"¥{fen_to_yuan(fen)}"


def mask_pan(pan: str | None) -> str:
    """A card number as the console shows it: first 6 and last 4 digits, the rest `*`.

    The store holds masked PANs only (the firmware and the collector mask them), but a page
    must not be the one place a full number could show: whatever comes in is masked again."""
    if not pan:
        return "-"
    if len(pan) < 13:
        return "*" * len(pan)
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


# An update's steps as the device reports them (`ota` diagnostics, firmware/dzcore/ota).
OTA_STEP: dict[str, tuple[str, str]] = {
    "switched": ("已切换到新版本", "switched to the new version"),
    "confirmed": ("新版本已确认", "new version confirmed"),
    "rolled_back": ("已回滚到旧版本", "rolled back to the old version"),
    "refused": ("设备拒绝更新", "the device refused the update"),
}

# Where a finding's evidence comes from (`correlate.render.evidence`'s sources).
SOURCE: dict[str, str] = {
    "receipt": "凭条 receipt",
    "policy": "结算规则 policy",
    "calendar": "工作日历 calendar",
    "diag_event": "终端诊断 diagnostics",
    "heartbeat": "心跳 heartbeat",
    "settlement_row": "清算明细 settlement row",
    "settlement_file": "清算文件 settlement file",
    "payout": "出款 payout",
    "merchant": "商户 merchant",
    "quarantine": "拒收 quarantine",
    "correlation": "关联分析 correlation",
}
