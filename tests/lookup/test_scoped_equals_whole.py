"""A lookup classifies only what it asked for, and says what the whole-store run says.

One generated scenario (every cause the generator injects, outages, reversals, silent
terminals, missing files, acquirer-side days) is loaded through the collector's ingest and
the settle importer; every transaction finding of the whole-store `analyse` is then asked
again through `analyse_scoped`, by its receipt's natural key or by its detail row, and must
come back equal field by field (the JSON the user sees, evidence and explanation included),
its payout's finding too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.correlate.scope import analyse_scoped
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database


def test_every_transaction_scoped_as_in_the_whole_store(db_url: str, tmp_path: Path) -> None:
    sc = generate(23, cases=8)
    with open_database(db_url) as store:
        load(store, sc, tmp_path / "files")
        whole = analyse(store, sc.as_of)
        payouts = {f.payout_id: to_dict(f) for f in whole.findings if f.kind == "payout"}
        causes: Counter[str] = Counter()
        data: set[str] = set()
        checked = 0
        for f in whole.findings:
            if f.kind != "transaction":
                continue
            if f.receipt is not None:
                r = f.receipt
                scoped = analyse_scoped(store, sc.as_of, keys=[(r.mid, r.tid, r.bat, r.trc)])
            else:
                assert f.row is not None
                scoped = analyse_scoped(store, sc.as_of, rows=[(f.row.file_id, f.row.line)])
            got = [g for g in scoped.findings if g.kind == "transaction"]
            assert len(got) == 1, (to_dict(f), [to_dict(g) for g in got])
            want: dict[str, Any] = to_dict(f)
            assert to_dict(got[0]) == want
            for p in scoped.findings[1:]:
                assert to_dict(p) == payouts[p.payout_id]
            causes[f.cause or f.status] += 1
            data.add(f.data)
            checked += 1
    # The scenario holds the cross-merchant and device-timeline causes, or this proves little.
    assert {"acquirer_side", "network_reversed", "file_missing", "settled"} <= set(causes), causes
    assert {"still_buffered", "device_data_loss", "no_receipt", "refused"} <= data, data
    assert checked >= 100, checked
