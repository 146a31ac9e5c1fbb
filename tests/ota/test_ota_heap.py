"""The whole agent (intake, journal, uplink) downloads and stages the real 63 KB update in its
64 KB object heap, while receipts keep coming through intake (DESIGN §1.6; the heap figure is
measured as tests/uplink/test_uplink_e2e.py measures it: code loaded first, then capped)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.flash.build import compilers
from daozhang.ota.bundle import make_bundle, read_bundle
from daozhang.ota.serve import Server

from tests.fakes.ack_responder import AckResponder
from tests.uplink.agent_run import agent_config, finish_agent, start_agent
from tests.waiting import wait_until

DEV = "dev-0027"
KEY = bytes(range(3, 35))


@pytest.mark.slow
@pytest.mark.parametrize("window", [4, 8])  # the default, and the 2G figure's fastest
def test_the_agent_downloads_an_update_within_its_64k_object_heap(
    mosquitto: Mosquitto, tmp_path: Path, window: int
) -> None:
    bundle = read_bundle(make_bundle("0.2.0", "virtual", compilers()[0], "0.1.0"))
    responder = AckResponder(mosquitto.port, keys={DEV: KEY}).start()
    broker = f"mqtt://127.0.0.1:{mosquitto.port}"
    try:
        cfg = agent_config(
            DEV, mosquitto.port, key=KEY.hex(), hb_s=5, ota_gap_ms=5, ota_window=window
        )
        plan = {
            "cfg": cfg,
            "root": str(tmp_path / "j"),
            "ota_root": str(tmp_path / "ota"),
            "trickle": 400,
            "trickle_ms": 100,
            "max_s": 60,
            "until_switched": True,
            "intake": True,
            "object_heap": 64 * 1024,
        }
        proc = start_agent(tmp_path, plan)
        with Server(broker, bundle, reoffer_s=5) as server:
            # The agent stops at the switch (what follows it is test_ota_virtual_board's);
            # waiting in short slices, the server offers again while it is silent.
            server.offer(DEV, KEY)
            states = server.wait(0)
            deadline = time.monotonic() + 55
            while proc.poll() is None and time.monotonic() < deadline:
                states = server.wait(0.5)
        result = finish_agent(proc, timeout=120)
    finally:
        responder.stop()
    print(
        f"downloading an update, {window} chunks a fetch, agent objects on the heap: peak live"
        f" {result.peak_live}"
        f" bytes, peak with garbage {result.peak_heap} bytes (budget 65536)"
    )
    assert "MemoryError" not in result.output, result.output[-3000:]
    assert "OTA_SWITCHED" in result.output, (states, result.output[-3000:])
    assert 0 < result.peak_live < result.peak_heap <= 65536
    # Staged whole, beside the running version; receipts went up meanwhile.
    slot = tmp_path / "ota" / "a"
    for f in bundle.manifest.files:
        assert hashlib.sha256((slot / f.path.lstrip("/")).read_bytes()).digest() == f.sha256
    # (How many depends on how soon the switch came: under 100 in a loaded CI run, 100+ alone.)
    assert wait_until(lambda: len(responder.devices[DEV].records) >= 10, timeout=5)
