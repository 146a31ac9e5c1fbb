"""Rollouts: a bundle offered cohort by cohort, halted when failures pass a threshold, with
its state in the store (DESIGN §1.6).

Cohorts are cumulative shares of the targets (`1,10,50,100`: the first 1 %, then up to 10 %,
...; at least one device each). A cohort starts only when every device offered so far has a
final word (confirmed, refused, rolled back). A device answering `refused downgrade` already
runs this version or a newer one: it counts as done, not failed. Failures are `refused` for any
other reason and `rolled back`; when their share of the devices offered so far passes
`halt_pct`, the rollout halts and no further cohort is offered.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from daozhang.errors import StoreError, UsageError
from daozhang.ota.bundle import Bundle, manifest_id, read_bundle
from daozhang.ota.lease import LEASE_S, driver_name, release, renew, take
from daozhang.ota.serve import DeviceState, Server
from daozhang.remote.send import signing_keys
from daozhang.store import Store

FINAL = ("confirmed", "refused", "rolled")


def parse_cohorts(text: str) -> list[float]:
    try:
        shares = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--cohorts {text!r}: expected percentages, e.g. 1,10,50,100") from None
    if not shares or shares != sorted(shares) or shares[0] <= 0 or shares[-1] != 100:
        raise UsageError(f"--cohorts {text!r}: rising percentages ending at 100")
    return shares


def parse_halt(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise UsageError(f"--halt-at {text!r}: expected a percentage, e.g. 5%") from None
    if not 0 <= value <= 100:
        raise UsageError(f"--halt-at {text!r}: between 0% and 100%")
    return value


def cohort_of(devs: list[str], shares: list[float]) -> dict[str, int]:
    """Each device's cohort (0-based), the devices in their given order."""
    out: dict[str, int] = {}
    start = 0
    for index, share in enumerate(shares):
        end = max(start + 1, math.ceil(len(devs) * share / 100)) if start < len(devs) else start
        for dev in devs[start:end]:
            out[dev] = index
        start = end
    return out


def failed(state: str) -> bool:
    return state.startswith("rolled") or (
        state.startswith("refused") and state != "refused downgrade"
    )


def final(state: str) -> bool:
    return state.split(" ", 1)[0] in FINAL


def decide(states: list[str], halt_pct: float) -> str:
    """For the devices offered so far: `wait` (some have no final word), `halt`, or `next`."""
    if any(not final(s) for s in states):
        return "wait"
    bad = sum(1 for s in states if failed(s))
    if states and bad * 100 / len(states) > halt_pct:
        return "halt"
    return "next"


def select(
    store: Store,
    *,
    devices: list[str] | None = None,
    everyone: bool = False,
    merchant: str | None = None,
    fw: str | None = None,
) -> list[str]:
    """The target devices, sorted: named ones, all, a merchant's, or those running `fw`."""
    if devices:
        return sorted(set(devices))
    if everyone:
        rows = store.query("SELECT dev FROM devices WHERE hmac_key IS NOT NULL ORDER BY dev")
    elif merchant:
        rows = store.query("SELECT dev FROM devices WHERE mid = ? ORDER BY dev", (merchant,))
    else:
        rows = store.query(
            "SELECT h.dev FROM heartbeats h WHERE h.id = (SELECT MAX(id) FROM heartbeats"
            " WHERE dev = h.dev) AND h.fw = ? ORDER BY h.dev",
            (fw,),
        )
    return [str(r[0]) for r in rows]


@dataclass(frozen=True)
class Target:
    dev: str
    cohort: int
    state: str
    fw: str | None


@dataclass(frozen=True)
class Rollout:
    id: int
    bundle_id: str
    version: str
    cohorts: list[float]
    halt_pct: float
    cohort: int
    state: str  # running, halted, done
    why: str | None
    targets: list[Target]
    driver: str | None = None  # who drives it now (a hold not lapsed), if anyone


