"""Correlation run while a collector still holds acked records in its inbox says so: their
receipts are missing from the findings, which would otherwise look complete."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from daozhang.cli import main
from daozhang.collector.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.collector.projector import Projector
from daozhang.settle.rows import BEIJING
from daozhang.sim.load import load
from daozhang.sim.scenario import generate
from daozhang.store import open_store

from tests.collector.test_inbox import via_inbox


def test_correlate_names_the_records_not_stored_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sc = generate(2024, cases=3)
    with open_store(url) as store:
        load(store, sc, tmp_path / "files")
        recs = [record_bytes(s, "r", receipt_body(900_000 + s), t=1) for s in range(1, 4)]
        (result,) = via_inbox(store, batch_bytes("LATE0001", 5, recs), sc.as_of, "LATE0001")
        assert result.accepted == 3
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    argv = ["correlate", "--db", url, "--as-of", as_of, "--quiet", "--no-record"]
    assert main(argv) == 0
    assert "3 records acked by the collectors are not stored yet" in capsys.readouterr().err
    with open_store(url) as store:
        Projector("c", chunk_records=2000).chunk(store)
    assert main(argv) == 0
    assert "not stored yet" not in capsys.readouterr().err
