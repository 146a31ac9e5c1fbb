"""One alert message, in the body each group bot documents.

- WeCom (企业微信) group bot: `{"msgtype": "markdown", "markdown": {"content": ...}}`, at
  most 4096 bytes of UTF-8; answers `{"errcode": 0, "errmsg": "ok"}`.
- DingTalk (钉钉) custom robot: `{"msgtype": "markdown", "markdown": {"title", "text"}}`;
  with signing ("加签") the URL gains `timestamp` (ms) and `sign`, the Base64 HMAC-SHA256 of
  `timestamp\\nsecret` keyed by the secret; answers `{"errcode": 0}`.
- Feishu (飞书) custom bot: `{"msg_type": "text", "content": {"text": ...}}`; with signature
  verification ("签名校验") the body gains `timestamp` (s) and `sign`, the Base64
  HMAC-SHA256 of an empty message keyed by `timestamp\\nsecret`; answers `{"code": 0}`.
- Generic JSON: the alert's fields as they are (`event`, `rule`, `subject`, `zh`, `en`,
  `facts`, times in unix seconds and in Beijing time, `mention`).

Mentions (a route's `mention`, rules.py): WeCom's markdown cannot @ by mobile, so a WeCom
message that mentions someone is sent as `text` with `mentioned_mobile_list` (`@all` for
everyone); DingTalk gets `at.atMobiles` / `at.isAtAll` with each `@mobile` in the text, as it
requires; Feishu gets `<at user_id="ou_...">` tags (`all` for everyone), its bots mention by
user id only. A kind of mention a bot cannot take is left out of its message.

Chinese first, English beside; money in yuan; times in Beijing time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from typing import Any

from daozhang.alerts.alert import beijing, minutes

RULE_NAMES = {
    "silent_unsent": ("终端失联且有未上传交易", "device silent with unsent receipts"),
    "oldest_unsent": ("未上传记录积压过久", "oldest unsent record too old"),
    "journal_full": ("终端日志将满", "journal nearly full"),
    "signal_poor": ("信号持续偏弱", "poor signal"),
    "cell_down": ("同一基站多台终端失联", "many terminals down in one cell"),
    "quarantine_spike": ("收集器拒收激增", "quarantine spike"),
    "unexplained_unpaid": ("原因不明的未到账", "unexplained unpaid money"),
    "acquirer_day_unpaid": ("收单机构整日未结算", "acquirer-day unpaid across merchants"),
    "pki_expiry": ("证书或吊销列表将过期", "certificate or CRL expiry"),
    "rollout_halted": ("升级批次已暂停", "update rollout halted"),
    "rollout_stalled": ("升级批次无进展", "update rollout stalled"),
}
# What to do first, said in the firing message.
NEXT_STEPS = {
    "silent_unsent": (
        "请联系商户检查终端电源与网络",
        "ask the shop to check the terminal's power and network",
    ),
    "oldest_unsent": (
        "查看 fleet status 中该终端的信号与重连",
        "see its signal and reconnects in fleet status",
    ),
    "journal_full": ("尽快让终端恢复联网,满后将拒收交易", "get it online before the journal fills"),
    "signal_poor": (
        "检查天线与摆放位置,或更换运营商",
        "check the antenna and placement, or the carrier",
    ),
    "cell_down": (
        "联系运营商核实该基站,不必逐店排查",
        "ask the carrier about the cell, not each shop",
    ),
    "quarantine_spike": ("用 quarantine list 查看拒收原因", "see the reasons with quarantine list"),
    "unexplained_unpaid": (
        "用 correlate 查看原因不明的交易",
        "see the unknown-cause findings in correlate",
    ),
    "acquirer_day_unpaid": (
        "联系收单机构核实当日结算",
        "ask the acquirer about that day's settlement",
    ),
    "pki_expiry": ("按 pki check 的提示更新证书或吊销列表", "renew as pki check says"),
    "rollout_halted": (
        "在控制台“升级”页查看失败设备的原因，修复后发布新版本",
        "see why the devices failed on the console's Updates page; fix and roll out anew",
    ),
    "rollout_stalled": (
        "确认 ota service 在运行，再查看未应答的设备是否在线",
        "check that ota service runs, then whether the silent devices are online",
    ),
}
WECOM_MAX_BYTES = 4096


# The rules file's severities (rules.py SEVERITIES) as a title says them.
SEVERITY_WORDS = {"critical": ("严重", "critical"), "warning": ("警告", "warning"),
                  "info": ("提示", "info")}  # fmt: skip


def title(event: str, message: dict[str, Any]) -> str:
    zh, en = RULE_NAMES.get(str(message["rule"]), (message["rule"], message["rule"]))
    level = SEVERITY_WORDS.get(str(message.get("severity", "")))
    if event == "firing":
        tag = f"【告警·{level[0]}】" if level else "【告警】"
        word = f"FIRING ({level[1]})" if level else "FIRING"
    else:
        tag, word = "【已恢复】", "RESOLVED"
    return f"{tag}{zh} / {word}: {en}"


def lines(event: str, message: dict[str, Any]) -> list[str]:
    out = [str(message["zh"]), str(message["en"])]
    fired = float(message["fired_at"])
    if event == "firing":
        out.append(f"发生时间 / since: {beijing(fired)}(北京时间 / Beijing time)")
        step = NEXT_STEPS.get(str(message["rule"]))
        if step is not None:
            out.append(f"处理 / next: {step[0]} / {step[1]}")
    else:
        resolved = float(message["resolved_at"])
        lasted = minutes(resolved - fired)
        out.append(
            f"恢复时间 / resolved: {beijing(resolved)}(北京时间 / Beijing time),"
            f"持续 {lasted} 分钟 / lasted {lasted} min"
        )
    return out


def _clip(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def body(kind: str, event: str, message: dict[str, Any]) -> dict[str, Any]:
    head = title(event, message)
    rows = lines(event, message)
    if kind == "wecom":
        # WeCom's three colours: warning (red), info (green), comment (grey).
        quiet = message.get("severity") == "info"
        color = "info" if event != "firing" else "comment" if quiet else "warning"
        content = f'### <font color="{color}">{head}</font>\n' + "\n".join(f"> {r}" for r in rows)
        return {"msgtype": "markdown", "markdown": {"content": _clip(content, WECOM_MAX_BYTES)}}
    if kind == "dingtalk":
        text = f"### {head}\n\n" + "\n\n".join(f"> {r}" for r in rows)
        return {"msgtype": "markdown", "markdown": {"title": head, "text": text}}
    if kind == "feishu":
        return {"msg_type": "text", "content": {"text": "\n".join([head, *rows])}}
    at = float(message["resolved_at"] if event == "resolved" else message["fired_at"])
    return {
        "source": "daozhang",
        "event": event,
        "title": head,
        "at": at,
        "at_beijing": beijing(at),
        **message,
    }


def dingtalk_url(url: str, secret: str, now_ms: int) -> str:
    """The URL with DingTalk's `timestamp` and `sign` when the robot signs (加签)."""
    if not secret:
        return url
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


