"""Correlation or a lookup run while a collector still holds acked records in its inbox says
so: their receipts are missing from the findings, which would otherwise look complete."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.collector.inbox import Projector
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.lab.sim.load import load
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.units import BEIJING

from tests.collector.test_inbox import via_inbox


def test_correlate_names_the_records_not_stored_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sc = generate(2024, cases=3)
    with open_database(url) as store:
        load(store, sc, tmp_path / "files")
        recs = [record_bytes(s, "r", receipt_body(900_000 + s), t=1) for s in range(1, 4)]
        (result,) = via_inbox(store, batch_bytes("LATE0001", 5, recs), sc.as_of, "LATE0001")
        assert result.accepted == 3
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    argv = ["correlate", "--db", url, "--as-of", as_of, "--quiet", "--no-record"]
    assert main(argv) == 0
    assert "3 records acked by the collectors are not stored yet" in capsys.readouterr().err
    with open_database(url) as store:
        Projector("c", chunk_records=2000).chunk(store)
    assert main(argv) == 0
    assert "not stored yet" not in capsys.readouterr().err


def test_lookup_names_the_records_not_stored_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Support staff look a sale up by RRN: it is acked (the terminal deleted it) but still in
    the inbox, so lookup finds nothing, and must say why that may be."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sc = generate(2024, cases=3)
    with open_database(url) as store:
        load(store, sc, tmp_path / "files")
        body = receipt_body(900_001, rrn="LATE00000001")
        recs = [record_bytes(1, "r", body, t=int(sc.as_of) - 3600)]
        (result,) = via_inbox(store, batch_bytes("LATE0001", 5, recs), sc.as_of, "LATE0001")
        assert result.accepted == 1
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    argv = ["lookup", "--db", url, "--as-of", as_of, "--rrn", "LATE00000001", "--json"]
    assert main(argv) == 1  # not found ...
    err = capsys.readouterr().err
    assert "lookup: note: 1 records acked by the collectors are not stored yet" in err
    with open_database(url) as store:
        Projector("c", chunk_records=2000).chunk(store)
    assert main(argv) == 0  # ... until the collector stores it
    out = capsys.readouterr()
    assert "LATE00000001" in out.out and "not stored yet" not in out.err
