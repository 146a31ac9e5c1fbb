"""`daozhang pki init|issue|revoke|cut|crl|list|check`: the fleet CA and per-device credentials."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable

from daozhang.commands.args import folder, whole_number
from daozhang.errors import UsageError
from daozhang.security.cut import cut_connection
from daozhang.security.pki import Pki
from daozhang.security.pki_health import deadlines, problems


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pki_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--dir", type=folder, required=True, help="the PKI directory")
        return p

    init = action("init", "create the fleet CA, the broker's certificate and an empty CRL")
    init.add_argument(
        "--host",
        action="append",
        default=[],
        help="broker host name or IP for the server certificate (besides localhost, 127.0.0.1)",
    )
    init.add_argument("--days", type=_validity, default=3650, help="CA validity (default 3650)")
    init.add_argument("--force", action="store_true", help="replace an existing PKI")
    init.set_defaults(handler=_init)

    issue = action("issue", "issue a device's client certificate (CN = device id) and HMAC key")
    issue.add_argument("device", help="device id, [A-Za-z0-9_-]{4,32}")
    issue.add_argument("--days", type=_validity, default=1825)
    issue.add_argument(
        "--password", action="store_true", help="also a broker username/password for the device"
    )
    issue.add_argument(
        "--no-cert", action="store_true", help="no client certificate (needs --password)"
    )
    issue.add_argument(
        "--collector", action="store_true", help="a collector identity (collector.NAME)"
    )
    issue.set_defaults(handler=_issue)

    revoke = action("revoke", "revoke a device (CRL + password removed); then SIGHUP the broker")
    revoke.add_argument("device", help="device id, or collector.NAME")
    revoke.set_defaults(handler=_revoke)

    cut = action(
        "cut",
        "close the broker connection a revoked identity still holds (after revoke and SIGHUP)",
    )
    cut.add_argument("device", help="device id, or collector.NAME")
    cut.add_argument(
        "--broker", required=True, help="the broker's certificate listener, mqtts://HOST:PORT"
    )
    cut.add_argument(
        "--timeout", type=_seconds, default=10.0, help="seconds per connection (default 10)"
    )
    cut.set_defaults(handler=_cut)

    crl = action("crl", "re-sign the CRL (brokers refuse every client once it expires)")
    crl.add_argument("--days", type=_validity, default=365)
    crl.set_defaults(handler=_crl)

    listing = action("list", "list identities and their state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)

    check = action(
        "check",
        "when the CRL, CA, broker and each identity's certificate expire; exit 1 if any is "
        "missing, expired or due within --warn-days (for a daily monitoring job)",
    )
    check.add_argument(
        "--warn-days", type=_days, default=30.0, help="warn this many days ahead (default 30)"
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_check)


def _bounded(unit: str, low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number of `unit` within low..high, or a message saying so."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: expected {low:g}..{high:g} {unit}")
        return value

    return parse


_days = _bounded("days", 0, 3650)
# A certificate's or CRL's validity in days: X.509 dates end in the year 9999.
_validity = whole_number(1, 36500)
_seconds = _bounded("seconds", 0.5, 300)


def run(args: argparse.Namespace) -> int:
    raise UsageError("pki: choose an action (init, issue, revoke, cut, crl, list, check)")


def _init(args: argparse.Namespace) -> int:
    pki = Pki(args.dir)
    pki.init(args.host, days=args.days, force=args.force)
    print(f"CA: {pki.ca_cert_path}\nbroker: {pki.server_cert_path}\nCRL: {pki.crl_path}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    pki = Pki(args.dir)
    if args.collector:
        if args.password or args.no_cert:
            raise UsageError("pki issue --collector: collectors use a client certificate only")
        identity = pki.issue_collector(args.device, days=args.days)
    else:
        identity = pki.issue_device(
            args.device, days=args.days, cert=not args.no_cert, password=args.password
        )
    print(f"{identity.name}: {identity.folder}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    Pki(args.dir).revoke(args.device)
    print(
        f"{args.device}: revoked; send the broker SIGHUP (pkill -HUP -x mosquitto) to apply,"
        " then close the connection it may still hold: daozhang pki cut"
        f" {args.device} --dir {args.dir} --broker mqtts://HOST:PORT. To refuse its data even"
        f" before that: daozhang device add {args.device} --generate --replace --db URL"
    )
    return 0


def _cut(args: argparse.Namespace) -> int:
    print(cut_connection(Pki(args.dir), args.device, args.broker, args.timeout))
    return 0


def _crl(args: argparse.Namespace) -> int:
    pki = Pki(args.dir)
    pki.write_crl(days=args.days)
    print(pki.crl_path)
    return 0


def _list(args: argparse.Namespace) -> int:
    identities = Pki(args.dir).identities()
    if args.json:
        print(json.dumps(identities, indent=2, sort_keys=True))
        return 0
    for name, entry in sorted(identities.items()):
        state = "revoked" if entry.get("revoked") else "active"
        auth = "+".join(k for k in ("serial", "password") if entry.get(k)).replace("serial", "cert")
        print(f"{name:34} {entry['role']:9} {state:8} {auth}")
    return 0


def _check(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    found = deadlines(Pki(args.dir))
    trouble = problems(found, now, args.warn_days)
    if args.json:
        rows = [
            {
                "kind": d.kind,
                "name": d.name,
                "path": str(d.path),
                "ends": None if d.ends is None else d.ends.isoformat(),
                "days_left": None if d.ends is None else round(d.days_left(now) or 0.0, 1),
            }
            for d in found
        ]
        print(json.dumps({"deadlines": rows, "problems": trouble}, indent=2))
    else:
        for d in found:
            left = d.days_left(now)
            when = "missing" if d.ends is None else f"{d.ends:%Y-%m-%d}  {left:7.0f} days"
            print(f"{d.kind:9} {d.name:34} {when}")
    for line in trouble:
        sys.stderr.write(f"daozhang: {line}\n")
    return 1 if trouble else 0
