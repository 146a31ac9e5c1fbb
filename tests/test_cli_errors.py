"""Every command, hostile values in each of its options: `daozhang: message`, exit 2, never a
traceback (STYLE; issue 29).

The cases are discovered from `daozhang.cli.build_parser()`, so a new command or option is
covered without editing this file: every integer option gets 2^64, -1 and 'x', every float
option nan, inf and 'x', every file option a path in a folder that cannot exist (under a file,
so that not even root can create it), every `--db` a text file and a path in a missing folder.
Commands run in-process through `daozhang.cli.main`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daozhang import cli
from daozhang.cli import main
from daozhang.schema import open_database

Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


LEAVES = list(_leaves(cli.build_parser()))


def _module(parser: argparse.ArgumentParser) -> str:
    handler = parser.get_default("handler")
    return str(handler.__module__)


def _returns(action: argparse.Action, kind: type) -> bool:
    if action.type is None or action.choices is not None or not callable(action.type):
        return False
    try:
        value = action.type("7")  # type: ignore[operator]
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return False
    return isinstance(value, Path) if kind is Path else type(value) is kind


def _flag(action: argparse.Action) -> list[str]:
    return [action.option_strings[0]] if action.option_strings else []


def _fillers(
    parser: argparse.ArgumentParser, skip: argparse.Action, given: dict[str, str]
) -> list[str]:
    """Values for the required arguments other than `skip` (parse-only: any value parses)."""
    argv: list[str] = []
    required = [a for a in parser._actions if a.required and a is not skip]
    for group in parser._mutually_exclusive_groups:
        if group.required and skip not in group._group_actions:
            required.append(group._group_actions[0])
    for action in required:
        if action.option_strings and action.option_strings[0] in given:
            value = given[action.option_strings[0]]
        elif action.type is not None and callable(action.type) and _parses(action, "30"):
            value = "30"
        else:
            value = "DEV-0001"
        argv += [*_flag(action), value]
    return argv


def _parses(action: argparse.Action, text: str) -> bool:
    try:
        action.type(text)  # type: ignore[misc, operator]
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return False
    return True


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refuses before the command runs
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


def _assert_refused(status: int, err: str, *mentions: str) -> None:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("daozhang")]
    assert status == 2 and lines, f"exit {status}, stderr {err!r}"
    for word in mentions:
        assert word in err, f"{word!r} not in {err!r}"


@pytest.fixture
def parse_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands parse, but never run: a value the parser lets through fails the test."""

    def accepted(args: argparse.Namespace) -> int:
        raise AssertionError(f"accepted: {args}")

    original = cli.build_parser

    def build(only: str | None = None) -> argparse.ArgumentParser:
        parser = original(only)
        stack = [parser]
        while stack:
            p = stack.pop()
            if p.get_default("handler") is not None:
                p.set_defaults(handler=accepted)
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())
        return parser

    monkeypatch.setattr(cli, "build_parser", build)


# Options where a negative number means something (signal levels in dBm and dB).
NEGATIVE_OK = {
    ("board", "set", "--rssi"),
    ("board", "set", "--rsrp"),
    ("board", "set", "--rsrq"),
    ("board", "set", "--sinr"),
}
# The fleet runner (lab) keeps its loose ranges; 2^64 is refused for it too.
_LAB_LOOSE = ("daozhang.lab.fleet",)


def _cases(kind: type, values: tuple[str, ...]) -> list[Any]:
    cases = []
    for path, parser in LEAVES:
        for action in parser._actions:
            if not _returns(action, kind):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            for value in values:
                if value == "-1" and (
                    (*path, name) in NEGATIVE_OK or _module(parser).startswith(_LAB_LOOSE)
                ):
                    continue
                cases.append(
                    pytest.param(path, action.dest, value, id=f"{' '.join(path)} {name}={value}")
                )
    return cases


def _find(path: tuple[str, ...], dest: str) -> tuple[argparse.ArgumentParser, argparse.Action]:
    parser = dict(LEAVES)[path]
    return parser, next(a for a in parser._actions if a.dest == dest)


