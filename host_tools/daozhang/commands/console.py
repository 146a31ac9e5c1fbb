"""`daozhang console --db URL [--listen 127.0.0.1:8080]`: the fleet console (a web page);
`daozhang console user add NAME --role R [--password-stdin]`: one of its accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from functools import partial

from daozhang.console.users import ROLES, add_user, session_secret
from daozhang.errors import UsageError
from daozhang.schema import open_database
from daozhang.store import Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="sqlite:///FILE or postgresql://...")
    parser.add_argument(
        "--listen", default="127.0.0.1:8080", help="HOST:PORT to serve on (127.0.0.1:8080)"
    )
    parser.add_argument(
        "--secure-cookie",
        action="store_true",
        help="mark the session cookie Secure (when a TLS proxy serves the console)",
    )
    parser.add_argument(
        "--poll", type=float, default=3.0, help="seconds between the fleet page's updates (3)"
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    user = sub.add_parser("user", help="console accounts")
    user_sub = user.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    add = user_sub.add_parser("add", help="add an account; the password is asked for")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    # SUPPRESS: `console --db X user add ...` and `console user add ... --db X` both work.
    add.add_argument("--db", default=argparse.SUPPRESS, help="sqlite:///FILE or postgresql://...")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(handler=run_user_add)


def _db(args: argparse.Namespace) -> str:
    if not args.db:
        raise UsageError("console: --db URL is required")
    return str(args.db)


def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace) -> int:
    import uvicorn  # the server only when serving: `user add` must not need it

    from daozhang.console.app import build_app

    url = _db(args)
    host, port = _listen(args.listen)
    # The schema brought up to date once, here; a mistyped path is refused, not created empty.
    with open_database(url, create=False) as store:
        secret = session_secret(store)
    app = build_app(
        partial(open_database, url, False),
        secret,
        poll_ms=int(args.poll * 1000),
        secure_cookie=args.secure_cookie,
    )
    sys.stdout.write(f"daozhang console: http://{host}:{port}/ (Ctrl-C to stop)\n")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UsageError("console user add: the two passwords differ")
    return first


def run_user_add(args: argparse.Namespace) -> int:
    url = _db(args)
    store: Store
    # The database first: nobody types a password twice to learn that --db was mistyped.
    with open_database(url, create=False) as store:
        password = _password(args.password_stdin)
        user = add_user(store, args.name, args.role, password)
    sys.stdout.write(f"console user {user.name} added, role {user.role}\n")
    return 0
