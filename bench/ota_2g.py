"""The full agent's update over the 2G link profile of bench/uplink_2g.py (50 kbit/s up,
80 kbit/s down, 300 ms RTT; daozhang.lab.faults.proxy shaping a real Mosquitto).

One run: the agent (real MicroPython, real journal, update folder on the host) is offered the
compiled agent (`ota build`, virtual board) by the host's bundle server connected straight to
the broker; the device pulls it through the shaped link, a window of chunks a request, checks
and stages it. Timed from the offer to the switch, against the physical limit: the bundle's
bytes (manifest and files) / the downlink's bandwidth; once per `ota_window` asked for (1 is
one chunk a round trip, as before the window).

    .venv/bin/python bench/ota_2g.py [--windows 1,4,8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daozhang.broker.mosquitto import Mosquitto  # noqa: E402
from daozhang.flash.build import compilers  # noqa: E402
from daozhang.lab.faults.proxy import FaultProxy  # noqa: E402
from daozhang.ota.bundle import Bundle, make_bundle, read_bundle  # noqa: E402
from daozhang.ota.serve import Server  # noqa: E402

from bench.uplink_2g import DOWN_BPS, ONE_WAY_MS, UP_BPS, shaped  # noqa: E402
from tests.fakes.ack_responder import AckResponder  # noqa: E402
from tests.uplink.agent_run import agent_config, finish_agent, start_agent  # noqa: E402

DEV = "dev-bench-ota"
KEY = bytes(range(32))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="1,4", help="ota_window values, one run each")
    args = parser.parse_args()
    bundle = read_bundle(make_bundle("0.2.0", "virtual", compilers()[0], "0.1.0"))
    payload = len(bundle.manifest_bytes) + bundle.manifest.total_bytes
    physical = payload / DOWN_BPS
    print(
        f"link: {UP_BPS * 8 / 1000:.0f} kbit/s up, {DOWN_BPS * 8 / 1000:.0f} kbit/s down,"
        f" {2 * ONE_WAY_MS} ms RTT; bundle {payload} bytes (manifest and"
        f" {len(bundle.manifest.files)} files); physical limit {physical:.1f} s"
        " (bundle bytes / downlink bandwidth)",
        flush=True,
    )
    for window in (int(w) for w in args.windows.split(",")):
        took, down = one_update(bundle, window)
        print(f"ota_window {window:2}: offer to switch {took:7.1f} s = {took / physical:5.2f} x"
              f" the physical limit ({down} bytes down the link)", flush=True)  # fmt: skip
    return 0


def one_update(bundle: Bundle, window: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="dz-bench-ota-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(workdir=tmp / "mosquitto").start()
        responder = AckResponder(broker.port, keys={DEV: KEY}).start()
        proxy = FaultProxy("127.0.0.1", broker.port).start()
        shaped(proxy)
        try:
            cfg = agent_config(
                DEV, proxy.port, key=KEY.hex(), keepalive_s=60, ack_timeout_s=30, ota_window=window
            )
            plan = {
                "cfg": cfg,
                "root": str(tmp / "j"),
                "ota_root": str(tmp / "ota"),
                "until_switched": True,
                "max_s": 900,
            }
            agent = start_agent(tmp, plan)
            time.sleep(5)  # connected through the shaped link (its CONNACK takes a round trip)
            with Server(f"mqtt://127.0.0.1:{broker.port}", bundle, reoffer_s=60) as server:
                started = time.monotonic()
                server.offer(DEV, KEY)
                state = "offered"
                while time.monotonic() - started < 900 and agent.poll() is None:
                    state = server.wait(0.5)[DEV].state
                    if state.split(" ")[0] in ("switched", "trial", "confirmed", "refused"):
                        break
                took = time.monotonic() - started
            result = finish_agent(agent, timeout=60)
            down = proxy.stats.bytes_down
        finally:
            proxy.stop()
            responder.stop()
            broker.stop()
    assert "OTA_SWITCHED" in result.output, (state, result.output[-2000:])
    return took, down


if __name__ == "__main__":
    raise SystemExit(main())
