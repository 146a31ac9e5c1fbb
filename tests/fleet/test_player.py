"""The timeline played against real boards, a real broker and supervised processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.fleet.links import BUILTIN_LINKS
from daozhang.lab.fleet.plan import Action, LinkChange, LinkState
from daozhang.lab.fleet.player import Player
from daozhang.lab.fleet.scenario import Device
from daozhang.lab.fleet.supervisor import Supervisor
from daozhang.lab.fleet.target import BoardSlot, FleetTarget, ServiceSlot
from daozhang.ports import wait_listening


class RecordingPath:
    """Stands in for the proxy in this test of the player alone."""

    def __init__(self) -> None:
        self.states: list[LinkState] = []
        self.resets = 0

    def apply(self, state: LinkState) -> None:
        self.states.append(state)

    def reset(self) -> None:
        self.resets += 1


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetTarget]:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    with Supervisor(tmp_path / "logs", grace_s=2, handle_signals=False) as sup:
        broker = Mosquitto(tmp_path / "broker", persistence=False).start()
        sup.adopt("mosquitto", broker.stop)
        slots = []
        for i in range(2):
            device = Device(i, f"dz000{i + 1}", "g", BUILTIN_LINKS["good"])
            slot = BoardSlot(
                device,
                VirtualBoard.named(device.dev),
                tmp_path / f"{i}.img",
                256 * 1024,
                autostart=False,
            )
            slot.power_on()
            sup.adopt(device.dev, lambda s=slot: s.board.stop(power_cut=True))
            slots.append(slot)
        collector = ServiceSlot("collector0", ["sleep", "600"], sup)
        collector.start()
        yield FleetTarget(slots, broker, [collector], [RecordingPath(), None])


def test_timeline_acts_on_real_processes_and_logs_everything(
    fleet: FleetTarget, tmp_path: Path
) -> None:
    down = LinkState(link_up=False, rssi=-110, rat="gsm")
    events: list[LinkChange | Action] = [
        LinkChange(0.1, 0, down),
        Action(0.2, "reset", board=0),
        Action(0.2, "power_cut", board=1),
        Action(0.3, "broker_stop"),
        Action(0.3, "collector_kill"),
        Action(1.0, "broker_start"),
        Action(1.0, "collector_start"),
        Action(1.2, "power_on", board=1),
        Action(1.3, "reset", board=1),  # no proxy in front of board 1: must fail, loudly
        LinkChange(1.4, 0, LinkState()),
    ]
    old_pid = fleet.boards[1].board.board_pid()
    old_collector = fleet.collectors[0].child
    log = tmp_path / "timeline.jsonl"
    player = Player(events, fleet, log).start()
    time.sleep(0.6)
    assert fleet.boards[0].board.control()["link"] == "down"
    assert fleet.boards[0].board.control()["signal"] == {"rat": "gsm", "rssi": -110}
    assert not fleet.boards[1].board.running()
    assert old_collector is not None and not old_collector.alive()
    assert player.join(timeout=30)

    assert fleet.boards[0].board.control()["link"] == "up"
    assert fleet.boards[1].board.running() and fleet.boards[1].board.board_pid() != old_pid
    assert wait_listening(fleet.broker.port, timeout_s=5)
    new_collector = fleet.collectors[0].child
    assert new_collector is not None and new_collector.alive() and new_collector != old_collector
    path = fleet.paths[0]
    assert isinstance(path, RecordingPath)
    assert path.resets == 1 and [s.link_up for s in path.states] == [False, True]

    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == len(events)
    assert all(r["applied_s"] >= r["t"] for r in rows)
    assert [r for r in rows if "error" in r] == [rows[8]]
    assert player.errors == [
        "1.3 s reset board 1: DaozhangError: reset needs a proxy in front of the board"
    ]
    assert player.applied == len(events) - 1
