"""A day analysed late gives the verdicts it gave live (DESIGN §2.3, event time).

One generated business day (silent terminals with backlogs, outages, reversals, declared
losses, every upstream cause) goes into two fresh stores through the collector's own ingest:
once as it arrived live, once as if every record and heartbeat reached the host two weeks
later, each still carrying the terminal's times. Correlated as of the same moment, the two
stores must give the same findings, field by field.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.lab.postgres import TempPostgres
from daozhang.lab.sim.device import messages
from daozhang.lab.sim.load import load_devices, write_files
from daozhang.lab.sim.scenario import generate
from daozhang.schema import open_database
from daozhang.settle.importer import import_file

TWO_WEEKS_S = 14 * 86_400


def _url(engine: str, tmp_path: Path, request: pytest.FixtureRequest, name: str) -> str:
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / name}.db"
    server: TempPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"r_{uuid.uuid4().hex[:12]}")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_day_uploaded_two_weeks_late_gives_the_same_findings(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sc = generate(23, cases=30)
    live = messages(sc)
    late = [dataclasses.replace(m, at=m.at + TWO_WEEKS_S) for m in live]
    findings: list[list[dict[str, Any]]] = []
    for name, arrivals in (("live", live), ("late", late)):
        with open_database(_url(engine, tmp_path, request, name)) as store:
            load_devices(store, arrivals)
            for path, acquirer in write_files(sc, tmp_path / name):
                import_file(store, path, acquirer=acquirer, now=sc.as_of)
            findings.append([to_dict(f) for f in analyse(store, sc.as_of).findings])
    as_live, as_late = findings
    # The day holds what makes arrival time matter, or the comparison would prove nothing.
    data = {f.get("data") for f in as_live}
    causes = {f.get("cause") for f in as_live}
    assert "still_buffered" in data and "network_reversed" in causes, (data, causes)
    assert len(as_late) == len(as_live)
    # In the order of what they are about: PostgreSQL returns the receipts of two stores
    # loaded alike in different orders (rows updated by later states move), and the order
    # of the findings is no verdict.
    for a, b in zip(sorted(as_live, key=_about), sorted(as_late, key=_about), strict=True):
        assert a == b


def _about(f: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(f.get(k) or "") for k in ("kind", "mid", "tid", "bat", "trc", "payout_id"))