def create(store: Store, data: bytes, devs: list[str], shares: list[float], halt: float) -> int:
    bundle = read_bundle(data)
    if not devs:
        raise UsageError("rollout: no device matches")
    signing_keys(store, devs)  # every target can be offered it
    bid = manifest_id(bundle.manifest_bytes)
    cohorts = cohort_of(devs, shares)
    now = time.time()
    with store.transaction() as tx:
        if not tx.execute("SELECT 1 FROM ota_bundles WHERE id = ?", (bid,)):
            tx.execute(
                "INSERT INTO ota_bundles (id, version, board, data, added_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (bid, bundle.manifest.version, bundle.manifest.board, data, now),
            )
        rid = int(
            tx.execute(
                "INSERT INTO ota_rollouts (bundle_id, cohorts, halt_pct, cohort, state, why,"
                " created_at, updated_at) VALUES (?, ?, ?, 0, 'running', NULL, ?, ?)"
                " RETURNING id",
                (bid, json.dumps(shares), halt, now, now),
            )[0][0]
        )
        tx.executemany(
            "INSERT INTO ota_targets (rollout_id, dev, cohort, state, fw, updated_at)"
            " VALUES (?, ?, ?, 'waiting', NULL, ?)",
            [(rid, dev, cohorts[dev], now) for dev in devs],
        )
    return rid


def load(store: Store, rid: int | None = None) -> Rollout:
    """A rollout (the latest when `rid` is None)."""
    where, params = ("r.id = ?", (rid,)) if rid is not None else ("1 = 1", ())
    rows = store.query(
        "SELECT r.id, r.bundle_id, b.version, r.cohorts, r.halt_pct, r.cohort, r.state, r.why,"
        " r.driver, r.driver_until"
        f" FROM ota_rollouts r JOIN ota_bundles b ON b.id = r.bundle_id WHERE {where}"
        " ORDER BY r.id DESC LIMIT 1",
        params,
    )
    if not rows:
        raise StoreError("no such rollout" if rid is not None else "no rollout in the store")
    r = rows[0]
    targets = [
        Target(str(t[0]), int(t[1]), str(t[2]), t[3])
        for t in store.query(
            "SELECT dev, cohort, state, fw FROM ota_targets WHERE rollout_id = ?"
            " ORDER BY cohort, dev",
            (r[0],),
        )
    ]
    return Rollout(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        json.loads(r[3]),
        float(r[4]),
        int(r[5]),
        str(r[6]),
        r[7],
        targets,
        str(r[8]) if r[8] is not None and float(r[9]) > time.time() else None,
    )


def _bundle(store: Store, bid: str) -> Bundle:
    return read_bundle(
        bytes(store.query("SELECT data FROM ota_bundles WHERE id = ?", (bid,))[0][0])
    )


def _save(
    store: Store, rid: int, seen: dict[str, DeviceState], saved: dict[str, tuple[str, str | None]]
) -> None:
    """The devices whose word changed since `saved` (kept up to date here): a target's
    `updated_at` is when its state last changed, and a wait slice of 10,000 devices writes
    only the few that moved."""
    now = time.time()
    changed = [(dev, s) for dev, s in seen.items() if saved.get(dev) != (s.state, s.fw)]
    if not changed:
        return
    with store.transaction() as tx:
        for dev, s in changed:
            tx.execute(
                "UPDATE ota_targets SET state = ?, fw = COALESCE(?, fw), updated_at = ?"
                " WHERE rollout_id = ? AND dev = ?",
                (s.state, s.fw, now, rid, dev),
            )
    saved.update((dev, (s.state, s.fw)) for dev, s in changed)


def _set(store: Store, rid: int, cohort: int, state: str, why: str | None) -> None:
    # Only while it runs: a rollout halted by hand meanwhile stays halted.
    with store.transaction() as tx:
        tx.execute(
            "UPDATE ota_rollouts SET cohort = ?, state = ?, why = ?, updated_at = ?"
            " WHERE id = ? AND state = 'running'",
            (cohort, state, why, time.time(), rid),
        )


def halt(store: Store, rid: int, why: str) -> bool:
    """Halt a running rollout by hand (`ota halt`, the console): whoever drives it stops
    offering and serving at its next look at the store (within 2 s). False if it was not
    running."""
    with store.transaction() as tx:
        rows = tx.execute(
            "UPDATE ota_rollouts SET state = 'halted', why = ?, updated_at = ?"
            " WHERE id = ? AND state = 'running' RETURNING id",
            (why, time.time(), rid),
        )
    return bool(rows)


