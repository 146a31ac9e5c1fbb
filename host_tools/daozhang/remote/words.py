"""Commands' outcomes and refusals in Chinese and English (DESIGN §1.5)."""

from __future__ import annotations

STATES: dict[str, tuple[str, str]] = {
    "applied": ("已执行", "applied"),
    "refused": ("已拒绝", "refused"),
    "unverified": ("应答无法验证", "answer cannot be verified"),
    "none": ("无应答", "no answer"),
}

REFUSALS: dict[str, tuple[str, str]] = {
    "nokey": ("设备没有密钥，无法验证命令", "the device has no key to verify commands with"),
    "mac": ("签名不符（密钥不同或命令被改动）", "bad MAC (another key, or altered)"),
    "bad": ("命令格式错误", "malformed command"),
    "dev": ("命令是发给另一台设备的", "addressed to another device"),
    "replay": (
        "重放的命令（计数器不大于设备已执行的）",
        "replayed (counter not above the device's)",
    ),
    "flash": ("设备无法保存命令计数器", "the device could not store its counter"),
    "op": ("未知的操作", "unknown operation"),
    "key": ("该设置不能远程修改", "setting not changeable remotely"),
    "range": ("数值超出范围", "value out of bounds"),
    "?": ("未知原因", "unknown reason"),
}
