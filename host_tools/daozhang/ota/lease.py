"""One driver per rollout (`ota_rollouts.driver`, `driver_until`; ota migration 2): a driver
takes a hold on a running rollout, renews it at every wait slice and lets go when it stops;
another driver (a spare `ota service`, an `ota resume`) is refused, naming the holder, until
the hold lapses, and then takes over."""

from __future__ import annotations

import os
import socket
import time
import uuid

from daozhang.errors import DaozhangError
from daozhang.store import Store

# A driver renews its hold on a rollout at every wait slice (2 s); a hold not renewed for this
# long (its process killed, its host gone) is taken over by another driver.
LEASE_S = 20.0


def driver_name() -> str:
    """Who drives, as `ota status` and another driver's refusal name it: host, process, and a
    tag of this run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def take(store: Store, rid: int, me: str, lease_s: float) -> None:
    """Hold the rollout for `me`, or say who holds it."""
    now = time.time()
    with store.transaction() as tx:
        took = tx.execute(
            "UPDATE ota_rollouts SET driver = ?, driver_until = ? WHERE id = ?"
            " AND (driver IS NULL OR driver = ? OR driver_until < ?) RETURNING id",
            (me, now + lease_s, rid, me, now),
        )
        if took:
            return
        ((holder,),) = tx.execute("SELECT driver FROM ota_rollouts WHERE id = ?", (rid,))
    raise DaozhangError(
        f"rollout {rid} is being driven by {holder}: stop that one, or wait (its hold lapses"
        f" {lease_s:g} s after it stops renewing it)"
    )


def renew(store: Store, rid: int, me: str, lease_s: float) -> bool:
    """Hold on for another lease; False once the rollout is no longer running (halted by hand:
    `ota halt`, the console) or another driver has taken it over."""
    with store.transaction() as tx:
        rows = tx.execute(
            "UPDATE ota_rollouts SET driver_until = ? WHERE id = ? AND state = 'running'"
            " AND driver = ? RETURNING id",
            (time.time() + lease_s, rid, me),
        )
    return bool(rows)


def release(store: Store, rid: int, me: str) -> None:
    with store.transaction() as tx:
        tx.execute(
            "UPDATE ota_rollouts SET driver = NULL, driver_until = NULL"
            " WHERE id = ? AND driver = ?",
            (rid, me),
        )
