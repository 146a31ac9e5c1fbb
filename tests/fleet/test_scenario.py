"""Scenario files: the shipped ones load; every kind of mistake is named with file and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from daozhang.errors import InputError, UsageError
from daozhang.lab.fleet import scenario
from daozhang.lab.fleet.scenario import load

SHIPPED = Path(scenario.__file__).with_name("scenarios")

BASE = """
name = "t"
seed = 3
duration_s = 100
[boards]
count = 6
flash_size = "1M"
receipts_per_board = 10
[[groups]]
name = "good"
count = 4
link = "good"
[[groups]]
name = "bad"
count = 2
link = "flaky"
"""


def write(tmp_path: Path, extra: str = "", base: str = BASE) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(base) + textwrap.dedent(extra))
    return path


@pytest.mark.parametrize("name", ["chaos", "demo", "soak"])
def test_shipped_scenarios_load(name: str) -> None:
    s = load(SHIPPED / f"{name}.toml")
    assert s.name == name
    assert all(f.until_s <= s.duration_s for f in s.faults)
    assert len({d.dev for d in s.devices}) == len(s.devices)


def test_chaos_scenario_has_what_the_issue_asks_for() -> None:
    s = load(SHIPPED / "chaos.toml")
    assert len(s.devices) >= 20 and s.receipts >= 5000
    kinds = {f.kind for f in s.faults}
    assert {"power_cut", "broker_restart", "collector_kill", "blackhole", "reset"} <= kinds
    assert not s.broker_persistence
    assert 0 < s.full_pan_pct <= 10  # some full PANs from the POS, in a realistic share
    assert load(SHIPPED / "demo.toml").full_pan_pct == 0  # the default: a compliant POS


def test_resolved_plan(tmp_path: Path) -> None:
    s = load(
        write(
            tmp_path,
            """
        [[faults]]
        kind = "blackhole"
        at_s = 10
        for_s = 5
        every_s = 30
        boards = "random:2"
        [[faults]]
        kind = "power_cut"
        at_s = 12
        boards = "group:bad"
        [[faults]]
        kind = "collector_kill"
        at_s = 50
    """,
        )
    )
    assert [d.dev for d in s.devices] == [
        "dz0001",
        "dz0002",
        "dz0003",
        "dz0004",
        "dz0005",
        "dz0006",
    ]
    assert [d.link.name for d in s.devices] == ["good"] * 4 + ["flaky"] * 2
    blackholes = [f for f in s.faults if f.kind == "blackhole"]
    assert [(f.at_s, f.until_s) for f in blackholes] == [(10, 15), (40, 45), (70, 75)]
    assert all(len(f.boards) == 2 for f in blackholes)
    cut = next(f for f in s.faults if f.kind == "power_cut")
    assert cut.boards == (4, 5) and cut.params["down_s"] == 2
    assert s.faults == tuple(sorted(s.faults, key=lambda f: (f.at_s, f.source)))
    assert s.time_scale == 12 * 3600 / 100  # 09:00-21:00 by default, in 100 s
    # The same seed draws the same boards.
    assert load(write(tmp_path, "")).devices == s.devices
    again = load(
        write(
            tmp_path,
            """
        [[faults]]
        kind = "blackhole"
        at_s = 10
        for_s = 5
        every_s = 30
        boards = "random:2"
    """,
        )
    )
    assert [f.boards for f in again.faults] == [f.boards for f in blackholes]


def test_links_can_be_defined_and_override_builtins(tmp_path: Path) -> None:
    s = load(
        write(
            tmp_path,
            """
        [links.flaky]
        delay_ms = 999
        [links.sat]
        delay_ms = 600
        kbps = 64
        rat = "lte"
    """,
        )
    )
    assert s.devices[-1].link.delay_ms == 999
    assert s.devices[-1].link.flap_up_s == 20  # the rest of the builtin profile is kept


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("colour = 1\n", r"colour: unknown key"),
        ("[broker]\npersistence = 1\n", r"broker.persistence: expected true/false, got int"),
        ("[collector]\ncount = 0\n", r"collector.count: 0 is out of range 1..8"),
        ("[collector]\ndb = 'mysql://x'\n", r"collector.db: 'mysql://x'"),
        ("[day]\ndate = '2026-13-01'\n", r"day.date: '2026-13-01': expected YYYY-MM-DD"),
        ("[day]\nopen = '22:00'\nclose = '09:00'\n", r"day.close: 09:00 is not after open"),
        ("[day]\nopen = '9am'\n", r"day.open: '9am': expected HH:MM"),
        ("[links.x]\nflap_up_s = 3\n", r"links.x.flap_down_s: flapping needs both"),
        (
            "[links.x]\nloss_pct = 3\n[[groups]]\nname='y'\ncount=1\nlink='x'\n",
            r"groups: group counts add up to 7 but boards.count is 6",
        ),
        ("[[faults]]\nat_s = 3\n", r"faults\[0\].kind: missing"),
        ("[[faults]]\nkind = 'meteor'\n", r"faults\[0\].kind: 'meteor' is not one of"),
        ("[[faults]]\nkind = 'reset'\n", r"faults\[0\].boards: which boards\?"),
        ("[[faults]]\nkind = 'reset'\nboards = 'random:7'\n", r"'random:7': N must be 1..6"),
        ("[[faults]]\nkind = 'reset'\nboards = [6]\n", r"board index 6 is out of range 0..5"),
        ("[[faults]]\nkind = 'reset'\nboards = 'group:nope'\n", r"unknown group 'nope'"),
        ("[[faults]]\nkind = 'reset'\nboards = 'some'\n", r"'some': expected \"all\""),
        (
            "[[faults]]\nkind = 'blackhole'\nboards='all'\nat_s = 95\nfor_s = 10\n",
            r"faults\[0\].at_s: the fault runs until 105 s, past duration_s = 100",
        ),
        (
            "[[faults]]\nkind = 'blackhole'\nboards='all'\nfor_s = 10\nevery_s = 5\n",
            r"faults\[0\].every_s: 5 s: must be longer than the fault",
        ),
        (
            "[[faults]]\nkind = 'broker_restart'\nboards = 'all'\n",
            r"faults\[0\].boards: a broker_restart fault acts on the host",
        ),
        (
            "[[faults]]\nkind = 'collector_kill'\ncollector = 1\n",
            r"faults\[0\]: collector 1 does not exist \(count = 1\)",
        ),
        ("[[faults]]\nkind = 'loss'\nboards = 'all'\n", r"\"loss\" needs mode = \"netem\""),
        (
            "[[faults]]\nkind = 'delay'\nboards = 'all'\ndelay_ms = 'slow'\n",
            r"faults\[0\].delay_ms: expected an integer, got a string",
        ),
        (
            "[[faults]]\nkind = 'signal'\nboards = 'all'\nrat = '5g'\n",
            r"faults\[0\].rat: '5g' is not one of wifi, lte, gsm",
        ),
        (
            "[settlement.causes]\nnetwork_reversed = 3\n",
            r"settlement.causes.network_reversed: not a settlement cause",
        ),
        ("mode = 'ns'\n", r"mode: 'ns' is not one of proxy, netem"),
        ("[agent]\nkeepalive_s = 2\n", r"agent.keepalive_s: 2 is out of range 5..3600"),
        (
            "[agent]\nport = 1883\n",
            r"agent.port: unknown key \(known here: ack_timeout_s, backoff_base_ms",
        ),
    ],
)
def test_mistakes_are_named_with_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    # Keys at the top level must come before the first table in TOML.
    top = not extra.startswith("[")
    path = write(tmp_path, base=extra + BASE if top else BASE + extra)
    with pytest.raises(InputError, match=message) as info:
        load(path)
    assert str(info.value).startswith(f"scenario {path}: ")


def test_group_links_and_loss_need_netem(tmp_path: Path) -> None:
    base = BASE.replace('link = "flaky"', 'link = "lossy"')
    with pytest.raises(InputError, match=r"unknown link profile 'lossy'"):
        load(write(tmp_path, base=base))
    with pytest.raises(InputError, match=r"mode: link 'lossy' sets loss_pct"):
        load(write(tmp_path, "[links.lossy]\nloss_pct = 2\n", base=base))
    assert load(write(tmp_path, "[links.lossy]\nloss_pct = 2\n", base='mode = "netem"\n' + base))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[boards\ncount = 1\n")
    with pytest.raises(InputError, match=r"bad.toml: not valid TOML"):
        load(bad)