@pytest.mark.usefixtures("parse_only")
@pytest.mark.parametrize(
    ("path", "dest", "value"), _cases(int, (str(2**64), str(2**63), "-1", "x"))
)
def test_integer_options_refuse_hostile_values(
    path: tuple[str, ...], dest: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser, action = _find(path, dest)
    argv = [*path, *_fillers(parser, action, {}), *_flag(action), value]
    status, err = _run(argv, capsys)
    _assert_refused(status, err, action.option_strings[0] if action.option_strings else value)


@pytest.mark.usefixtures("parse_only")
@pytest.mark.parametrize(("path", "dest", "value"), _cases(float, ("nan", "inf", "-inf", "x")))
def test_float_options_refuse_hostile_values(
    path: tuple[str, ...], dest: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser, action = _find(path, dest)
    argv = [*path, *_fillers(parser, action, {}), *_flag(action), value]
    status, err = _run(argv, capsys)
    _assert_refused(status, err, action.option_strings[0])


# --- commands that run: their required arguments, with everything but the value under test
# harmless. A broker on a closed port with a short timeout, a device that exists nowhere.


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "real.db"
    open_database(f"sqlite:///{db}").close()
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "truth.jsonl").write_text("")
    (tmp_path / "rules.toml").write_text("[rules.silent_unsent]\nminutes = 15\n")
    return {
        "--db": f"sqlite:///{db}",
        "--broker": "mqtt://127.0.0.1:9",
        "--connect-timeout": "0.2",
        "--port": str(tmp_path / "no-such-port"),
        "--board": "virtual",
        "--device-id": "DEV-0001",
        "--keep-days": "30",
        "--dir": str(tmp_path / "pki"),
        "--truth": str(tmp_path / "truth.jsonl"),
        "--image": str(tmp_path / "b.img"),
        "--out": str(tmp_path / "out"),
        "--role": "fleet",
        "--to": "DEV-0002",
        "--rules": str(tmp_path / "rules.toml"),
        "--version": "0.2.0",
        "--reason": "门店装修",
        "--why": "收银台重启",
    }


# Required positionals and the one choice a command needs to get going.
POSITIONALS: dict[tuple[str, ...], list[str]] = {
    ("settle", "import"): ["{tmp}/no-such-settlement.csv"],
    ("settle", "notices", "import"): ["{tmp}/no-such-notices.csv"],
    ("quarantine", "show"): ["1"],
    ("device", "add"): ["DEV-0001", "--generate"],
    ("lookup",): ["--rrn", "123456789012"],
    ("pki", "issue"): ["DEV-0001"],
    ("pki", "revoke"): ["DEV-0001"],
    ("pki", "cut"): ["DEV-0001"],
    ("board", "stop"): ["nope"],
    ("board", "set"): ["nope"],
    ("scan-pan",): ["{tmp}"],
    ("sim", "check"): ["{tmp}/no-such.toml"],
    ("sim", "run"): ["{tmp}/no-such.toml"],
    ("console", "user", "add"): ["someone", "--password-stdin"],
    ("device", "move-terminal"): ["898310048161234", "10000001"],
    ("device", "cmd"): ["DEV-0001", "report"],
    ("ota", "offer"): ["{tmp}/no-such.dzb", "DEV-0001"],
    ("ota", "rollout"): ["{tmp}/no-such.dzb", "--all", "--detach"],
    ("alerts", "silence"): ["--rule", "cell_down", "--for", "2h"],
    ("alerts", "unsilence"): ["1"],
}
# Long runs that would start fleets, brokers or boards if a value got through.
NOT_RUN = {("demo",), ("sim", "run"), ("pos",), ("board", "start"), ("broker",), ("collect",)}
NOT_RUN |= {("console",)}  # a web server
# The lab's simulators and scenario tools: their file options are not held to this yet.
LAB_PATHS_LOOSE = {("sim", "generate"), ("sim", "check"), ("sim", "verify")}


def _argv(path: tuple[str, ...], world: dict[str, str], tmp: Path, **override: str) -> list[str]:
    parser = dict(LEAVES)[path]
    argv = [*path, *(a.replace("{tmp}", str(tmp)) for a in POSITIONALS.get(path, []))]
    given = {**world, **override}
    for action in parser._actions:
        flag = action.option_strings[0] if action.option_strings else None
        if flag in override or (action.required and flag is not None):
            argv += [flag, given[flag]]  # type: ignore[list-item]
    return argv


def _db_leaves() -> list[Any]:
    return [
        pytest.param(path, id=" ".join(path))
        for path, parser in LEAVES
        if any("--db" in a.option_strings for a in parser._actions)
    ]


@pytest.mark.parametrize("path", _db_leaves())
def test_db_that_is_not_a_database(
    path: tuple[str, ...], world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.db"
    text.write_text("this is a text file, not a database\n")
    status, err = _run(_argv(path, world, tmp_path, **{"--db": f"sqlite:///{text}"}), capsys)
    _assert_refused(status, err, str(text), "not a")
    assert text.read_text() == "this is a text file, not a database\n"


@pytest.mark.parametrize("path", _db_leaves())
def test_db_in_a_missing_folder(
    path: tuple[str, ...], world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = tmp_path / "a-file" / "sub" / "x.db"
    status, err = _run(_argv(path, world, tmp_path, **{"--db": f"sqlite:///{where}"}), capsys)
    _assert_refused(status, err, str(where))


def _path_cases() -> list[Any]:
    cases = []
    for path, parser in LEAVES:
        if path in NOT_RUN or path in LAB_PATHS_LOOSE:
            continue
        for action in parser._actions:
            if action.option_strings and _returns(action, Path):
                cases.append(
                    pytest.param(
                        path,
                        action.option_strings[0],
                        id=f"{' '.join(path)} {action.option_strings[0]}",
                    )
                )
    return cases


@pytest.mark.parametrize(("path", "flag"), _path_cases())
def test_file_option_in_a_missing_folder(
    path: tuple[str, ...],
    flag: str,
    world: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = str(tmp_path / "a-file" / "sub" / "f.out")
    status, err = _run(_argv(path, world, tmp_path, **{flag: where}), capsys)
    _assert_refused(status, err, where)


# --- the cases issue 29 names, as a technician would type them.

ISSUE_29 = [
    ["lookup", "--card-last4", "1234", "--amount", "nan", "--around", "2025-01-06"],
    ["lookup", "--card-last4", "1234", "--amount", "inf", "--around", "2025-01-06"],
    ["lookup", "--card-last4", "1234", "--amount", "1e9999", "--around", "2025-01-06"],
    ["lookup", "--card-last4", "1234", "--amount", "-5", "--around", "2025-01-06"],
    ["lookup", "--card-last4", "1234", "--amount", "29.905", "--around", "2025-01-06"],
    ["quarantine", "list", "--limit", "99999999999999999999"],
    ["quarantine", "show", "99999999999999999999"],
    ["collect", "--broker", "mqtt://127.0.0.1:9", "--metrics-port", "70000"],
    ["collect", "--broker", "mqtt://127.0.0.1:9", "--metrics-port", "0"],
    ["collect", "--broker", "mqtt://127.0.0.1:9", "--max-unacked", "0"],
    ["collect", "--broker", "mqtt://127.0.0.1:9", "--max-unacked", "65536"],
    ["collect", "--broker", "mqtt://127.0.0.1:9", "--pki-dir", "/nonexistent/pki"],
    ["correlate", "--json", "/nonexistent/dir/f.json"],
    ["correlate", "--csv", "/nonexistent/dir/f.csv"],
    ["correlate", "--html", "/nonexistent/dir/f.html"],
]


@pytest.mark.parametrize("argv", ISSUE_29, ids=" ".join)
def test_issue_29_cases(
    argv: list[str], world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _run(
        [*argv, "--db", world["--db"], "--connect-timeout", "0.2"]
        if argv[0] == "collect"
        else [*argv, "--db", world["--db"]],
        capsys,
    )
    _assert_refused(status, err)
    assert not Path("/nonexistent").exists()


def test_metrics_port_in_use_is_a_message(
    world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ["collect", "--broker", "mqtt://127.0.0.1:9", "--db", world["--db"],
                "--metrics-port", port, "--connect-timeout", "0.2"]  # fmt: skip
        status, err = _run(argv, capsys)
    _assert_refused(status, err, "--metrics-port", port)


def test_output_files_are_checked_before_any_work(
    world: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "findings.csv"
    argv = ["correlate", "--db", world["--db"], "--csv", str(good), "--json",
            str(tmp_path / "missing" / "f.json"), "--quiet"]  # fmt: skip
    status, err = _run(argv, capsys)
    _assert_refused(status, err, "missing")
    assert not good.exists()
    with open_database(world["--db"]) as store:
        assert store.query("SELECT COUNT(*) FROM findings") == [(0,)]


# --- issue 24: lookup by what the caller has; each form says what goes with what.

_MID = "898310048161234"
ISSUE_24 = [
    (["lookup", "--tid", "10000001"], "--tid and --trace go together"),
    (["lookup", "--trace", "123"], "--tid and --trace go together"),
    (["lookup", "--tid", "1000", "--trace", "123"], "--tid: expected 8"),
    (["lookup", "--tid", "10000001", "--trace", "1234567"], "--trace: expected up to 6"),
    (["lookup", "--tid", "10000001", "--trace", "12", "--amount", "3"], "go together"),
    (["lookup", "--mid", _MID], "--mid goes with --date"),
    (["lookup", "--mid", "8983", "--date", "2026-11-19"], "--mid: expected 15"),
    (["lookup", "--mid", _MID, "--date", "2026-13-01"], "--date: expected YYYY-MM-DD"),
    (["lookup", "--date", "2026-11-19"], "give one of"),
    (["lookup", "--amount", "12"], "give one of"),
    (["lookup", "--around", "2026-11-19 15:00"], "give one of"),
    (["lookup", "--card-last4", "1234"], "give one of"),
    (["lookup", "--card-last4", "1234", "--around", "2026-11-19 15:00"], "give one of"),
    (["lookup", "--amount", "3", "--around", "2026-11-19 25:00"], "--around"),
    (["lookup", "--amount", "3", "--around", "2026-11-19", "--window", "0h"], "--window"),
    (["lookup", "--amount", "3", "--around", "2026-11-19", "--window", "3x"], "--window"),
    (["lookup", "--rrn", "123456789012", "--amount", "3"], "--rrn goes alone"),
    (["lookup", "--rrn", "1234"], "--rrn: expected 12"),
    (["lookup", "--order", "WX1", "--mid", _MID], "--order goes alone"),
    (["lookup", "--order", "a b"], "--order: expected"),
]


@pytest.mark.parametrize(("argv", "says"), ISSUE_24, ids=[" ".join(a) for a, _ in ISSUE_24])
def test_issue_24_lookup_forms(
    argv: list[str], says: str, world: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = _run([*argv, "--db", world["--db"]], capsys)
    _assert_refused(status, err, says)


def test_lookup_on_a_postgresql_database_that_is_not_there_is_one_line(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    from daozhang.ports import free_port

    server = request.getfixturevalue("postgres_server")
    for url in (server.url("no_such_database"), f"postgresql://postgres@127.0.0.1:{free_port()}/x"):
        status, err = _run(["lookup", "--rrn", "123456789012", "--db", url], capsys)
        _assert_refused(status, err, "cannot connect to PostgreSQL")
        assert len(err.strip().splitlines()) == 1, err


# --- read-only commands never create a database at a mistyped path.

READ_ONLY = [
    ["correlate", "--quiet"],
    ["correlate", "--payouts"],
    ["lookup", "--rrn", "123456789012"],
    ["lookup", "--tid", "10000001", "--trace", "123"],
    ["lookup", "--mid", "898310048161234", "--date", "2026-11-19", "--amount", "3"],
    ["lookup", "--amount", "3", "--around", "2026-11-19 15:00", "--card-last4", "1234"],
    ["lookup", "--order", "WX0001"],
    ["fleet", "status"],
    ["quarantine", "list"],
    ["quarantine", "show", "1"],
    ["settle", "list"],
    ["settle", "notices", "list"],
    ["device", "list"],
    ["device", "flashed"],
    ["device", "cmd", "DEV-0001", "report", "--broker", "mqtt://127.0.0.1:9"],
    ["ota", "status"],
    ["prune", "--keep-days", "30", "--dry-run"],
    ["alerts", "list"],
    ["alerts", "silences"],
    ["alerts", "silence", "--rule", "cell_down", "--for", "2h", "--reason", "基站维修"],
    ["alerts", "unsilence", "1"],
]


@pytest.mark.parametrize("argv", READ_ONLY, ids=" ".join)
def test_read_only_commands_do_not_create_a_database(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "daozang.db"
    status, err = _run([*argv, "--db", f"sqlite:///{typo}"], capsys)
    _assert_refused(status, err, f"no database at {typo} (a typo? create one with")
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_device_add_still_creates_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "fleet.db"
    status, _ = _run(
        ["device", "add", "DEV-0001", "--generate", "--db", f"sqlite:///{new}"], capsys
    )
    assert status == 0 and new.exists()


# --- a database this user may not write: a file, or the folder its -wal and -shm go in.


@pytest.fixture
def as_nobody() -> Iterator[Callable[[], None]]:
    """Root writes anything: to see what a user sees, run the command as `nobody` (effective
    ids only, given back afterwards)."""
    if os.geteuid() != 0:
        yield lambda: None
        return
    entered = []

    def become() -> None:
        os.setegid(65534)
        os.seteuid(65534)
        entered.append(True)

    try:
        yield become
    finally:
        if entered:
            os.seteuid(0)
            os.setegid(0)


@pytest.mark.parametrize("what", ["file", "folder"])
@pytest.mark.parametrize(
    "argv", [["fleet", "status"], ["device", "add", "DEV-0001", "--generate"]], ids=" ".join
)
def test_read_only_database(
    what: str, argv: list[str], as_nobody: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    place = Path(tempfile.mkdtemp(prefix="dz-ro-"))
    try:
        db = place / "daozhang.db"
        open_database(f"sqlite:///{db}").close()
        con = sqlite3.connect(db)  # leave no -wal or -shm behind: a plain file, as copied
        con.execute("PRAGMA journal_mode=DELETE")
        con.close()
        read_only = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        db.chmod(read_only if what == "file" else read_only | stat.S_IWOTH | stat.S_IWUSR)
        place.chmod(0o755 if what == "file" else 0o555)
        as_nobody()
        status, err = _run([*argv, "--db", f"sqlite:///{db}"], capsys)
    finally:
        if os.getuid() == 0:
            os.seteuid(0)  # to tidy up; the fixture gives the group back
        place.chmod(0o755)
        for leftover in place.iterdir():
            leftover.unlink()
        place.rmdir()
    _assert_refused(status, err, str(db))


# --- settle import's profiles and archives (issue 25): each refusal a message, exit 2.


def _settle_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    import gzip
    import zipfile

    (tmp / "broken.toml").write_text("[x\n", encoding="utf-8")
    (tmp / "nofields.toml").write_text('[x]\nreader = "fixed"\n', encoding="utf-8")
    (tmp / "bomb.csv.gz").write_bytes(gzip.compress(b"0" * (8 << 20)))
    with zipfile.ZipFile(tmp / "nested.zip", "w") as z:
        z.writestr("inner.zip", (tmp / "bomb.csv.gz").read_bytes())
    (tmp / "garbage.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    (tmp / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    return {
        "--profiles: not TOML": (["--profiles", str(tmp / "broken.toml")], "not a TOML file"),
        "--profiles: a broken profile": (
            ["--profiles", str(tmp / "nofields.toml")],
            "layout: list the record's fields",
        ),
        "--profile: unknown": (["--profile", "lakala", str(tmp / "x.csv")], "no profile 'lakala'"),
        "a gzip bomb": ([str(tmp / "bomb.csv.gz")], "an archive bomb?"),
        "an archive in an archive": ([str(tmp / "nested.zip")], "an archive inside an archive"),
        "a broken gzip": ([str(tmp / "garbage.gz")], "not a readable gzip file"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "--profiles: not TOML",
        "--profiles: a broken profile",
        "--profile: unknown",
        "a gzip bomb",
        "an archive in an archive",
        "a broken gzip",
    ],
)
def test_settle_import_refuses_bad_profiles_and_archives(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, mention = _settle_inputs(tmp_path)[case]
    if not any(a.endswith((".csv", ".gz", ".zip")) for a in args):
        args = [*args, str(tmp_path / "x.csv")]
    db = f"sqlite:///{tmp_path / 'd.db'}"
    status, err = _run(["settle", "import", "--db", db, *args], capsys)
    _assert_refused(status, err, mention)
