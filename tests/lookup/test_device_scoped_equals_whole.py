"""A device's page classifies only that device's sales in its window, and says what the
whole-store run says about them.

The generated scenario of test_scoped_equals_whole (every cause the generator injects,
outages, reversals, silent terminals, refused receipts, acquirer-side days) is loaded through
the collector's ingest and the settle importer; for each device, `analyse_device` over a
window that cuts the scenario's days, and over all of time, must give exactly the whole-store
`analyse` findings of that device sold inside the window (the JSON the user sees, evidence
and explanation included), and the same timeline.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from daozhang.correlate.device import analyse_device
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database


def _sorted(findings: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True, ensure_ascii=False) for f in findings)


def test_each_device_in_a_window_as_in_the_whole_store(db_url: str, tmp_path: Path) -> None:
    sc = generate(23, cases=8)
    with open_database(db_url) as store:
        load(store, sc, tmp_path / "files")
        whole = analyse(store, sc.as_of)
        sales = [f for f in whole.findings if f.kind == "transaction"]
        times = sorted(f.lt for f in sales if f.lt is not None)
        # A window with sales on both sides of each end, and all of time.
        windows = [(times[len(times) // 5], times[4 * len(times) // 5]), (0, int(sc.as_of))]
        causes: Counter[str] = Counter()
        data: set[str] = set()
        devices = sorted({f.dev for f in sales if f.dev})
        for (lo, hi), dev in ((w, d) for w in windows for d in devices):
            want = [f for f in sales if f.dev == dev and f.lt is not None and lo <= f.lt <= hi]
            got = analyse_device(store, dev, lo, hi, sc.as_of)
            assert _sorted([to_dict(f) for f in got.findings]) == _sorted(
                [to_dict(f) for f in want]
            ), (dev, lo, hi)
            assert got.timeline == whole.data.timelines.get(dev), dev
            if lo == 0:
                continue
            causes.update(f.cause or f.status for f in want)
            data |= {f.data for f in want}
    # The window holds the cross-merchant and device-timeline causes, or this proves little.
    assert {"acquirer_side", "network_reversed", "settled"} <= set(causes), causes
    assert {"still_buffered", "no_receipt", "refused"} <= data, data
    assert sum(causes.values()) >= 100, causes
