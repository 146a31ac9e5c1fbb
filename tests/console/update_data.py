"""Two rollouts for the updates page, written as `ota rollout` and its driver write them: the
first done, the second running with a device rolled back, one downloading, one confirmed, one
already on a newer version (`refused downgrade`: done, not failed) and one not offered yet."""

from __future__ import annotations

from daozhang.cli import main as cli_main
from daozhang.ota.rollout import create
from daozhang.schema import open_database

from tests.ota.test_serve_broker import tiny_bundle

DEVICES = [f"UPD0000{n}" for n in range(1, 6)]
ROLLED, FETCHING, CONFIRMED, NEWER, WAITING = DEVICES
STATES = {
    ROLLED: ("rolled back crash", "0.1.0"),
    FETCHING: ("fetching 40%", "0.1.0"),
    CONFIRMED: ("confirmed", "0.2.0"),
    NEWER: ("refused downgrade", "0.3.0"),
}


def build(url: str) -> tuple[int, int]:
    """The store at `url` with both rollouts; their ids (done, running)."""
    for n, dev in enumerate(DEVICES, start=1):
        key = bytes([n]) * 32
        assert cli_main(["device", "add", dev, "--key", key.hex(), "--db", url]) == 0
    with open_database(url) as store:
        done = create(store, tiny_bundle(), DEVICES[:2], [100.0], 5.0)
        running = create(store, tiny_bundle(), DEVICES, [80.0, 100.0], 50.0)
        with store.transaction() as tx:
            tx.execute("UPDATE ota_targets SET state = 'confirmed', fw = '0.2.0'"
                       " WHERE rollout_id = ?", (done,))  # fmt: skip
            tx.execute("UPDATE ota_rollouts SET state = 'done' WHERE id = ?", (done,))
            for dev, (state, fw) in STATES.items():
                tx.execute(
                    "UPDATE ota_targets SET state = ?, fw = ? WHERE rollout_id = ? AND dev = ?",
                    (state, fw, running, dev),
                )
    return done, running
