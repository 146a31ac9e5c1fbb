"""The names of update and rollout states, Chinese and English, for every reader of them (the
`ota` commands and the console's updates page)."""

from __future__ import annotations

# A device's last word on an offer (its heartbeat's `ota` state, first word).
STATES: dict[str, tuple[str, str]] = {
    "waiting": ("等待中", "waiting"),
    "offered": ("已提供，无应答", "offered, no answer"),
    "fetching": ("下载中", "downloading"),
    "switched": ("已切换", "switched"),
    "trial": ("试运行中", "on trial"),
    "confirmed": ("已确认", "confirmed"),
    "refused": ("已拒绝", "refused"),
    "rolled": ("已回退", "rolled back"),
}

ROLLOUT_STATES: dict[str, tuple[str, str]] = {
    "running": ("进行中", "running"),
    "halted": ("已暂停", "halted"),
    "done": ("已完成", "done"),
}


def update_words(state: str) -> tuple[str, str, str]:
    """(Chinese, English, detail) of a device's update state: `rolled back crash` is
    ("已回退", "rolled back", "crash"); an unknown word is shown as itself."""
    word, _, rest = state.partition(" ")
    zh, en = STATES.get(word, ("未知", word))
    if word == "rolled":
        rest = rest.partition(" ")[2]  # "rolled back why"
    return zh, en, rest
