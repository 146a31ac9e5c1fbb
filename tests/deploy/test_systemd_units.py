"""The systemd units the project ships (deploy/systemd): each passes the real `systemd-analyze
verify`, and each `ExecStart=` is a command line the `daozhang` parser of this checkout takes,
with every `${VAR}` defined in the shipped `daozhang.env`; the collector and the rollout
service use broker identities of their own (the broker keeps one session per identity)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from daozhang.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/daozhang/bin/daozhang"
VAR = re.compile(r"\$\{([A-Z_]+)\}")
# Each service and the command it must run.
COMMANDS = {
    "daozhang-collector.service": ["collect"],
    "daozhang-ota.service": ["ota", "service"],
    "daozhang-alerts.service": ["alerts", "run"],
    "daozhang-console.service": ["console"],
    "daozhang-prune.service": ["prune"],
}


def _env() -> dict[str, str]:
    out = {}
    for line in (UNITS / "daozhang.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def _key(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines()
            if line.startswith(f"{key}=")]  # fmt: skip


def test_every_service_is_listed() -> None:
    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(COMMANDS)


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    # Not a skip: `./run setup` installs Debian's `systemd` package, which provides it.
    assert analyze, "systemd-analyze is missing: run ./run setup as root"
    # As installed: the program at its place (this checkout's), the settings file beside.
    daozhang = Path(sys.executable).with_name("daozhang")
    assert daozhang.exists()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(INSTALLED, str(daozhang))
        text = text.replace("/etc/daozhang/daozhang.env", str(tmp_path / "daozhang.env"))
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("daozhang-*"))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # It does judge: a misspelt key is refused.
    bad = tmp_path / "bad.service"
    bad.write_text((tmp_path / "daozhang-ota.service").read_text().replace("ExecStart=", "Exec="))
    done = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode != 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_exec_start_is_a_daozhang_command_line(name: str, tmp_path: Path) -> None:
    unit = UNITS / name
    assert _key(unit, "EnvironmentFile") == ["/etc/daozhang/daozhang.env"]
    (line,) = _key(unit, "ExecStart")
    env = _env()
    used = set(VAR.findall(line))
    assert used <= env.keys(), used - env.keys()
    # Files the parser opens must exist: the rules file is made here.
    rules = tmp_path / "rules.toml"
    rules.write_text("[rules.silent_unsent]\n")
    env["DAOZHANG_RULES"] = str(rules)
    argv = shlex.split(VAR.sub(lambda m: env[m.group(1)], line))
    assert argv[0] == INSTALLED
    args = build_parser().parse_args(argv[1:])  # exits 2 on anything it does not take
    assert argv[1 : 1 + len(COMMANDS[name])] == COMMANDS[name]
    assert callable(args.handler)
    if name != "daozhang-prune.service":  # a oneshot run by its timer
        assert _key(unit, "Restart") == ["on-failure"]


def test_the_collector_and_the_rollout_service_have_identities_of_their_own() -> None:
    env = _env()
    (collector,) = _key(UNITS / "daozhang-collector.service", "ExecStart")
    (ota,) = _key(UNITS / "daozhang-ota.service", "ExecStart")
    mine = [VAR.search(line.split("--tls-dir ", 1)[1]).group(1) for line in (collector, ota)]  # type: ignore[union-attr]
    assert env[mine[0]] != env[mine[1]], mine