def feishu_sign(secret: str, now_s: int) -> str:
    """Feishu's signature: the key is `timestamp\\nsecret`, the message empty."""
    digest = hmac.new(f"{now_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# A group bot takes about 20 messages a minute (WeCom documents 20): alerts that are due
# together (a cell's terminals going silent at once) go to a bot as one digest of up to this
# many, each transition still told exactly once. The JSON webhook gets one message each.
DIGEST_MAX = 10


def mentions(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Whom the transitions' routes mention, once each, in order."""
    return list(dict.fromkeys(who for _, m in items for who in m.get("mention", ())))


def digest(kind: str, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One body for several transitions (one: the plain message), with their mentions."""
    return _mention(kind, _digest(kind, items), mentions(items))


def _mention(kind: str, payload: dict[str, Any], who: list[str]) -> dict[str, Any]:
    mobiles = [w for w in who if w.isdigit()]
    everyone = "all" in who
    if kind == "wecom" and (mobiles or everyone):
        text = payload["markdown"]["content"]
        plain = text.replace("### ", "").replace("> ", "").replace("**", "")
        plain = re.sub(r"</?font[^>]*>", "", plain)
        listed = mobiles + (["@all"] if everyone else [])
        return {
            "msgtype": "text",
            "text": {"content": _clip(plain, WECOM_MAX_BYTES), "mentioned_mobile_list": listed},
        }
    if kind == "dingtalk" and (mobiles or everyone):
        text = payload["markdown"]["text"] + "\n\n" + " ".join(f"@{m}" for m in mobiles)
        return {
            **payload,
            "markdown": {**payload["markdown"], "text": text.rstrip()},
            "at": {"atMobiles": mobiles, "isAtAll": everyone},
        }
    feishu_ids = [w for w in who if w.startswith("ou_")] + (["all"] if everyone else [])
    if kind == "feishu" and feishu_ids:
        tags = " ".join(
            '<at user_id="all">所有人</at>' if w == "all" else f'<at user_id="{w}"></at>'
            for w in feishu_ids
        )
        return {**payload, "content": {"text": payload["content"]["text"] + "\n" + tags}}
    return payload


def _digest(kind: str, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if len(items) == 1 or kind == "json":
        return body(kind, *items[0])
    firing = sum(1 for event, _ in items if event == "firing")
    head = (
        f"【daozhang】{firing} 条告警,{len(items) - firing} 条恢复 / "
        f"{firing} firing, {len(items) - firing} resolved"
    )
    parts = [(title(event, message), lines(event, message)) for event, message in items]
    if kind == "wecom":
        content = f"### {head}\n" + "\n".join(
            f"**{t}**\n" + "\n".join(f"> {r}" for r in rows) for t, rows in parts
        )
        return {"msgtype": "markdown", "markdown": {"content": _clip(content, WECOM_MAX_BYTES)}}
    if kind == "dingtalk":
        text = f"### {head}\n\n" + "\n\n".join(
            f"**{t}**\n\n" + "\n\n".join(f"> {r}" for r in rows) for t, rows in parts
        )
        return {"msgtype": "markdown", "markdown": {"title": head, "text": text}}
    text = "\n\n".join([head, *("\n".join([t, *rows]) for t, rows in parts)])
    return {"msg_type": "text", "content": {"text": text}}