@dataclass(frozen=True)
class Summary:
    """A rollout in a line: its state and how many of its devices are where."""

    id: int
    version: str
    state: str
    why: str | None
    cohort: int
    cohorts: list[float]
    halt_pct: float
    created_at: float
    updated_at: float
    counts: dict[str, int]  # how many targets are in each state ("rolled back crash": 1)
    last_change: float  # the latest change of the rollout or any of its devices (host time)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def summaries(store: Store, limit: int = 50) -> list[Summary]:
    """The latest `limit` rollouts, newest first, with their targets counted by state."""
    rows = store.query(
        "SELECT r.id, b.version, r.state, r.why, r.cohort, r.cohorts, r.halt_pct, r.created_at,"
        " r.updated_at FROM ota_rollouts r JOIN ota_bundles b ON b.id = r.bundle_id"
        " ORDER BY r.id DESC LIMIT ?",
        (limit,),
    )
    if not rows:
        return []
    counts: dict[int, dict[str, int]] = {int(r[0]): {} for r in rows}
    changed: dict[int, float] = {int(r[0]): float(r[8]) for r in rows}
    for rid, state, n, latest in store.query(
        "SELECT rollout_id, state, COUNT(*), MAX(updated_at) FROM ota_targets"
        " WHERE rollout_id >= ? GROUP BY rollout_id, state",
        (min(counts),),
    ):
        held = counts.get(int(rid))
        if held is not None:
            held[str(state)] = int(n)
            changed[int(rid)] = max(changed[int(rid)], float(latest))
    out = []
    for r in rows:
        rid = int(r[0])
        out.append(Summary(rid, str(r[1]), str(r[2]), r[3], int(r[4]), json.loads(r[5]),
                           float(r[6]), float(r[7]), float(r[8]), counts[rid],
                           changed[rid]))  # fmt: skip
    return out


def running(store: Store) -> list[int]:
    """The rollouts still running, oldest first."""
    rows = store.query("SELECT id FROM ota_rollouts WHERE state = 'running' ORDER BY id")
    return [int(r[0]) for r in rows]


def drive(
    store: Store,
    rid: int,
    broker: str,
    tls_dir: str | None,
    wait_s: float,
    stop: threading.Event | None = None,
    lease_s: float = LEASE_S,
    taken: Callable[[], object] | None = None,
) -> Rollout:
    """Offer, serve and judge until the rollout is done or halted, or `wait_s` passes or `stop`
    is set (then it stays `running` in the store: drive it again to go on). Only one driver at
    a time: another one holding the rollout is refused (DaozhangError, naming it); `taken` is
    called once this one holds it."""
    r = load(store, rid)
    if r.state != "running":
        return r
    keys = signing_keys(store, [t.dev for t in r.targets])
    me = driver_name()
    take(store, rid, me, lease_s)
    if taken is not None:
        taken()
    try:
        _drive(store, r, keys, (broker, tls_dir), me, wait_s, stop, lease_s)
    finally:
        release(store, rid, me)
    return load(store, rid)


def _drive(
    store: Store,
    r: Rollout,
    keys: dict[str, bytes],
    connection: tuple[str, str | None],  # broker, tls_dir
    me: str,
    wait_s: float,
    stop: threading.Event | None,
    lease_s: float,
) -> None:
    rid = r.id
    saved = {t.dev: (t.state, t.fw) for t in r.targets}
    deadline = time.monotonic() + wait_s
    cohort = r.cohort
    broker, tls_dir = connection
    with Server(broker, _bundle(store, r.bundle_id), tls_dir) as server:
        while True:
            current = [t for t in r.targets if t.cohort <= cohort]
            for t in current:
                if t.dev in server.devices:
                    continue
                if final(t.state):  # its word is in the store already (a resumed rollout)
                    with server.lock:
                        server.devices[t.dev] = DeviceState(t.dev, t.state, t.fw, heard=True)
                else:
                    server.offer(t.dev, keys[t.dev])
            left = deadline - time.monotonic()
            seen = server.wait(max(0.0, min(left, 2.0)))
            _save(store, rid, seen, saved)
            states = [seen[t.dev].state for t in current]
            verdict = decide(states, r.halt_pct)
            if verdict == "halt":
                bad = sorted(t.dev for t in current if failed(seen[t.dev].state))
                _set(store, rid, cohort, "halted", f"{len(bad)} of {len(current)} failed")
                break
            if verdict == "next":
                if cohort + 1 >= len(r.cohorts):
                    _set(store, rid, cohort, "done", None)
                    break
                cohort += 1
                _set(store, rid, cohort, "running", None)
                continue
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            if not renew(store, rid, me, lease_s):  # halted by hand, or taken over
                break
