"""The update rollouts (`daozhang ota rollout`, driven by `ota service`), as fleet staff need to
hear of them:

- `rollout_halted`: a rollout halted (by its failures, or by hand) and no newer rollout begun
  since: devices are left on the old version until someone builds a fix or rolls on. It
  resolves when a newer rollout is created.
- `rollout_stalled`: a running rollout whose state and devices have not changed for `hours`:
  nobody drives it (`ota service` not running) or its devices do not answer.
"""

from __future__ import annotations

from daozhang.alerts.alert import Alert, Verdict, beijing
from daozhang.alerts.rules import Rules
from daozhang.ota.rollout import Summary, failed, summaries
from daozhang.store import Store

_LOOKED_AT = 50  # the newest rollouts; older ones are superseded by them in any case


def evaluate_rollouts(store: Store, rules: Rules, now: float, out: Verdict) -> None:
    if not (rules.on("rollout_halted") or rules.on("rollout_stalled")):
        return
    found = summaries(store, _LOOKED_AT)  # newest first
    for i, s in enumerate(found):
        newest = i == 0  # a halted one that is not: someone has rolled on since
        if s.state == "halted" and rules.on("rollout_halted") and newest:
            out.add(_halted(s))
        if s.state == "running" and rules.on("rollout_stalled"):
            hours = float(rules.get("rollout_stalled", "hours"))
            if now - s.last_change >= hours * 3600:
                out.add(_stalled(s, now))


def _halted(s: Summary) -> Alert:
    bad = sum(n for state, n in s.counts.items() if failed(state))
    why = s.why or ""
    return Alert(
        "rollout_halted",
        f"rollout:{s.id}",
        f"升级批次 {s.id}（版本 {s.version}）已暂停：{why}；{bad}/{s.total} 台失败",
        f"rollout {s.id} (version {s.version}) halted: {why}; {bad} of {s.total} devices failed",
        {"rollout": s.id, "version": s.version, "why": why, "failed": bad, "devices": s.total},
    )


def _stalled(s: Summary, now: float) -> Alert:
    hours = (now - s.last_change) / 3600
    waiting = s.counts.get("waiting", 0)
    return Alert(
        "rollout_stalled",
        f"rollout:{s.id}",
        f"升级批次 {s.id}（版本 {s.version}）自 {beijing(s.last_change)} 起"
        f" {hours:.0f} 小时无进展，第 {s.cohort + 1}/{len(s.cohorts)} 组，{waiting} 台未开始",
        f"rollout {s.id} (version {s.version}) has not moved for {hours:.0f} h (since"
        f" {beijing(s.last_change)}), cohort {s.cohort + 1}/{len(s.cohorts)},"
        f" {waiting} devices not offered yet",
        {"rollout": s.id, "version": s.version, "since": s.last_change, "hours": round(hours, 1)},
    )
