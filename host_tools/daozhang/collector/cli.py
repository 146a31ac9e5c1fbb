"""`daozhang collect`: run one collector of a shared subscription until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import socket
from types import FrameType

from daozhang.collector.args import whole_number
from daozhang.collector.metrics import serve
from daozhang.collector.service import Collector, CollectorConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", required=True, help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    parser.add_argument(
        "--tls-dir",
        help="for mqtts: the collector's PKI folder (ca.pem, client.crt, client.key)",
    )
    parser.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    parser.add_argument("--group", default="daozhang", help="shared subscription group")
    parser.add_argument(
        "--name",
        default=f"dz-collector-{socket.gethostname()}",
        help="MQTT client id; keep it across restarts (the broker keeps its session)",
    )
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics")
    parser.add_argument(
        "--commit-records", type=int, default=2000, help="commit after this many new records"
    )
    parser.add_argument("--commit-ms", type=int, default=50, help="... or after this many ms")
    parser.add_argument(
        "--max-unacked",
        type=int,
        default=1000,
        help="QoS 1 messages held before their PUBACK (MQTT v5 Receive Maximum)",
    )
    parser.add_argument(
        "--max-inbox",
        type=whole_number(0),
        default=200_000,
        metavar="RECORDS",
        help="records that may be acked from the inbox before they are stored; past it, a chunk"
        " is stored after every group (0: store every record before acking it)",
    )
    parser.add_argument(
        "--session-expiry", type=int, default=3600, help="seconds the broker keeps our session"
    )
    parser.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help="give up if the broker cannot be reached for this long at start"
        " (default: keep retrying, logging each attempt)",
    )
    parser.add_argument(
        "--require-key",
        action="store_true",
        help="quarantine batches of devices that have no key in the device store",
    )


def run(args: argparse.Namespace) -> int:
    config = CollectorConfig(
        broker=args.broker,
        db_url=args.db,
        group=args.group,
        name=args.name,
        session_expiry_s=args.session_expiry,
        commit_records=args.commit_records,
        commit_ms=args.commit_ms,
        max_unacked=args.max_unacked,
        max_inbox=args.max_inbox,
        require_key=args.require_key,
        tls_dir=args.tls_dir,
        connect_timeout_s=args.connect_timeout,
    )
    collector = Collector(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        collector.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = None
    if args.metrics_port:
        server = serve(collector.metrics, args.metrics_port, args.db, host=args.metrics_host)
    collector.connect()
    try:
        collector.run()
    finally:
        if server is not None:
            server.shutdown()
    return 0
