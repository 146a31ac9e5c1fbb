"""The demo's and chaos test's evidence check reads findings.json as a user would."""

from __future__ import annotations

from daozhang.lab.fleet.evidence import check


def _finding(txn: str, *facts: str, cause: str = "network_reversed") -> dict[str, object]:
    evidence = [{"source": "diag_event", "fact": fact} for fact in facts]
    return {"cause": cause, "txn_time": txn, "dev": "dz0001", "evidence": evidence}


def test_an_outage_overlapping_the_window_counts_and_one_outside_is_named() -> None:
    inside = "link down 2026-11-19 13:00:00 .. 2026-11-19 16:00:00 (3 h 0 min) at stage tcp (x)"
    before = "link down 2026-11-19 13:00:00 .. 2026-11-19 13:44:59 (44 min 59 s) at stage dns (y)"
    open_ = "link down 2026-11-19 14:10:00 .. still down (open) at stage link (z)"
    signal = "signal at 2026-11-19 13:50:00, before the sale: LTE, RSRP -101 dBm"
    far_signal = "signal at 2026-11-19 12:00:00, before the sale: LTE, RSRP -101 dBm"
    got = check(
        [
            _finding("2026-11-19 14:00:00", inside),
            _finding("2026-11-19 14:00:00", open_),
            _finding("2026-11-19 14:00:00", signal),
            _finding("2026-11-19 14:00:00", far_signal),
            _finding("2026-11-19 14:00:00", before),
            _finding("2026-11-19 14:00:00", inside, cause="account_problem"),
        ]
    )
    assert (got.network, got.citing) == (5, 3)
    assert len(got.outside) == 1 and "13:44:59" in got.outside[0]
