"""The updates page: the rollouts of the store (`daozhang ota rollout`, driven by `ota service`),
newest first, with how many of their devices are confirmed, under way, failed or not offered
yet; one rollout's devices, failures first; and a button that halts a running rollout, as
`ota halt` does (its driver stops offering and serving within 2 s).

Reads are plain SELECTs outside any write transaction (`Store.query`).
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.console.words import beijing
from daozhang.errors import UsageError
from daozhang.ota.rollout import Summary, failed, final, halt, summaries
from daozhang.ota.words import ROLLOUT_STATES, update_words
from daozhang.store import Store

TARGETS_SHOWN = 500  # devices listed for one rollout; the rest are counted


@dataclass(frozen=True)
class RolloutLine:
    id: int
    version: str
    state_code: str
    state: str  # 进行中 running
    why: str
    cohort: str  # 2/4 (1,10,50,100%)
    halt_at: str
    created: str
    updated: str
    total: int
    done: int  # confirmed, or already running it (`refused downgrade`)
    under_way: int
    failed: int  # rolled back, or refused for another reason
    waiting: int


@dataclass(frozen=True)
class TargetLine:
    dev: str
    cohort: int  # 1-based
    state_code: str  # the state's first word
    state: str  # 已回退 rolled back
    detail: str  # crash
    fw: str
    updated: str
    failed: bool


@dataclass(frozen=True)
class UpdatesView:
    rollouts: list[RolloutLine]
    chosen: RolloutLine | None
    targets: list[TargetLine]
    more: int  # devices of the chosen rollout not listed


def _line(s: Summary) -> RolloutLine:
    zh, en = ROLLOUT_STATES.get(s.state, (s.state, s.state))
    n_failed = sum(n for state, n in s.counts.items() if failed(state))
    n_done = sum(n for state, n in s.counts.items() if final(state) and not failed(state))
    waiting = s.counts.get("waiting", 0)
    shares = ",".join(f"{x:g}" for x in s.cohorts)
    return RolloutLine(
        id=s.id,
        version=s.version,
        state_code=s.state,
        state=f"{zh} {en}",
        why=s.why or "",
        cohort=f"{s.cohort + 1}/{len(s.cohorts)} ({shares}%)",
        halt_at=f"{s.halt_pct:g}%",
        created=beijing(s.created_at),
        updated=beijing(s.updated_at),
        total=s.total,
        done=n_done,
        under_way=s.total - n_done - n_failed - waiting,
        failed=n_failed,
        waiting=waiting,
    )


def updates_view(store: Store, chosen_id: int | None) -> UpdatesView:
    lines = [_line(s) for s in summaries(store)]
    chosen = next((r for r in lines if r.id == chosen_id), None) if chosen_id else None
    if chosen_id is not None and chosen is None:
        raise LookupError(chosen_id)
    chosen = chosen or (lines[0] if lines else None)
    targets: list[TargetLine] = []
    more = 0
    if chosen is not None:
        rows = store.query(
            "SELECT dev, cohort, state, fw, updated_at FROM ota_targets WHERE rollout_id = ?",
            (chosen.id,),
        )
        for dev, cohort, state, fw, updated in rows:
            zh, en, detail = update_words(str(state))
            line = TargetLine(str(dev), int(cohort) + 1, str(state).split(" ", 1)[0],
                              f"{zh} {en}", detail, fw or "-", beijing(updated),
                              failed(str(state)))  # fmt: skip
            targets.append(line)
        # Failures first, then those under way, then waiting, then done; by cohort and device.
        targets.sort(key=lambda t: (_rank(t), t.cohort, t.dev))
        more = max(0, len(targets) - TARGETS_SHOWN)
        del targets[TARGETS_SHOWN:]
    return UpdatesView(lines, chosen, targets, more)


def _rank(t: TargetLine) -> int:
    if t.failed:
        return 0
    if t.state_code == "waiting":
        return 2
    return 3 if t.state_code in ("confirmed", "refused") else 1  # refused: only a downgrade


def halt_from_page(store: Store, rid: int, why: str, user: str) -> None:
    """The page's halt button: as `ota halt`, the user's name with the reason."""
    why = why.strip()
    if not why:
        raise UsageError("请写明暂停原因 say why the rollout is halted")
    if len(why) > 200:
        raise UsageError("原因太长 the reason is too long (at most 200 characters)")
    if not halt(store, rid, f"{why} ({user})"):
        raise UsageError(f"升级批次 rollout {rid} 不在进行中 is not running")
