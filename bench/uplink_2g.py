"""Drain 1,000 buffered receipts through an emulated 2G link (50 kbit/s up, 300 ms RTT).

One run, three figures on the same link (daozhang.lab.faults.proxy shaping a real Mosquitto):
  - daozhang: the agent's uploader under the real MicroPython, real journal, acks from a
    host-side responder (tests/fakes/ack_responder.py);
  - the physical limit: the bytes daozhang put on the wire upstream / 6,250 bytes/s;
  - stop-and-wait: one receipt per MQTT message as JSON, waiting for each PUBACK
    (bench/mp_stop_and_wait.py). It is linear by construction (one round trip per receipt),
    so it runs the first SW_N receipts and is scaled to 1,000: the run stays under 2 minutes.
Bytes on the wire per receipt are compared the same way (daozhang vs JSON-per-message).

    .venv/bin/python bench/uplink_2g.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daozhang.broker.mosquitto import Mosquitto  # noqa: E402
from daozhang.lab.faults.proxy import FaultProxy  # noqa: E402
from daozhang.lab.mp.run import micropython_argv, module_path  # noqa: E402

from tests.fakes.ack_responder import AckResponder  # noqa: E402
from tests.uplink.agent_run import agent_config, finish_agent, start_agent  # noqa: E402

N = 1000
SW_N = 100
UP_BPS = 50_000 / 8  # 50 kbit/s
ONE_WAY_MS = 150  # 300 ms round trip
DOWN_BPS = 80_000 / 8  # GPRS downlink is a little faster


def shaped(proxy: FaultProxy) -> None:
    proxy.shape(delay_ms=ONE_WAY_MS, up_bps=UP_BPS, down_bps=DOWN_BPS, buffer_bytes=8192)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dz-bench-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(workdir=tmp / "mosquitto").start()
        responder = AckResponder(broker.port).start()
        try:
            # 1. daozhang
            proxy = FaultProxy("127.0.0.1", broker.port).start()
            shaped(proxy)
            cfg = agent_config("dev-bench", proxy.port, keepalive_s=60, ack_timeout_s=30)
            plan = {
                "cfg": cfg,
                "root": str(tmp / "j"),
                "preload": N,
                "until_acked": True,
                "max_s": 600,
            }
            result = finish_agent(start_agent(tmp, plan), timeout=700)
            up_ms = next(
                int(line.split()[1])
                for line in result.output.splitlines()
                if line.startswith("UPLOAD_MS")
            )
            dz_bytes = proxy.stats.bytes_up
            proxy.stop()
            assert result.acked == result.next_seq - 1, result.output
            records = result.acked
            # 2. stop-and-wait, JSON per message
            proxy = FaultProxy("127.0.0.1", broker.port).start()
            shaped(proxy)
            env = {**os.environ, "MICROPYPATH": module_path("virtual")}
            out = subprocess.run(
                [
                    *micropython_argv("256K"),
                    str(REPO / "bench" / "mp_stop_and_wait.py"),
                    str(proxy.port),
                    str(SW_N),
                ],
                env=env,
                capture_output=True,
                timeout=600,
                check=True,
            ).stdout.decode()
            sw_ms = int(
                next(
                    line for line in out.splitlines() if line.startswith("STOP_AND_WAIT_MS")
                ).split()[1]
            )
            sw_bytes = proxy.stats.bytes_up
            proxy.stop()
        finally:
            responder.stop()
            broker.stop()
    physical_s = dz_bytes / UP_BPS
    dz_s = up_ms / 1000
    sw_s = sw_ms / 1000 * N / SW_N
    print(
        f"link: {UP_BPS * 8 / 1000:.0f} kbit/s up, {2 * ONE_WAY_MS} ms RTT; {N} receipts "
        f"({records} records with the agent's own diagnostics)"
    )
    print(f"daozhang drain          {dz_s:8.1f} s   {dz_bytes / N:6.0f} B/receipt on the wire")
    print(f"physical limit          {physical_s:8.1f} s   (daozhang's bytes / bandwidth)")
    print(
        f"stop-and-wait (JSON)    {sw_s:8.1f} s   {sw_bytes / SW_N:6.0f} B/receipt on the wire"
        f"   (measured on {SW_N}, scaled to {N})"
    )
    print(f"daozhang / physical     {dz_s / physical_s:8.2f} x   (goal <= 1.15)")
    print(f"stop-and-wait / dz      {sw_s / dz_s:8.1f} x   (goal >= 10)")
    print(f"JSON bytes / dz bytes   {sw_bytes / SW_N / (dz_bytes / N):8.2f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
