"""`fleet status` names an update under way or failed, from the latest heartbeat's `ota` and
`fw` (DESIGN §1.6); a confirmed one is not a problem."""

from __future__ import annotations

import json
import time
from pathlib import Path

from daozhang.cli import main as cli_main
from daozhang.fleet.status import fleet_status
from daozhang.schema import open_database


def test_fleet_status_shows_the_update_state(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    now = time.time()
    states = {"DEV-0001": "ab12cd34 rolled back crash", "DEV-0002": "ab12cd34 confirmed"}
    for dev in states:
        assert cli_main(["device", "add", dev, "--generate", "--db", db]) == 0
    with open_database(db) as store, store.transaction() as tx:
        for dev, state in states.items():
            body = {"v": 1, "dev": dev, "fw": "0.2.0", "ota": state, "link": "up"}
            tx.execute(
                "INSERT INTO heartbeats (dev, received_at, t, fw, link, body_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (dev, now, int(now), "0.2.0", "up", json.dumps(body)),
            )
            tx.execute("UPDATE devices SET online = 1, last_seen = ? WHERE dev = ?", (now, dev))
    with open_database(db, create=False) as store:
        rows = {r.dev: r for r in fleet_status(store, now)}
    assert (rows["DEV-0001"].fw, rows["DEV-0001"].update) == ("0.2.0", "rolled back crash")
    assert rows["DEV-0001"].problem == "update rolled back crash (running 0.2.0)"
    assert rows["DEV-0002"].problem == "ok"
