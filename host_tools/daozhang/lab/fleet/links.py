"""Link profiles: how a board's path to the broker behaves when no fault is active.

Three are built in (`good`, `2g`, `flaky`); a scenario's `[links.NAME]` table defines more or
changes a built-in one, key by key (docs/simulation.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from daozhang.lab.fleet.toml_reader import TableReader

RATS = ("wifi", "lte", "gsm")


@dataclass(frozen=True)
class LinkProfile:
    """How one board's path to the broker behaves when no fault is active."""

    name: str
    delay_ms: int = 0
    jitter_ms: int = 0
    kbps: int = 0  # 0: no bandwidth cap
    loss_pct: float = 0.0  # netem mode only
    flap_up_s: float = 0.0  # both > 0: the link flaps for the whole run
    flap_down_s: float = 0.0
    resets_per_min: float = 0.0
    rssi: int = -60
    rat: str = "wifi"


BUILTIN_LINKS: dict[str, LinkProfile] = {
    "good": LinkProfile("good", delay_ms=5),
    "2g": LinkProfile("2g", delay_ms=300, jitter_ms=50, kbps=50, rssi=-95, rat="gsm"),
    "flaky": LinkProfile(
        "flaky",
        delay_ms=80,
        jitter_ms=40,
        flap_up_s=20,
        flap_down_s=4,
        resets_per_min=1,
        rssi=-88,
        rat="lte",
    ),
}


def read_link(r: TableReader, name: str, base: LinkProfile | None) -> LinkProfile:
    b = base or LinkProfile(name)
    link = replace(
        b,
        delay_ms=r.integer("delay_ms", b.delay_ms, 0, 60_000),
        jitter_ms=r.integer("jitter_ms", b.jitter_ms, 0, 60_000),
        kbps=r.integer("kbps", b.kbps, 0, 10_000_000),
        loss_pct=r.number("loss_pct", b.loss_pct, 0, 100),
        flap_up_s=r.number("flap_up_s", b.flap_up_s, 0, 86400),
        flap_down_s=r.number("flap_down_s", b.flap_down_s, 0, 86400),
        resets_per_min=r.number("resets_per_min", b.resets_per_min, 0, 600),
        rssi=r.integer("rssi", b.rssi, -140, 0),
        rat=r.text("rat", b.rat, RATS),
    )
    if (link.flap_up_s > 0) != (link.flap_down_s > 0):
        raise r.error("flap_down_s", "flapping needs both flap_up_s and flap_down_s > 0")
    r.done()
    return link
