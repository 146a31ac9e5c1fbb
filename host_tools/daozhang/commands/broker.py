"""`daozhang broker --dir PKI`: run Mosquitto with TLS, per-device identity and topic ACLs."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from daozhang.broker.config import FleetListeners
from daozhang.broker.mosquitto import Mosquitto
from daozhang.commands.args import port_number
from daozhang.security.pki import Pki


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, required=True, help="the PKI directory")
    parser.add_argument(
        "--port", type=port_number, default=8883, help="TLS listener (default 8883)"
    )
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="TLS with client certificates (default); --no-tls: plain TCP with passwords",
    )
    parser.add_argument(
        "--password-port",
        type=port_number,
        help="also a TLS listener with per-device username/password on this port",
    )
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--user", help="user Mosquitto runs as (default: the caller)")
    parser.add_argument(
        "--workdir", type=Path, help="config, ACL and persistence (default DIR/broker)"
    )
    parser.add_argument(
        "--write-only", action="store_true", help="write the config and ACL, do not start"
    )


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir or args.dir / "broker"
    listeners = FleetListeners(
        Pki(args.dir),
        workdir,
        tls=args.tls,
        password_port=args.password_port,
        bind=args.bind,
    )
    if args.user:
        listeners.run_as = args.user
    broker = Mosquitto(workdir=workdir, port=args.port, listeners=listeners)
    if args.write_only:
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "mosquitto.conf"
        conf.write_text(broker.config_text())
        print(conf)
        return 0
    broker.start()
    print(f"broker: {broker.url} (config {workdir / 'mosquitto.conf'})", flush=True)
    if listeners.password_port is not None:
        print(f"password listener: port {listeners.password_port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        assert broker.process is not None
        return broker.process.wait()
    finally:
        broker.stop()
