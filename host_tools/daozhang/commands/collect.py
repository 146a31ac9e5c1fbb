"""`daozhang collect`: run one collector of a shared subscription until SIGTERM."""

from __future__ import annotations

import argparse
import signal
import socket
from types import FrameType

from daozhang.collector.metrics import serve
from daozhang.collector.service import Collector, CollectorConfig
from daozhang.commands.args import input_dir, number, port_number, whole_number
from daozhang.errors import UsageError
from daozhang.schema import COMPONENTS


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
    parser.add_argument(
        "--metrics-port", type=port_number, help="serve Prometheus /metrics on this port"
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address for /metrics")
    parser.add_argument(
        "--pki-dir",
        type=input_dir,
        help="the fleet's PKI folder (pki init): its certificates' and CRL's deadlines on"
        " /metrics (dz_pki_expiry_days)",
    )
    parser.add_argument(
        "--commit-records",
        type=whole_number(1),
        default=2000,
        help="commit after this many new records",
    )
    parser.add_argument(
        "--commit-ms", type=whole_number(0), default=50, help="... or after this many ms"
    )
    parser.add_argument(
        "--max-unacked",
        type=whole_number(1, 65535),  # MQTT v5 Receive Maximum: 1..65535
        default=1000,
        help="QoS 1 messages held before their PUBACK (MQTT v5 Receive Maximum)",
    )
    parser.add_argument(
        "--max-queue-bytes",
        type=whole_number(65536),
        default=16 * 2**20,
        metavar="BYTES",
        help="payload bytes received and not yet committed before the collector stops reading"
        " from the broker (default 16 MiB); the broker never sends a message over 65 KiB",
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
        "--session-expiry",
        type=whole_number(0, 2**32 - 1),  # MQTT v5: a four-byte interval
        default=3600,
        help="seconds the broker keeps our session",
    )
    parser.add_argument(
        "--connect-timeout",
        type=number(0),
        metavar="SECONDS",
        help="give up if the broker cannot be reached for this long at start"
        " (default: keep retrying, logging each attempt)",
    )
    parser.add_argument(
        "--require-key",
        action="store_true",
        help="quarantine batches of devices that have no key in the device store",
    )


def _check(args: argparse.Namespace) -> None:
    """Options the collector cannot run with, refused before anything starts."""
    port = args.metrics_port
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--metrics-port: {port} is not a TCP port (1-65535)")
    for option, value in (
        ("--max-unacked", args.max_unacked),  # a Receive Maximum of 0 is a protocol error
        ("--commit-records", args.commit_records),
        ("--commit-ms", args.commit_ms),
    ):
        if value < 1:
            raise UsageError(f"{option}: must be at least 1, got {value}")
    if args.session_expiry < 0:
        raise UsageError(f"--session-expiry: must be at least 0, got {args.session_expiry}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    config = CollectorConfig(
        broker=args.broker,
        db_url=args.db,
        group=args.group,
        name=args.name,
        session_expiry_s=args.session_expiry,
        commit_records=args.commit_records,
        commit_ms=args.commit_ms,
        max_unacked=args.max_unacked,
        max_queue_bytes=args.max_queue_bytes,
        max_inbox=args.max_inbox,
        require_key=args.require_key,
        tls_dir=args.tls_dir,
        connect_timeout_s=args.connect_timeout,
        schema=COMPONENTS,
    )
    collector = Collector(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        collector.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = None
    if args.metrics_port:
        try:
            server = serve(
                collector.metrics,
                args.metrics_port,
                args.db,
                host=args.metrics_host,
                pki_dir=args.pki_dir,
            )
        except OSError as exc:  # in use, not allowed, or no such address
            raise UsageError(
                f"--metrics-port {args.metrics_port} on {args.metrics_host}: {exc.strerror or exc}"
            ) from exc
    collector.connect()
    try:
        collector.run()
    finally:
        if server is not None:
            server.shutdown()
    return 0
