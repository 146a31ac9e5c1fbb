"""Every console page reads without the write lock: while another connection holds SQLite's
one write lock (as a collector does at every commit), each page still answers, at once.
A page that needed the lock would wait for it (the store's busy timeout is 30 s)."""

from __future__ import annotations

import sqlite3
import time

import httpx

from tests.console import money_data
from tests.console.server import login


def test_pages_answer_while_a_writer_holds_the_lock(money_url: str, money_db_url: str) -> None:
    with httpx.Client(base_url=money_url, follow_redirects=False, timeout=10) as c:
        assert login(c, "li").status_code == 303
        writer = sqlite3.connect(money_db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE devices SET note = 'held' WHERE dev = ?", (money_data.SPOT_DEV,))
            for path in (
                "/fleet",
                "/fleet/live",
                f"/device/{money_data.SPOT_DEV}?range=7d",
                "/cells",
                "/money",
                f"/money/lookup?by=rrn&rrn={money_data.SETTLED_RRN}",
            ):
                started = time.monotonic()
                assert c.get(path).status_code == 200, path
                assert time.monotonic() - started < 5, path
        finally:
            writer.execute("ROLLBACK")
            writer.close()
