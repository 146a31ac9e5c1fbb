"""How the cells page groups outages: by cell, by overlap in time, and what it calls them."""

from __future__ import annotations

from daozhang.console.cellview import JOIN_S, _Outage, group

HI = 100_000


def verdicts(outages: list[_Outage], heard: dict[str, set[str]]) -> list[tuple[str, str, int]]:
    return [(g.cell, g.verdict, g.down) for g in group(outages, heard, HI)]


def test_three_terminals_down_together_on_one_cell_is_the_cell() -> None:
    outages = [_Outage(f"D{n}", 1000 + 60 * n, 2000, "link", "C1") for n in range(3)]
    assert verdicts(outages, {"C1": {"D0", "D1", "D2", "D3"}}) == [("C1", "cell_down", 3)]


def test_outages_apart_in_time_are_separate_groups() -> None:
    outages = [
        _Outage("D0", 1000, 2000, "link", "C1"),
        _Outage("D1", 2000 + JOIN_S, 2500, "link", "C1"),  # just within the join window
        _Outage("D2", 2500 + JOIN_S + 1, 3000, "link", "C1"),  # just past it
    ]
    found = group(outages, {"C1": {"D0", "D1", "D2"}}, HI)
    assert [(g.devices, g.verdict) for g in found] == [(["D0", "D1"], "few"), (["D2"], "spot")]


def test_one_terminal_alone_on_a_working_cell_is_its_spot_and_alone_on_it_is_few() -> None:
    assert verdicts([_Outage("D0", 1000, 2000, "tcp", "C1")], {"C1": {"D0", "D9"}}) == [
        ("C1", "spot", 1)
    ]
    assert verdicts([_Outage("D0", 1000, 2000, "tcp", "C2")], {"C2": {"D0"}}) == [("C2", "few", 1)]


def test_terminals_without_a_cell_id_are_never_grouped() -> None:
    outages = [_Outage(f"W{n}", 1000, 2000, "dhcp", "") for n in range(4)]
    assert verdicts(outages, {}) == [("", "no_cell", 1)] * 4


def test_a_group_with_a_terminal_still_down_has_no_end() -> None:
    outages = [_Outage("D0", 1000, 2000, "link", "C1"), _Outage("D1", 1500, None, "link", "C1")]
    (g,) = group(outages, {}, HI)
    assert (g.start, g.end, g.down) == (1000, None, 2)
